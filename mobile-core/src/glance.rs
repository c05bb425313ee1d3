//! The glance: what a watch complication or widget shows, read from the local store with no
//! network.

use std::time::SystemTime;

use chrono::{DateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use tapline_proto::v1 as pb;

use crate::model::{QuietHours, ReceivedTap};

/// A no-network snapshot for complications and widgets.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Glance {
    /// Whether this device has an account.
    pub signed_in: bool,
    /// Whether the account is paired.
    pub paired: bool,
    /// The partner's name.
    pub partner_name: Option<String>,
    /// The partner's zone.
    pub partner_time_zone: Option<String>,
    /// The partner's local time now, "HH:MM".
    pub partner_local_time: Option<String>,
    /// The partner's offset from UTC now, in seconds.
    pub partner_utc_offset_seconds: Option<i32>,
    /// Whether the partner is in quiet hours now (so a tap arrives silently).
    pub partner_in_quiet_hours: bool,
    /// The last tap the partner sent.
    pub last_tap: Option<ReceivedTap>,
    /// Taps waiting in the outbox.
    pub unsent_count: u32,
}

/// Computes the glance at `now` from what the store holds.
pub(crate) fn compute(
    signed_in: bool,
    couple: Option<&pb::Couple>,
    received: &[ReceivedTap],
    unsent_count: u32,
    now: SystemTime,
) -> Glance {
    let partner = couple.and_then(|c| c.partner.as_ref());
    let zone: Option<Tz> = partner
        .and_then(|p| p.clock.as_ref())
        .and_then(|c| c.time_zone.parse().ok());
    let now: DateTime<Utc> = now.into();
    let local = zone.map(|z| z.from_utc_datetime(&now.naive_utc()));
    let quiet =
        partner.and_then(|p| QuietHours::from_wire(p.quiet_start.as_ref(), p.quiet_end.as_ref()));
    Glance {
        signed_in,
        paired: partner.is_some(),
        partner_name: partner.map(|p| p.display_name.clone()),
        partner_time_zone: zone.map(|z| z.name().to_owned()),
        partner_local_time: local.map(|l| l.format("%H:%M").to_string()),
        partner_utc_offset_seconds: local.map(|l| l.offset().fix().local_minus_utc()),
        partner_in_quiet_hours: match (local, quiet) {
            (Some(l), Some(q)) => q.contains(l.hour() * 60 + l.minute()),
            _ => false,
        },
        last_tap: received.iter().find(|t| !t.from_self).cloned(),
        unsent_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn couple(zone: &str, quiet: Option<((u32, u32), (u32, u32))>) -> pb::Couple {
        pb::Couple {
            couple_id: "c".into(),
            partner: Some(pb::Partner {
                account_id: "p".into(),
                display_name: "Robin".into(),
                clock: Some(pb::PersonClock {
                    time_zone: zone.into(),
                    ..Default::default()
                }),
                quiet_start: quiet.map(|q| pb::LocalTimeOfDay {
                    hour: q.0.0,
                    minute: q.0.1,
                }),
                quiet_end: quiet.map(|q| pb::LocalTimeOfDay {
                    hour: q.1.0,
                    minute: q.1.1,
                }),
            }),
            paired_since: None,
        }
    }

    #[test]
    fn the_partners_clock_moves_with_time_offline() {
        // 2026-07-01 21:30 UTC: 23:30 in Paris (summer time), quiet from 22:00.
        let t = UNIX_EPOCH + Duration::from_secs(1_782_941_400);
        let g = compute(
            true,
            Some(&couple("Europe/Paris", Some(((22, 0), (7, 0))))),
            &[],
            2,
            t,
        );
        assert_eq!(g.partner_local_time.as_deref(), Some("23:30"));
        assert_eq!(g.partner_utc_offset_seconds, Some(7200));
        assert!(g.partner_in_quiet_hours);
        assert_eq!(g.unsent_count, 2);
        // Nine hours later it is 08:30 there: not quiet.
        let g = compute(
            true,
            Some(&couple("Europe/Paris", Some(((22, 0), (7, 0))))),
            &[],
            0,
            t + Duration::from_secs(9 * 3600),
        );
        assert_eq!(g.partner_local_time.as_deref(), Some("08:30"));
        assert!(!g.partner_in_quiet_hours);
    }

    #[test]
    fn unpaired_glance_is_empty_but_valid() {
        let g = compute(false, None, &[], 0, SystemTime::now());
        assert!(!g.signed_in && !g.paired && g.partner_name.is_none() && !g.partner_in_quiet_hours);
    }
}
