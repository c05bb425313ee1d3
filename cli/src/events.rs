//! Live events as sentences and JSON lines, for `listen` and `tap --wait`.
//!
//! Some events carry only the new state (the partner as they are now, the streak as it is now):
//! [`Notices`] keeps the previous one to say what changed.

use serde_json::{Value, json};
use tapline_core::*;

use crate::render::{self, kind_label, kind_word, quiet_span};
use crate::ritual_words;

/// `{"event":"connection","state":"live"|"connecting"|"offline"|"stopped", ...}`.
pub fn connection_json(s: &ConnectionState) -> Value {
    match s {
        ConnectionState::Connecting => json!({ "event": "connection", "state": "connecting" }),
        ConnectionState::Live => json!({ "event": "connection", "state": "live" }),
        ConnectionState::Offline {
            retry_in_ms,
            reason,
        } => json!({
            "event": "connection", "state": "offline", "retry_in_ms": retry_in_ms, "reason": reason,
        }),
        ConnectionState::Stopped { reason } => {
            json!({ "event": "connection", "state": "stopped", "reason": reason })
        }
    }
}

/// The connection in words.
pub fn connection_line(s: &ConnectionState) -> String {
    match s {
        ConnectionState::Connecting => "connecting…".into(),
        ConnectionState::Live => "live".into(),
        ConnectionState::Offline {
            retry_in_ms,
            reason,
        } => format!(
            "offline ({reason}); retrying in {:.1} s",
            *retry_in_ms as f64 / 1000.0
        ),
        ConnectionState::Stopped { reason } => format!("stopped: {reason}"),
    }
}

/// A tap of this device moved on: "Your heartbeat is now delivered."
pub fn tap_state_line(tap: &LocalTap) -> String {
    match &tap.state {
        TapState::Refused { reason, code } => format!(
            "Your {} was refused: {}",
            kind_word(tap.kind),
            render::refusal_words(*code, reason)
        ),
        state => format!(
            "Your {} is now {}.",
            kind_word(tap.kind),
            render::state_name(state)
        ),
    }
}

pub fn tap_state_json(tap: &LocalTap) -> Value {
    json!({ "event": "tap_state", "tap": render::local_tap_json(tap) })
}

/// A received tap in words; a partner's note comes with the short id that keeps it.
fn received_line(tap: &ReceivedTap, partner: &str, short: Option<&str>) -> String {
    let who = if tap.from_self {
        "You sent (from another device)".to_owned()
    } else {
        format!("{} sent", ritual_words::cap(partner))
    };
    let note = tap
        .note
        .as_deref()
        .map(|n| format!(" “{n}”"))
        .unwrap_or_default();
    let silent = match (tap.released, tap.silent && !tap.from_self) {
        // Kept during a space or together time, delivered now that it ended.
        (true, true) => " (kept for you, delivered quietly)",
        (true, false) => " (kept for you while you had a moment)",
        (false, true) => " (silently: quiet hours)",
        (false, false) => "",
    };
    let keep = match short {
        Some(id) if tap.note.is_some() && !tap.from_self => {
            format!(" (keep it: tapline moments keep --tap {id})")
        }
        _ => String::new(),
    };
    let pattern = haptics::pattern_for(tap.kind, tap.rhythm.clone());
    format!(
        "{who} {}{note}{silent}{keep}\n  {}",
        kind_label(tap.kind),
        render::bar(&pattern)
    )
}

/// What in a partner's profile and settings differs: "name", "time_zone", "quiet_hours".
pub fn partner_changes(old: &PartnerInfo, new: &PartnerInfo) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.display_name != new.display_name {
        changed.push("name");
    }
    if old.time_zone != new.time_zone {
        changed.push("time_zone");
    }
    if old.quiet_hours != new.quiet_hours {
        changed.push("quiet_hours");
    }
    changed
}

fn offset_words(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let m = seconds.unsigned_abs() / 60;
    format!("UTC{sign}{:02}:{:02}", m / 60, m % 60)
}

/// The JSON name of a partner change.
pub fn change_name(c: PartnerChange) -> &'static str {
    match c {
        PartnerChange::Name => "name",
        PartnerChange::TimeZone => "time_zone",
        PartnerChange::QuietHours => "quiet_hours",
        PartnerChange::Receipts => "receipts",
    }
}

/// What a `PartnerUpdated` says: the changes named (by the server, or by comparing with the
/// partner as this device knew them), in words.
pub fn partner_line(
    old: Option<&PartnerInfo>,
    new: &PartnerInfo,
    changed: Option<&[&'static str]>,
    receipts_enabled: bool,
) -> String {
    let quiet = |p: &PartnerInfo| match &p.quiet_hours {
        Some(q) => format!("quiet hours {} their time", quiet_span(q)),
        None => "no quiet hours".to_owned(),
    };
    let Some(changed) = changed.filter(|c| !c.is_empty()) else {
        return format!(
            "{} updated their profile or settings: now in {} ({}), {}.",
            new.display_name,
            new.time_zone,
            offset_words(new.utc_offset_seconds),
            quiet(new)
        );
    };
    let old_quiet = old.and_then(|o| o.quiet_hours.as_ref());
    let mut parts = Vec::new();
    for c in changed {
        parts.push(match *c {
            "name" => match old {
                Some(old) => format!("{} is now called {}.", old.display_name, new.display_name),
                None => format!("Your partner is now called {}.", new.display_name),
            },
            "receipts" if receipts_enabled => format!(
                "{} turned felt/seen receipts on: you will see when they feel or see your taps.",
                new.display_name
            ),
            "receipts" => format!(
                "{} turned felt/seen receipts off: you will still see when your taps are delivered.",
                new.display_name
            ),
            "time_zone" => format!(
                "{} is now in {} ({}).",
                new.display_name,
                new.time_zone,
                offset_words(new.utc_offset_seconds)
            ),
            _ => match (old_quiet, &new.quiet_hours) {
                (_, None) => format!("{} turned quiet hours off.", new.display_name),
                (None, Some(q)) => format!(
                    "{} turned quiet hours on: {} their time.",
                    new.display_name,
                    quiet_span(q)
                ),
                (Some(_), Some(q)) => format!(
                    "{}'s quiet hours are now {} their time.",
                    new.display_name,
                    quiet_span(q)
                ),
            },
        });
    }
    parts.join(" ")
}

/// What a streak settings change did, given the streak as this device knew it before:
/// (sentence, JSON of the changes when they are known).
pub fn streak_settings(
    old: Option<&StreakInfo>,
    new: &StreakInfo,
    partner: &str,
) -> (String, Value) {
    let Some(old) = old else {
        let line = if new.calm {
            "Streak: calm mode is on.".to_owned()
        } else {
            let pauses = new
                .pauses
                .iter()
                .map(|p| format!("{} to {}", p.from_date, p.to_date))
                .collect::<Vec<_>>();
            format!(
                "Streak settings changed: calm mode is off; {}.",
                if pauses.is_empty() {
                    "no pauses scheduled".to_owned()
                } else {
                    format!("paused {}", pauses.join(", "))
                }
            )
        };
        return (line, Value::Null);
    };
    let mut parts = Vec::new();
    let mut added = Vec::new();
    let mut cancelled = Vec::new();
    let calm_changed = old.calm != new.calm;
    if calm_changed && new.calm {
        parts.push("Calm mode is on: no streak counts or warnings (the history is kept).".into());
    } else if calm_changed {
        parts.push(format!(
            "Calm mode is off: the streak is {}.",
            ritual_words::days(new.current)
        ));
    } else if !new.calm {
        // Calm views carry no pauses, so pauses are compared only outside calm mode.
        for p in &new.pauses {
            if !old.pauses.iter().any(|o| o.pause_id == p.pause_id) {
                let who = if p.by_me {
                    "You".to_owned()
                } else {
                    ritual_words::cap(partner)
                };
                parts.push(format!(
                    "{who} paused the streak from {} to {}.",
                    p.from_date, p.to_date
                ));
                added.push(p.pause_id.clone());
            }
        }
        for o in &old.pauses {
            if !new.pauses.iter().any(|p| p.pause_id == o.pause_id) {
                parts.push(format!(
                    "The pause from {} to {} was cancelled.",
                    o.from_date, o.to_date
                ));
                cancelled.push(o.pause_id.clone());
            }
        }
    }
    if parts.is_empty() {
        parts.push("Streak settings changed.".into());
    }
    (
        parts.join(" "),
        json!({
            "calm_changed": calm_changed,
            "pauses_added": added,
            "pauses_cancelled": cancelled,
        }),
    )
}

/// Turns events into lines, remembering what it needs to say what changed.
#[derive(Debug, Default)]
pub struct Notices {
    pub partner: Option<PartnerInfo>,
    pub streak: Option<StreakInfo>,
    /// Routine ids seen so far, so that short ids stay unique among them.
    pub routine_ids: Vec<String>,
    /// Received tap ids seen so far, for the same reason.
    pub tap_ids: Vec<String>,
    /// This account's zone, for times on its clock.
    pub my_zone: String,
}

/// A new couple's streak: nothing yet, no calm mode, no pauses.
fn fresh_streak() -> StreakInfo {
    StreakInfo {
        calm: false,
        current: 0,
        longest: 0,
        freezes_held: 0,
        days_to_next_freeze: 7,
        next_milestone: Some(3),
        me_today: None,
        partner_today: None,
        pauses: vec![],
        last_connected_date: None,
        first_date: None,
    }
}

/// Calm words for a reason from the fixed set.
pub fn space_reason_words(r: SpaceReason) -> &'static str {
    match r {
        SpaceReason::NeedSpace => "needs some space",
        SpaceReason::Overwhelmed => "is feeling overwhelmed",
        SpaceReason::CallMeLater => "would like you to call later",
    }
}

fn space_line(space: &SpaceInfo, change: SpaceChange, partner: &str) -> String {
    let who = ritual_words::cap(partner);
    let until = render::iso(space.until);
    match (change, space.mine) {
        (SpaceChange::Asked, false) => format!(
            "{who} {} and asked for a moment (until {until}). Your taps will wait until it ends.",
            space_reason_words(space.reason)
        ),
        (SpaceChange::Asked, true) => format!("You asked for a moment, until {until}."),
        (SpaceChange::Answered, true) => match space.answer {
            Some(SpaceAnswer::ImHere) => format!("{who}: \"I'm here.\""),
            _ => format!("{who}: \"Take your time.\""),
        },
        (SpaceChange::Answered, false) => "You answered.".to_owned(),
        (SpaceChange::Ended, true) => format!(
            "Your moment ended; {} held tap(s) delivered.",
            space.held_taps
        ),
        (SpaceChange::Ended, false) => format!(
            "{who}'s moment ended; your {} held tap(s) were delivered.",
            space.held_taps
        ),
        (SpaceChange::Other, _) => "A moment changed.".to_owned(),
    }
}

impl Notices {
    fn partner_name(&self) -> String {
        self.partner
            .as_ref()
            .map_or_else(|| "your partner".to_owned(), |p| p.display_name.clone())
    }

    /// The sentence (if any is worth showing) and the JSON line of one event.
    pub fn notice(&mut self, e: &ClientEvent) -> (Option<String>, Value) {
        let partner = self.partner_name();
        match e {
            ClientEvent::TapReceived { tap } => {
                if !self.tap_ids.contains(&tap.tap_id) {
                    self.tap_ids.push(tap.tap_id.clone());
                }
                let short =
                    crate::ids::short_id(&tap.tap_id, self.tap_ids.iter().map(String::as_str));
                (
                    Some(received_line(tap, &partner, Some(&short))),
                    json!({ "event": "tap_received", "tap": render::received_json(tap) }),
                )
            }
            ClientEvent::ReconnectUpdated {
                change,
                plan,
                step,
                silent,
                ..
            } => (
                Some(crate::reconnect::event_line(
                    *change,
                    plan,
                    step.as_ref(),
                    &partner,
                    &self.my_zone,
                )),
                crate::reconnect::event_json(*change, plan, step.as_ref(), *silent),
            ),
            ClientEvent::MomentKept { moment, forgotten } => (
                Some(crate::moments::moment_event_line(
                    moment, *forgotten, &partner,
                )),
                json!({
                    "event": "moment_kept",
                    "forgotten": forgotten,
                    "moment": crate::moments::moment_json(moment),
                }),
            ),
            ClientEvent::RecapReady { recap } => (
                Some(crate::moments::recap_event_line(recap)),
                json!({ "event": "recap_ready", "recap": crate::moments::recap_json(recap) }),
            ),
            ClientEvent::TapStateChanged { tap } => {
                (Some(tap_state_line(tap)), tap_state_json(tap))
            }
            ClientEvent::Paired { couple } => {
                self.partner = Some(couple.partner.clone());
                self.streak = Some(fresh_streak());
                (
                    Some(format!("Paired with {}.", couple.partner.display_name)),
                    json!({ "event": "paired", "couple": render::couple_json(couple) }),
                )
            }
            ClientEvent::SpaceUpdated {
                space,
                change,
                silent,
                released_tap_ids,
                ..
            } => (
                Some(space_line(space, *change, &partner)),
                json!({
                    "event": "space_updated",
                    "change": format!("{change:?}").to_lowercase(),
                    "silent": silent,
                    "released_tap_ids": released_tap_ids,
                    "space": crate::space::space_json(space),
                }),
            ),
            ClientEvent::TogetherUpdated {
                change,
                together,
                meeting,
                silent,
                released_tap_ids,
                ..
            } => (
                Some(crate::together::event_line(
                    *change,
                    together.as_ref(),
                    meeting.as_ref(),
                    &partner,
                )),
                crate::together::event_json(
                    *change,
                    together.as_ref(),
                    meeting.as_ref(),
                    *silent,
                    released_tap_ids,
                ),
            ),
            ClientEvent::QuestionUpdated {
                change,
                progress,
                revealed,
                silent,
            } => (
                Some(crate::questions::event_line(
                    *change,
                    progress,
                    revealed.as_ref(),
                    &partner,
                )),
                json!({
                    "event": "question_updated",
                    "change": format!("{change:?}"),
                    "progress": crate::questions::progress_json(progress),
                    "revealed": revealed.as_ref().map(crate::questions::question_json),
                    "silent": silent,
                }),
            ),
            ClientEvent::Unpaired {
                by_partner,
                partner_deleted,
            } => {
                self.partner = None;
                let line = if *partner_deleted {
                    format!(
                        "{} deleted their account; the couple has ended.",
                        ritual_words::cap(&partner)
                    )
                } else if *by_partner {
                    format!("{} ended the couple.", ritual_words::cap(&partner))
                } else {
                    "You ended the couple.".to_owned()
                };
                (
                    Some(line),
                    json!({
                        "event": "unpaired",
                        "by_partner": by_partner,
                        "partner_deleted": partner_deleted,
                    }),
                )
            }
            ClientEvent::PartnerUpdated {
                partner: new,
                changed,
                receipts_enabled,
            } => {
                let old = self.partner.replace(new.clone());
                // The server says what changed; an older one does not, then compare.
                let changed: Option<Vec<&'static str>> = if changed.is_empty() {
                    old.as_ref().map(|o| partner_changes(o, new))
                } else {
                    Some(changed.iter().map(|c| change_name(*c)).collect())
                };
                (
                    Some(partner_line(
                        old.as_ref(),
                        new,
                        changed.as_deref(),
                        *receipts_enabled,
                    )),
                    json!({
                        "event": "partner_updated", "partner": render::partner_json(new),
                        "changed": changed, "receipts_enabled": receipts_enabled,
                    }),
                )
            }
            ClientEvent::StreakUpdated {
                streak,
                change: StreakChange::Settings,
                ..
            } => {
                let old = self.streak.replace(streak.clone());
                let (line, settings) = streak_settings(old.as_ref(), streak, &partner);
                let mut json = ritual_words::event_json(e).unwrap_or(Value::Null);
                json["settings"] = settings;
                (Some(line), json)
            }
            ClientEvent::StreakUpdated { streak, .. } => {
                self.streak = Some(streak.clone());
                (
                    ritual_words::event_line(e, &partner),
                    ritual_words::event_json(e).unwrap_or(Value::Null),
                )
            }
            ClientEvent::CaughtUp => (Some("(up to date)".into()), json!({ "event": "caught_up" })),
            ClientEvent::Reset => (
                Some("(history was reset; state refreshed)".into()),
                json!({ "event": "reset" }),
            ),
            ClientEvent::RoutinesChanged {
                routine_id,
                routine,
                deleted,
            } => {
                if !self.routine_ids.contains(routine_id) {
                    self.routine_ids.push(routine_id.clone());
                }
                let short =
                    crate::ids::short_id(routine_id, self.routine_ids.iter().map(String::as_str));
                let line = match routine {
                    Some(r) if !deleted => format!(
                        "Routine saved: {}",
                        ritual_words::routine_line(r, &short, std::time::SystemTime::now())
                    ),
                    _ => format!("Routine {short} was deleted."),
                };
                (
                    Some(line),
                    ritual_words::event_json(e).unwrap_or(Value::Null),
                )
            }
            ClientEvent::CheckinUpdated { .. }
            | ClientEvent::RoutineFired { .. }
            | ClientEvent::AnswerStateChanged { .. } => (
                ritual_words::event_line(e, &partner),
                ritual_words::event_json(e).unwrap_or(Value::Null),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner(zone: &str, quiet: Option<QuietHours>) -> PartnerInfo {
        PartnerInfo {
            account_id: "p".into(),
            display_name: "Alex".into(),
            time_zone: zone.into(),
            local_time: "2026-03-10T08:00:00-04:00".into(),
            utc_offset_seconds: -4 * 3600,
            in_quiet_hours: false,
            quiet_hours: quiet,
        }
    }

    const NIGHT: QuietHours = QuietHours {
        start_hour: 22,
        start_minute: 0,
        end_hour: 7,
        end_minute: 30,
    };

    #[test]
    fn a_kept_tap_says_why_it_came_late_and_quietly() {
        let tap = |released: bool, silent: bool| ReceivedTap {
            tap_id: "t".into(),
            kind: TapKind::Hug,
            note: None,
            rhythm: None,
            sent_at: std::time::SystemTime::UNIX_EPOCH,
            silent,
            from_self: false,
            released,
        };
        assert!(
            received_line(&tap(true, true), "sam", None)
                .contains("kept for you, delivered quietly")
        );
        assert!(received_line(&tap(true, false), "sam", None).contains("while you had a moment"));
        assert!(received_line(&tap(false, true), "sam", None).contains("quiet hours"));
        assert!(!received_line(&tap(false, false), "sam", None).contains('('));
        let noted = ReceivedTap {
            note: Some("later".into()),
            ..tap(false, false)
        };
        let line = received_line(&noted, "sam", Some("0192f1a4"));
        assert!(
            line.contains("“later” (keep it: tapline moments keep --tap 0192f1a4)"),
            "{line}"
        );
    }

    #[test]
    fn connection_states_are_json_objects_with_an_event_key() {
        assert_eq!(
            connection_json(&ConnectionState::Live),
            json!({ "event": "connection", "state": "live" })
        );
        assert_eq!(
            connection_json(&ConnectionState::Offline {
                retry_in_ms: 400,
                reason: "refused".into()
            }),
            json!({ "event": "connection", "state": "offline", "retry_in_ms": 400, "reason": "refused" })
        );
        assert_eq!(
            connection_json(&ConnectionState::Connecting)["state"],
            "connecting"
        );
        assert_eq!(
            connection_json(&ConnectionState::Stopped { reason: "x".into() })["state"],
            "stopped"
        );
    }

    #[test]
    fn partner_notices_say_what_changed() {
        let before = partner("America/New_York", None);
        let quiet = partner("America/New_York", Some(NIGHT));
        // Compared with what this device knew (an older server names no changes).
        let diff = |o: &PartnerInfo, n: &PartnerInfo| {
            partner_line(Some(o), n, Some(&partner_changes(o, n)), true)
        };
        assert_eq!(
            diff(&before, &quiet),
            "Alex turned quiet hours on: 22:00-07:30 their time."
        );
        assert_eq!(diff(&quiet, &before), "Alex turned quiet hours off.");
        let moved = PartnerInfo {
            time_zone: "Asia/Tokyo".into(),
            utc_offset_seconds: 9 * 3600,
            ..quiet.clone()
        };
        assert_eq!(
            diff(&quiet, &moved),
            "Alex is now in Asia/Tokyo (UTC+09:00)."
        );
        let renamed = PartnerInfo {
            display_name: "Al".into(),
            ..before.clone()
        };
        assert_eq!(diff(&before, &renamed), "Alex is now called Al.");
        // Named by the server: receipts, which this device cannot see otherwise.
        let off = partner_line(Some(&before), &before, Some(&["receipts"]), false);
        assert!(
            off.starts_with("Alex turned felt/seen receipts off"),
            "{off}"
        );
        assert!(!off.contains("is now in"), "{off}");
        assert!(partner_line(None, &before, Some(&["receipts"]), true).contains("receipts on"));
        assert_eq!(
            partner_line(None, &quiet, None, true),
            "Alex updated their profile or settings: now in America/New_York (UTC-04:00), quiet hours 22:00-07:30 their time."
        );

        let mut n = Notices {
            partner: Some(before),
            ..Notices::default()
        };
        let (_, j) = n.notice(&ClientEvent::PartnerUpdated {
            partner: quiet,
            changed: vec![],
            receipts_enabled: true,
        });
        assert_eq!(j["event"], "partner_updated");
        assert_eq!(j["changed"], json!(["quiet_hours"]));
        assert_eq!(j["partner"]["quiet_hours"]["end"], "07:30");
        let (line, j) = n.notice(&ClientEvent::PartnerUpdated {
            partner: moved,
            changed: vec![PartnerChange::TimeZone],
            receipts_enabled: true,
        });
        assert_eq!(
            line.as_deref(),
            Some("Alex is now in Asia/Tokyo (UTC+09:00).")
        );
        assert_eq!(j["changed"], json!(["time_zone"]));
    }

    fn streak(calm: bool, current: u32, pauses: Vec<PauseInfo>) -> StreakInfo {
        StreakInfo {
            calm,
            current,
            longest: current,
            freezes_held: 0,
            days_to_next_freeze: 7,
            next_milestone: Some(3),
            me_today: None,
            partner_today: None,
            pauses,
            last_connected_date: None,
            first_date: None,
        }
    }

    fn pause(id: &str, by_me: bool) -> PauseInfo {
        PauseInfo {
            pause_id: id.into(),
            from_date: "2026-03-12".into(),
            to_date: "2026-03-14".into(),
            by_account_id: "x".into(),
            by_me,
        }
    }

    #[test]
    fn streak_settings_say_what_changed() {
        let calm = streak(true, 0, vec![]);
        let with_pause = streak(false, 5, vec![pause("p1", false)]);
        let (line, j) = streak_settings(Some(&calm), &with_pause, "Sam");
        assert_eq!(line, "Calm mode is off: the streak is 5 days.");
        assert_eq!(j["calm_changed"], true);
        assert_eq!(
            j["pauses_added"],
            json!([]),
            "a calm view has no pauses to compare"
        );
        let (line, _) = streak_settings(Some(&with_pause), &calm, "Sam");
        assert!(line.starts_with("Calm mode is on"), "{line}");
        let plain = streak(false, 5, vec![]);
        let (line, j) = streak_settings(Some(&plain), &with_pause, "Sam");
        assert_eq!(line, "Sam paused the streak from 2026-03-12 to 2026-03-14.");
        assert_eq!(j["pauses_added"], json!(["p1"]));
        let (line, j) = streak_settings(Some(&with_pause), &plain, "Sam");
        assert_eq!(
            line,
            "The pause from 2026-03-12 to 2026-03-14 was cancelled."
        );
        assert_eq!(j["pauses_cancelled"], json!(["p1"]));
        let (line, j) = streak_settings(None, &with_pause, "Sam");
        assert_eq!(
            line,
            "Streak settings changed: calm mode is off; paused 2026-03-12 to 2026-03-14."
        );
        assert!(j.is_null());
    }

    #[test]
    fn after_pairing_the_first_pause_is_told_as_a_pause() {
        let mut n = Notices::default();
        n.notice(&ClientEvent::Paired {
            couple: CoupleInfo {
                couple_id: "c".into(),
                partner: partner("America/New_York", None),
                paired_since: std::time::SystemTime::UNIX_EPOCH,
            },
        });
        let (line, j) = n.notice(&ClientEvent::StreakUpdated {
            streak: streak(false, 0, vec![pause("p1", false)]),
            change: StreakChange::Settings,
            milestone_days: None,
            date: String::new(),
        });
        assert_eq!(
            line.as_deref(),
            Some("Alex paused the streak from 2026-03-12 to 2026-03-14.")
        );
        assert_eq!(j["settings"]["pauses_added"], json!(["p1"]));
        assert!(j["date"].is_null());
    }

    #[test]
    fn tap_states_read_as_sentences() {
        let mut tap = LocalTap {
            client_tap_id: "c".into(),
            tap_id: None,
            kind: TapKind::Heartbeat,
            note: None,
            rhythm: None,
            state: TapState::Delivered,
            created_at: std::time::SystemTime::UNIX_EPOCH,
            attempts: 1,
        };
        assert_eq!(tap_state_line(&tap), "Your heartbeat is now delivered.");
        tap.state = TapState::Refused {
            reason: "not paired".into(),
            code: RefusalCode::NotPaired,
        };
        assert_eq!(
            tap_state_line(&tap),
            "Your heartbeat was refused: not paired"
        );
        let j = tap_state_json(&tap);
        assert_eq!(j["tap"]["state"], "refused");
        assert_eq!(j["tap"]["refusal"]["code"], "NOT_PAIRED");
    }
}
