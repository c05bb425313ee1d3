//! Bounds and rules for user input. Each failure names the field and the rule.

use chrono::NaiveTime;
use chrono_tz::Tz;
use tapline_proto::limits;
use uuid::Uuid;

use crate::error::{Error, Result};

/// Longest display or device name, in characters (see [`tapline_proto::limits`]).
pub const MAX_NAME_CHARS: usize = limits::NAME_CHARS;

/// A display name: trimmed, 1-40 characters, no control characters.
pub fn display_name(field: &'static str, input: &str) -> Result<String> {
    let name = input.trim();
    if name.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    short_text(field, name, MAX_NAME_CHARS)?;
    Ok(name.to_owned())
}

/// An optional device name: trimmed, at most 40 characters (empty allowed).
pub fn device_name(field: &'static str, input: &str) -> Result<String> {
    let name = input.trim();
    short_text(field, name, MAX_NAME_CHARS)?;
    Ok(name.to_owned())
}

/// Single-line text of at most `max` user-perceived characters once trimmed (the shared rule
/// in [`tapline_proto::limits`]).
pub fn short_text(field: &'static str, input: &str, max: usize) -> Result<()> {
    limits::short_text(field, input, max).map_err(violation)?;
    Ok(())
}

/// A broken shared rule as the error clients read (a `BadRequest` naming the field).
pub fn violation(v: limits::Violation) -> Error {
    Error::invalid(v.field, v.rule)
}

/// An IANA time-zone name such as `Europe/Paris`, in any letter case or as an old alias
/// (`US/Eastern`): the zone under its current name (see [`super::zones`]).
pub fn time_zone(field: &'static str, input: &str) -> Result<Tz> {
    if input.len() > 64 {
        return Err(Error::invalid(
            field,
            "must be an IANA time zone such as Europe/Paris",
        ));
    }
    super::zones::canonical(input).ok_or_else(|| {
        Error::invalid(
            field,
            format!("unknown IANA time zone {input:?} (e.g. Europe/Paris)"),
        )
    })
}

/// A time of day, "HH:MM" (24 h), trimmed.
pub fn time_of_day(field: &'static str, input: &str) -> Result<NaiveTime> {
    let input = input.trim();
    let bad = || Error::invalid(field, "must be a time of day, HH:MM (24 h)");
    if input.len() > 5 {
        return Err(bad());
    }
    NaiveTime::parse_from_str(input, "%H:%M").map_err(|_| bad())
}

/// A UUID in its usual text form.
pub fn uuid(field: &'static str, input: &str) -> Result<Uuid> {
    if input.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if input.len() > 36 {
        return Err(Error::invalid(field, "must be a UUID"));
    }
    Uuid::try_parse(input).map_err(|_| Error::invalid(field, "must be a UUID"))
}

/// A server-made id (the same UUID form); unknown ids are simply not found.
pub fn id(field: &'static str, input: &str) -> Result<String> {
    uuid(field, input).map(|u| u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(Error::InvalidArgument { field, rule }) => format!("{field}: {rule}"),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(display_name("display_name", "  Sam ").unwrap(), "Sam");
        assert_eq!(
            rule(display_name("display_name", "   ")),
            "display_name: must not be empty"
        );
        assert!(display_name("display_name", &"é".repeat(40)).is_ok());
        assert!(rule(display_name("display_name", &"é".repeat(41))).contains("at most 40"));
        assert!(rule(display_name("display_name", "Sam\nDrop")).contains("control"));
    }

    #[test]
    fn zones_must_be_iana() {
        assert_eq!(
            time_zone("time_zone", "Australia/Lord_Howe")
                .unwrap()
                .name(),
            "Australia/Lord_Howe"
        );
        assert!(
            rule(time_zone("time_zone", "Mars/Olympus")).starts_with("time_zone: unknown IANA")
        );
        assert!(time_zone("time_zone", &"x".repeat(1000)).is_err());
    }

    #[test]
    fn uuids_are_checked() {
        assert!(uuid("client_tap_id", "0192f1a4-7b3c-7def-8123-456789abcdef").is_ok());
        assert_eq!(
            rule(uuid("client_tap_id", "nope")),
            "client_tap_id: must be a UUID"
        );
        assert_eq!(
            rule(uuid("client_tap_id", "")),
            "client_tap_id: must not be empty"
        );
    }
}
