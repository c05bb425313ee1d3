//! Check-ins: a shared prompt both partners answer, revealed to both at once.
//!
//! The rules, as a pure state machine ([`CheckinState`]):
//!
//! * Each partner answers once. An answer is validated against the prompt's [`AnswerKind`] and
//!   stored normalised (text trimmed, emoji in the catalogue's spelling).
//! * An answer stays hidden from the other partner until both have answered; then both are
//!   revealed at once. The partner may see *that* an answer is waiting, never what it says.
//! * Answering again with the same answer is a harmless retry ([`AnswerOutcome::Unchanged`]:
//!   nothing to store, announce or count again); a different answer is refused
//!   ([`CheckinError::AlreadyAnswered`]): answers are final.
//! * A check-in expires [`CHECKIN_TTL`] after it opened. At expiry a lone answer is revealed and
//!   the silent partner is recorded as missed; after expiry every answer is refused.
//!
//! The prompts themselves live in [`crate::domain::prompts`].

use chrono::{DateTime, Duration, Utc};

use crate::domain::prompts::{AnswerKind, Prompt, QuickReply, QuickValue};
use crate::domain::streaks::Side;

/// How long a check-in stays open by default.
pub const CHECKIN_TTL: Duration = Duration::hours(24);
/// Longest text answer, in characters, after trimming.
pub const MAX_TEXT_CHARS: usize = tapline_proto::limits::ANSWER_TEXT_CHARS;
/// Lowest and highest scale value.
pub const SCALE: std::ops::RangeInclusive<u8> = 1..=5;

/// An answer to a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A scale value, 1 to 5.
    Scale(u8),
    /// The index of a choice option.
    Choice(u8),
    /// One of the prompt's emoji.
    Emoji(String),
    /// Short text.
    Text(String),
}

/// Why an answer does not fit its prompt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// A scale answer to a choice prompt, and the like.
    #[error("this prompt takes a different kind of answer")]
    WrongKind,
    /// A scale value outside 1-5.
    #[error("a scale answer must be between 1 and 5")]
    ScaleOutOfRange,
    /// A choice index past the last option.
    #[error("not one of the options")]
    UnknownOption,
    /// An emoji the prompt does not offer.
    #[error("not one of the offered emoji")]
    UnknownEmoji,
    /// Text that is empty once trimmed.
    #[error("the answer is empty")]
    EmptyText,
    /// Text longer than [`MAX_TEXT_CHARS`].
    #[error("the answer is longer than {MAX_TEXT_CHARS} characters")]
    TextTooLong,
    /// Text with a control character (including line breaks).
    #[error("the answer must not contain control characters or line breaks")]
    ControlCharacter,
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckinError {
    /// The answer does not fit the prompt.
    #[error(transparent)]
    Invalid(#[from] AnswerError),
    /// This partner already gave a different answer.
    #[error("already answered")]
    AlreadyAnswered,
    /// The check-in has expired.
    #[error("this check-in has expired")]
    Expired,
}

/// Checks `answer` against a prompt's answer kind and returns it normalised: text trimmed,
/// emoji spelled as in the catalogue (with or without a variation selector).
pub fn validate(kind: &AnswerKind, answer: Answer) -> Result<Answer, AnswerError> {
    match (kind, answer) {
        (AnswerKind::Scale { .. }, Answer::Scale(v)) => {
            if SCALE.contains(&v) {
                Ok(Answer::Scale(v))
            } else {
                Err(AnswerError::ScaleOutOfRange)
            }
        }
        (AnswerKind::Choice(options), Answer::Choice(i)) => {
            if usize::from(i) < options.len() {
                Ok(Answer::Choice(i))
            } else {
                Err(AnswerError::UnknownOption)
            }
        }
        (AnswerKind::Emoji(options), Answer::Emoji(e)) => {
            let bare = |s: &str| s.trim().replace('\u{fe0f}', "");
            let wanted = bare(&e);
            options
                .iter()
                .find(|option| bare(option) == wanted)
                .map(|option| Answer::Emoji((*option).to_owned()))
                .ok_or(AnswerError::UnknownEmoji)
        }
        (AnswerKind::Text, Answer::Text(t)) => {
            // Refuse a huge input by its byte length before counting characters.
            if t.len() > MAX_TEXT_CHARS * 32 + 1024 {
                return Err(AnswerError::TextTooLong);
            }
            let trimmed = t.trim();
            if trimmed.is_empty() {
                Err(AnswerError::EmptyText)
            } else if trimmed.chars().any(char::is_control) {
                Err(AnswerError::ControlCharacter)
            } else if tapline_proto::limits::char_count(trimmed) > MAX_TEXT_CHARS {
                Err(AnswerError::TextTooLong)
            } else {
                Ok(Answer::Text(trimmed.to_owned()))
            }
        }
        _ => Err(AnswerError::WrongKind),
    }
}

/// The answer a quick reply of `prompt` stands for.
pub fn quick_answer(prompt: &Prompt, reply: &QuickReply) -> Answer {
    match (prompt.kind, reply.value) {
        (AnswerKind::Emoji(options), QuickValue::Option(i)) => Answer::Emoji(
            options
                .get(usize::from(i))
                .copied()
                .unwrap_or_default()
                .to_owned(),
        ),
        (_, QuickValue::Option(i)) => Answer::Choice(i),
        (_, QuickValue::Scale(v)) => Answer::Scale(v),
        (_, QuickValue::Text) => Answer::Text(reply.label.to_owned()),
    }
}

/// Where a check-in stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for one or both answers.
    Open,
    /// Both answered; both answers are visible to both.
    Revealed,
    /// Expired before both answered; a lone answer is visible to both.
    Expired,
}

/// What an accepted answer led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerOutcome {
    /// Stored and hidden until the partner answers.
    Waiting,
    /// Both have answered: reveal both to both.
    Revealed {
        /// Partner A's answer.
        a: Answer,
        /// Partner B's answer.
        b: Answer,
    },
    /// The same answer again (a retry): nothing changed.
    Unchanged,
}

/// One partner's part in an expired check-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// They answered; revealed now.
    Answered(Answer),
    /// They did not answer in time.
    Missed,
}

/// The result of an expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Partner A's part.
    pub a: Response,
    /// Partner B's part.
    pub b: Response,
}

/// What one partner can see of the other's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerAnswer<'a> {
    /// The partner has not answered (and the check-in is still open).
    NotYet,
    /// The partner has answered; the content stays hidden until the viewer answers too.
    Hidden,
    /// The partner's answer, revealed.
    Revealed(&'a Answer),
    /// The check-in expired without the partner's answer.
    Missed,
}

/// One check-in between a couple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckinState {
    /// The prompt both answer (restore with [`crate::domain::prompts::by_id`]).
    pub prompt: &'static Prompt,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// When it expires (an answer at or after this instant is too late).
    pub expires_at: DateTime<Utc>,
    /// Partner A's answer.
    pub answer_a: Option<Answer>,
    /// Partner B's answer.
    pub answer_b: Option<Answer>,
    /// Where it stands.
    pub phase: Phase,
}

impl CheckinState {
    /// A check-in opened at `now`, expiring after [`CHECKIN_TTL`].
    pub fn open(prompt: &'static Prompt, now: DateTime<Utc>) -> Self {
        Self::open_for(prompt, now, CHECKIN_TTL)
    }

    /// A check-in opened at `now`, expiring after `ttl`.
    pub fn open_for(prompt: &'static Prompt, now: DateTime<Utc>, ttl: Duration) -> Self {
        CheckinState {
            prompt,
            opened_at: now,
            expires_at: now + ttl,
            answer_a: None,
            answer_b: None,
            phase: Phase::Open,
        }
    }

    /// Keeps an open check-in open at least [`CHECKIN_TTL`] after `now`, when a partner is
    /// nudged to it later than the other (a routine firing hours later on their clock): each
    /// partner has a whole day from their own nudge. Returns whether the expiry moved.
    pub fn extend_for_late_partner(&mut self, now: DateTime<Utc>) -> bool {
        let due = now + CHECKIN_TTL;
        if self.phase == Phase::Open && self.expires_at < due {
            self.expires_at = due;
            true
        } else {
            false
        }
    }

    /// One partner's answer, if given.
    pub fn answer_of(&self, side: Side) -> Option<&Answer> {
        match side {
            Side::A => self.answer_a.as_ref(),
            Side::B => self.answer_b.as_ref(),
        }
    }

    /// Records `side`'s answer at `now`. An identical repeat is [`AnswerOutcome::Unchanged`]; a
    /// different one, or any answer once expired (or at/after `expires_at`), is refused. Only
    /// `Waiting` and `Revealed` are new answers (for example, a qualifying streak action).
    pub fn answer(
        &mut self,
        side: Side,
        answer: Answer,
        now: DateTime<Utc>,
    ) -> Result<AnswerOutcome, CheckinError> {
        if self.phase == Phase::Expired || (self.phase == Phase::Open && now >= self.expires_at) {
            return Err(CheckinError::Expired);
        }
        let answer = validate(&self.prompt.kind, answer)?;
        let slot = match side {
            Side::A => &mut self.answer_a,
            Side::B => &mut self.answer_b,
        };
        match slot {
            Some(existing) if *existing == answer => return Ok(AnswerOutcome::Unchanged),
            Some(_) => return Err(CheckinError::AlreadyAnswered),
            None => *slot = Some(answer),
        }
        Ok(match (&self.answer_a, &self.answer_b) {
            (Some(a), Some(b)) => {
                self.phase = Phase::Revealed;
                AnswerOutcome::Revealed {
                    a: a.clone(),
                    b: b.clone(),
                }
            }
            _ => AnswerOutcome::Waiting,
        })
    }

    /// Expires the check-in if it is still open at or after `expires_at`: a lone answer is
    /// revealed and the silent partner recorded as missed. `None` when not due or already closed.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Option<Expired> {
        if self.phase != Phase::Open || now < self.expires_at {
            return None;
        }
        self.phase = Phase::Expired;
        let response = |a: &Option<Answer>| match a {
            Some(answer) => Response::Answered(answer.clone()),
            None => Response::Missed,
        };
        Some(Expired {
            a: response(&self.answer_a),
            b: response(&self.answer_b),
        })
    }

    /// What `viewer` may see of their partner's answer.
    pub fn partner_answer(&self, viewer: Side) -> PartnerAnswer<'_> {
        let theirs = self.answer_of(viewer.other());
        match (self.phase, theirs) {
            (Phase::Open, None) => PartnerAnswer::NotYet,
            (Phase::Open, Some(_)) => PartnerAnswer::Hidden,
            (Phase::Revealed | Phase::Expired, Some(answer)) => PartnerAnswer::Revealed(answer),
            (Phase::Revealed | Phase::Expired, None) => PartnerAnswer::Missed,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::prompts::{self, CATALOGUE};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 4, 1, 18, 0, 0).unwrap()
    }

    fn prompt(id: &str) -> &'static Prompt {
        prompts::by_id(id).unwrap()
    }

    fn text(s: &str) -> Answer {
        Answer::Text(s.to_owned())
    }

    #[test]
    fn a_partner_nudged_later_gets_a_whole_day() {
        let mut c = CheckinState::open(prompt("mood-01"), t0());
        // Nudged 17 h later: open until 24 h after that nudge.
        assert!(c.extend_for_late_partner(t0() + Duration::hours(17)));
        assert_eq!(c.expires_at, t0() + Duration::hours(41));
        // An earlier nudge never shortens it.
        assert!(!c.extend_for_late_partner(t0() + Duration::hours(1)));
        assert_eq!(c.expires_at, t0() + Duration::hours(41));
        // A closed one stays closed.
        c.phase = Phase::Expired;
        assert!(!c.extend_for_late_partner(t0() + Duration::hours(30)));
    }

    #[test]
    fn answers_stay_hidden_until_both_have_answered() {
        let mut c = CheckinState::open(prompt("mood-01"), t0());
        assert_eq!(c.partner_answer(Side::A), PartnerAnswer::NotYet);
        let out = c.answer(Side::A, Answer::Scale(4), t0() + Duration::hours(1));
        assert_eq!(out, Ok(AnswerOutcome::Waiting));
        assert_eq!(c.phase, Phase::Open);
        assert_eq!(c.partner_answer(Side::B), PartnerAnswer::Hidden);
        assert_eq!(c.partner_answer(Side::A), PartnerAnswer::NotYet);
        let out = c.answer(Side::B, Answer::Scale(2), t0() + Duration::hours(2));
        assert_eq!(
            out,
            Ok(AnswerOutcome::Revealed {
                a: Answer::Scale(4),
                b: Answer::Scale(2)
            })
        );
        assert_eq!(c.phase, Phase::Revealed);
        assert_eq!(
            c.partner_answer(Side::B),
            PartnerAnswer::Revealed(&Answer::Scale(4))
        );
        assert_eq!(
            c.partner_answer(Side::A),
            PartnerAnswer::Revealed(&Answer::Scale(2))
        );
        // A revealed check-in does not expire.
        assert_eq!(c.expire(t0() + Duration::days(2)), None);
        assert_eq!(c.phase, Phase::Revealed);
    }

    #[test]
    fn expiry_reveals_a_lone_answer_and_records_the_miss() {
        let mut c = CheckinState::open(prompt("oneword-01"), t0());
        c.answer(Side::B, text("  Sunny "), t0()).unwrap();
        assert_eq!(c.expire(t0() + Duration::hours(23)), None);
        assert_eq!(c.phase, Phase::Open);
        let expired = c.expire(t0() + CHECKIN_TTL).unwrap();
        assert_eq!(
            expired,
            Expired {
                a: Response::Missed,
                b: Response::Answered(text("Sunny"))
            }
        );
        assert_eq!(c.phase, Phase::Expired);
        assert_eq!(
            c.partner_answer(Side::A),
            PartnerAnswer::Revealed(&text("Sunny"))
        );
        assert_eq!(c.partner_answer(Side::B), PartnerAnswer::Missed);
        // Expiring twice reports nothing new.
        assert_eq!(c.expire(t0() + Duration::days(3)), None);
    }

    #[test]
    fn expiry_with_no_answers_misses_both() {
        let mut c = CheckinState::open_for(prompt("energy-01"), t0(), Duration::hours(2));
        assert_eq!(c.expires_at, t0() + Duration::hours(2));
        let expired = c.expire(t0() + Duration::hours(2)).unwrap();
        assert_eq!(expired.a, Response::Missed);
        assert_eq!(expired.b, Response::Missed);
    }

    #[test]
    fn answers_after_expiry_are_refused() {
        let mut c = CheckinState::open(prompt("mood-01"), t0());
        c.answer(Side::A, Answer::Scale(3), t0()).unwrap();
        // Due but not yet processed: refused, state untouched.
        let late = t0() + CHECKIN_TTL;
        assert_eq!(
            c.answer(Side::B, Answer::Scale(3), late),
            Err(CheckinError::Expired)
        );
        assert_eq!(c.answer_b, None);
        assert!(c.expire(late).is_some());
        assert_eq!(
            c.answer(Side::A, Answer::Scale(3), late),
            Err(CheckinError::Expired)
        );
        // Just in time is fine.
        let mut c = CheckinState::open(prompt("mood-01"), t0());
        let just = t0() + CHECKIN_TTL - Duration::seconds(1);
        assert_eq!(
            c.answer(Side::B, Answer::Scale(1), just),
            Ok(AnswerOutcome::Waiting)
        );
    }

    #[test]
    fn answering_twice_is_idempotent_only_when_identical() {
        let mut c = CheckinState::open(prompt("oneword-01"), t0());
        assert_eq!(
            c.answer(Side::A, text("Busy"), t0()),
            Ok(AnswerOutcome::Waiting)
        );
        // Same answer after normalisation: a retry.
        assert_eq!(
            c.answer(Side::A, text(" Busy  "), t0()),
            Ok(AnswerOutcome::Unchanged)
        );
        assert_eq!(
            c.answer(Side::A, text("Lovely"), t0()),
            Err(CheckinError::AlreadyAnswered)
        );
        assert_eq!(c.answer_a, Some(text("Busy")));
        assert!(matches!(
            c.answer(Side::B, text("Long"), t0()),
            Ok(AnswerOutcome::Revealed { .. })
        ));
        // A retry after the reveal, even after the expiry time, changes nothing.
        let later = t0() + Duration::days(2);
        assert_eq!(
            c.answer(Side::B, text("Long"), later),
            Ok(AnswerOutcome::Unchanged)
        );
        assert_eq!(c.phase, Phase::Revealed);
        assert_eq!(
            c.answer(Side::B, text("Short"), t0()),
            Err(CheckinError::AlreadyAnswered)
        );
    }

    #[test]
    fn scale_answers_are_1_to_5() {
        let kind = prompt("energy-01").kind;
        for v in 1..=5 {
            assert_eq!(validate(&kind, Answer::Scale(v)), Ok(Answer::Scale(v)));
        }
        assert_eq!(
            validate(&kind, Answer::Scale(0)),
            Err(AnswerError::ScaleOutOfRange)
        );
        assert_eq!(
            validate(&kind, Answer::Scale(6)),
            Err(AnswerError::ScaleOutOfRange)
        );
        assert_eq!(validate(&kind, text("5")), Err(AnswerError::WrongKind));
    }

    #[test]
    fn choice_answers_must_name_an_option() {
        let kind = prompt("playful-03").kind; // three options
        assert_eq!(validate(&kind, Answer::Choice(2)), Ok(Answer::Choice(2)));
        assert_eq!(
            validate(&kind, Answer::Choice(3)),
            Err(AnswerError::UnknownOption)
        );
        assert_eq!(
            validate(&kind, Answer::Scale(1)),
            Err(AnswerError::WrongKind)
        );
    }

    #[test]
    fn emoji_answers_must_be_offered_and_are_normalised() {
        let kind = prompt("mood-02").kind;
        assert_eq!(
            validate(&kind, Answer::Emoji("⛅".into())),
            Ok(Answer::Emoji("⛅".into()))
        );
        // Without the variation selector the catalogue's spelling is stored.
        assert_eq!(
            validate(&kind, Answer::Emoji("\u{2600}".into())),
            Ok(Answer::Emoji("\u{2600}\u{fe0f}".into()))
        );
        assert_eq!(
            validate(&kind, Answer::Emoji("🍕".into())),
            Err(AnswerError::UnknownEmoji)
        );
        assert_eq!(
            validate(&kind, Answer::Emoji(String::new())),
            Err(AnswerError::UnknownEmoji)
        );
        assert_eq!(
            validate(&kind, Answer::Choice(0)),
            Err(AnswerError::WrongKind)
        );
    }

    #[test]
    fn text_answers_are_trimmed_bounded_and_printable() {
        let kind = AnswerKind::Text;
        assert_eq!(validate(&kind, text("  hi there ")), Ok(text("hi there")));
        assert_eq!(validate(&kind, text("   ")), Err(AnswerError::EmptyText));
        assert_eq!(validate(&kind, text("")), Err(AnswerError::EmptyText));
        let max = "é".repeat(MAX_TEXT_CHARS);
        assert_eq!(validate(&kind, text(&max)), Ok(text(&max)));
        let long = "a".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(validate(&kind, text(&long)), Err(AnswerError::TextTooLong));
        let padded = format!("  {max}  ");
        assert_eq!(validate(&kind, text(&padded)), Ok(text(&max)));
        let huge = "a".repeat(1 << 20);
        assert_eq!(validate(&kind, text(&huge)), Err(AnswerError::TextTooLong));
        for bad in [
            "line\nbreak",
            "tab\there",
            "bell\u{7}",
            "del\u{7f}x",
            "x\u{85}y",
        ] {
            assert_eq!(
                validate(&kind, text(bad)),
                Err(AnswerError::ControlCharacter),
                "{bad:?}"
            );
        }
        assert_eq!(validate(&kind, text("ok 👍")), Ok(text("ok 👍")));
        assert_eq!(
            validate(&kind, Answer::Scale(1)),
            Err(AnswerError::WrongKind)
        );
    }

    #[test]
    fn every_quick_reply_is_a_valid_answer() {
        for prompt in CATALOGUE {
            for reply in prompt.quick {
                let answer = quick_answer(prompt, reply);
                assert_eq!(
                    validate(&prompt.kind, answer.clone()),
                    Ok(answer),
                    "{} {}",
                    prompt.id,
                    reply.label
                );
            }
        }
        let p = prompt("mood-02");
        assert_eq!(quick_answer(p, &p.quick[1]), Answer::Emoji("⛅".into()));
    }

    #[test]
    fn invalid_answers_leave_the_state_untouched() {
        let mut c = CheckinState::open(prompt("mood-01"), t0());
        assert_eq!(
            c.answer(Side::A, Answer::Scale(9), t0()),
            Err(CheckinError::Invalid(AnswerError::ScaleOutOfRange))
        );
        assert_eq!(c.answer_a, None);
        assert_eq!(c.phase, Phase::Open);
    }
}
