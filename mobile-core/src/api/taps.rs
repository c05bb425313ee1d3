//! Taps: queue one, report one felt or seen, read this device's taps, flush the outbox.

use prost::Message;
use tapline_proto::limits;
use tapline_proto::v1 as pb;

use super::TaplineClient;
use crate::engine::runtime::{now_ms, run};
use crate::error::{CoreError, CoreResult, TaplineError};
use crate::haptics;
use crate::model::*;
use crate::store::OutboxKind;

fn validate_note(note: Option<String>) -> CoreResult<String> {
    Ok(limits::note(note.as_deref().unwrap_or_default())?)
}

#[uniffi::export(async_runtime = "tokio")]
impl TaplineClient {
    /// Queues a tap and returns at once; the outbox sends it (now, or when the network is back).
    pub fn send_tap(
        &self,
        kind: TapKind,
        note: Option<String>,
        rhythm: Option<HapticPattern>,
    ) -> Result<LocalTap, TaplineError> {
        let note = validate_note(note)?;
        let rhythm = match (kind, rhythm) {
            (TapKind::Custom, Some(r)) => Some(haptics::validate(&r).map_err(CoreError::Invalid)?),
            (TapKind::Custom, None) => {
                return Err(
                    CoreError::Invalid("rhythm: is required for a custom tap".into()).into(),
                );
            }
            (_, Some(_)) => {
                return Err(
                    CoreError::Invalid("rhythm: is only allowed on a custom tap".into()).into(),
                );
            }
            (_, None) => None,
        };
        self.inner.creds()?;
        let client_id = uuid::Uuid::now_v7().to_string();
        let req = pb::SendTapRequest {
            client_tap_id: client_id.clone(),
            kind: kind.to_wire() as i32,
            rhythm: rhythm.map(|r| r.to_wire()),
            note,
        };
        let tap = self.inner.store.enqueue_tap(&client_id, &req, now_ms())?;
        self.inner.outbox_wake.notify_one();
        Ok(tap)
    }

    /// Reports a received tap as felt or seen (queued like a tap; sent when possible).
    /// Delivered needs no report: the core's ack of the stored tap carries it.
    pub fn report_tap(&self, tap_id: String, kind: ReceiptKind) -> Result<(), TaplineError> {
        if uuid::Uuid::try_parse(&tap_id).is_err() {
            return Err(CoreError::Invalid("tap_id: must be a tap id".into()).into());
        }
        let req = pb::ReportTapRequest {
            tap_id: tap_id.clone(),
            kind: kind.to_wire() as i32,
        };
        let row = match kind {
            // The ack after storing the tap already told the server.
            ReceiptKind::Delivered => return Ok(()),
            ReceiptKind::Felt => OutboxKind::Felt,
            ReceiptKind::Seen => OutboxKind::Seen,
        };
        self.inner
            .store
            .enqueue_receipt(row, &tap_id, &req.encode_to_vec(), now_ms())?;
        self.inner.outbox_wake.notify_one();
        Ok(())
    }

    /// The newest taps this device sent, newest first, with their states.
    pub fn local_taps(&self, limit: u32) -> Result<Vec<LocalTap>, TaplineError> {
        Ok(self.inner.store.local_taps(limit)?)
    }

    /// The newest taps received, newest first.
    pub fn received_taps(&self, limit: u32) -> Result<Vec<ReceivedTap>, TaplineError> {
        Ok(self.inner.store.received(limit)?)
    }

    /// One tap this device made, by its client id (`None` if unknown or forgotten).
    pub fn local_tap(&self, client_tap_id: String) -> Result<Option<LocalTap>, TaplineError> {
        Ok(self.inner.store.local_tap(&client_tap_id)?)
    }

    /// Tries every queued row now, oldest first, ignoring back-off. Rows refused for good are
    /// counted and keep their reason in their state. Fails with the reason (network, rate limit
    /// with its delay) when rows must still wait; what went out before that stays sent.
    pub async fn flush_outbox(&self) -> Result<FlushReport, TaplineError> {
        let inner = self.inner.clone();
        let flushed = run(async move { inner.flush().await }).await?;
        match flushed.blocked {
            Some(e) => Err(e),
            None => Ok(flushed.report),
        }
    }
}
