//! The protobuf codec of every `tapline.v1` service: prost, with small buffers, and decode
//! failures answered as the client's fault.
//!
//! tonic's default codec gives each call an 8 KiB encode buffer, which a server holding one
//! long-lived event stream per device keeps for the life of the stream. Every `tapline.v1`
//! message is far smaller (requests are capped at 64 KiB and events are a few hundred bytes),
//! so buffers start at 1 KiB and grow only when a message needs it.
//!
//! A message that does not decode (invalid UTF-8 in a string field, a truncated field, a wrong
//! wire type) is answered `INVALID_ARGUMENT` with a `BadRequest` naming the field, instead of
//! tonic's `INTERNAL`: the caller sent it, and a retry of the same bytes cannot succeed.

use std::marker::PhantomData;

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstEncoder};
use tonic_types::{ErrorDetails, StatusExt};

/// Initial encode/decode buffer per call.
pub const BUFFER_BYTES: usize = 1024;
/// Bytes encoded before a streaming response yields to the runtime (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;
/// `ErrorInfo.domain` of every Tapline error.
pub const ERROR_DOMAIN: &str = "tapline.app";

/// [`ProstCodec`] with [`BUFFER_BYTES`] buffers and [`LeanDecoder`].
#[derive(Debug, Clone)]
pub struct LeanCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        LeanCodec(PhantomData)
    }
}

impl<T, U> Codec for LeanCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = LeanDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        LeanDecoder(PhantomData)
    }
}

/// Decodes prost messages; a message that does not decode is `INVALID_ARGUMENT`.
#[derive(Debug)]
pub struct LeanDecoder<U>(PhantomData<U>);

impl<U: prost::Message + Default> Decoder for LeanDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| undecodable(&e))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD)
    }
}

/// The status for a message that failed to decode: `INVALID_ARGUMENT` with the field path
/// (e.g. `device.name`) in `BadRequest` and reason `INVALID_ARGUMENT` in `ErrorInfo`.
pub fn undecodable(e: &prost::DecodeError) -> Status {
    let (field, rule) = field_and_rule(&e.to_string());
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(&field, &rule);
    details.set_error_info("INVALID_ARGUMENT", ERROR_DOMAIN, []);
    let message = if field.is_empty() {
        format!("the request could not be decoded: {rule}")
    } else {
        format!("{field}: {rule}")
    };
    Status::with_error_details(tonic::Code::InvalidArgument, message, details)
}

/// Splits prost's decode error text (`failed to decode Protobuf message: Inner.field: Outer.
/// field: description`, innermost first) into the request field path, outermost first, and
/// the description.
fn field_and_rule(text: &str) -> (String, String) {
    let rest = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(text);
    let mut fields = Vec::new();
    let mut rest = rest;
    while let Some((head, tail)) = rest.split_once(": ") {
        match head.split_once('.') {
            Some((message, field))
                if !message.is_empty()
                    && !field.is_empty()
                    && !head.contains(' ')
                    && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                fields.push(field.to_owned());
                rest = tail;
            }
            _ => break,
        }
    }
    fields.reverse();
    let rule = match rest {
        r if r.contains("UTF-8") => "must be valid UTF-8".to_owned(),
        r => r.to_owned(),
    };
    (fields.join("."), rule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn invalid_utf8_names_the_nested_field() {
        // CreateAccountRequest { device: DeviceInfo { name: b"Sam\xff\xfe" } }
        let name = [0x53, 0x61, 0x6d, 0xff, 0xfe];
        let mut device = vec![0x1a, name.len() as u8];
        device.extend(name);
        let mut req = vec![0x1a, device.len() as u8];
        req.extend(&device);
        let e = crate::v1::CreateAccountRequest::decode(req.as_slice()).unwrap_err();
        let status = undecodable(&e);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let details = status.get_error_details();
        let v = &details.bad_request().unwrap().field_violations[0];
        assert_eq!(v.field, "device.name");
        assert_eq!(v.description, "must be valid UTF-8");
        assert_eq!(details.error_info().unwrap().reason, "INVALID_ARGUMENT");
        assert_eq!(status.message(), "device.name: must be valid UTF-8");
    }

    #[test]
    fn a_top_level_field_and_a_truncated_message() {
        let note = [0x68, 0x69, 0xc3, 0x28];
        let mut req = vec![0x22, note.len() as u8];
        req.extend(note);
        let e = crate::v1::SendTapRequest::decode(req.as_slice()).unwrap_err();
        let status = undecodable(&e);
        let details = status.get_error_details();
        assert_eq!(
            details.bad_request().unwrap().field_violations[0].field,
            "note"
        );
        let e = crate::v1::SendTapRequest::decode(&[0x22, 0x10, 0x41][..]).unwrap_err();
        let status = undecodable(&e);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(!status.message().is_empty());
    }
}
