//! The streak, check-in and routine types that cross the FFI, and their conversions from and to
//! the wire.

use std::time::SystemTime;

use tapline_proto::limits;
use tapline_proto::v1 as pb;

use crate::error::{CoreError, CoreResult, RefusalCode};
use crate::model::system_time;

// ---------------------------------------------------------------------------------------------
// Streaks

/// How a date of the streak calendar ended, or that it has not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum DayStatus {
    /// Not over for both partners yet.
    Open,
    /// Both partners acted.
    Connected,
    /// Missed, but a freeze kept the streak.
    Frozen,
    /// Inside a pause: neither counts nor breaks.
    Paused,
    /// A partner never lived this date (crossed the date line).
    Skipped,
    /// A partner asked for space during it ("I need a moment"): neither counts nor breaks.
    Space,
    /// Missed with no freeze: the streak broke.
    Missed,
}

/// One person's current local day.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PersonDayInfo {
    /// Local date, YYYY-MM-DD, in their zone.
    pub date: String,
    /// Qualifying actions (taps sent, check-ins answered) stamped with that date.
    pub actions: u32,
}

/// A scheduled pause of the streak.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PauseInfo {
    /// Its id (to cancel it).
    pub pause_id: String,
    /// First paused date, YYYY-MM-DD.
    pub from_date: String,
    /// Last paused date, inclusive.
    pub to_date: String,
    /// Who scheduled it.
    pub by_account_id: String,
    /// Whether this account scheduled it.
    pub by_me: bool,
}

/// The couple's streak now.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StreakInfo {
    /// Calm mode: streaks are not shown (the counts are then 0).
    pub calm: bool,
    /// Consecutive connected days.
    pub current: u32,
    /// The best run so far.
    pub longest: u32,
    /// Freezes held, 0-2.
    pub freezes_held: u32,
    /// Connected days still needed to earn the next freeze.
    pub days_to_next_freeze: u32,
    /// The next milestone in days; `None` after the last one.
    pub next_milestone: Option<u32>,
    /// This account's today.
    pub me_today: Option<PersonDayInfo>,
    /// The partner's today.
    pub partner_today: Option<PersonDayInfo>,
    /// Pauses that have not ended.
    pub pauses: Vec<PauseInfo>,
    /// The latest settled date that was connected, YYYY-MM-DD (none yet, or an older server).
    pub last_connected_date: Option<String>,
    /// The first date the streak tracks, YYYY-MM-DD.
    pub first_date: Option<String>,
}

/// A date of the streak history, as this account sees it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct StreakDayInfo {
    /// YYYY-MM-DD.
    pub date: String,
    /// How it ended.
    pub status: DayStatus,
    /// This account's qualifying actions stamped with the date.
    pub my_actions: u32,
    /// The partner's.
    pub partner_actions: u32,
}

/// What moved the streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum StreakChange {
    /// A day became connected.
    Grew,
    /// A milestone was reached.
    Milestone,
    /// A freeze was earned.
    FreezeEarned,
    /// A missed day used a freeze.
    FreezeUsed,
    /// A missed day broke the streak.
    Broken,
    /// A pause was scheduled or cancelled, or calm mode changed.
    Settings,
    /// A date that was not connected became connected late (a partner flew back into it and
    /// acted): the streak was counted again and one that broke there is back.
    Restored,
    /// A change this build does not know; the streak itself is current.
    Other,
}

impl DayStatus {
    /// A status this build does not know counts as not settled yet.
    pub(crate) fn from_wire(v: i32) -> DayStatus {
        match pb::DayStatus::try_from(v) {
            Ok(pb::DayStatus::Connected) => DayStatus::Connected,
            Ok(pb::DayStatus::Frozen) => DayStatus::Frozen,
            Ok(pb::DayStatus::Paused) => DayStatus::Paused,
            Ok(pb::DayStatus::Skipped) => DayStatus::Skipped,
            Ok(pb::DayStatus::Space) => DayStatus::Space,
            Ok(pb::DayStatus::Missed) => DayStatus::Missed,
            _ => DayStatus::Open,
        }
    }
}

impl StreakChange {
    pub(crate) fn from_wire(v: i32) -> StreakChange {
        match pb::StreakChange::try_from(v) {
            Ok(pb::StreakChange::Grew) => StreakChange::Grew,
            Ok(pb::StreakChange::Milestone) => StreakChange::Milestone,
            Ok(pb::StreakChange::FreezeEarned) => StreakChange::FreezeEarned,
            Ok(pb::StreakChange::FreezeUsed) => StreakChange::FreezeUsed,
            Ok(pb::StreakChange::Broken) => StreakChange::Broken,
            Ok(pb::StreakChange::Settings) => StreakChange::Settings,
            Ok(pb::StreakChange::Restored) => StreakChange::Restored,
            _ => StreakChange::Other,
        }
    }
}

impl PersonDayInfo {
    fn from_wire(d: &pb::PersonDay) -> PersonDayInfo {
        PersonDayInfo {
            date: d.date.clone(),
            actions: d.actions,
        }
    }
}

impl PauseInfo {
    pub(crate) fn from_wire(p: &pb::Pause, me: &str) -> PauseInfo {
        PauseInfo {
            pause_id: p.pause_id.clone(),
            from_date: p.from_date.clone(),
            to_date: p.to_date.clone(),
            by_account_id: p.by_account_id.clone(),
            by_me: !me.is_empty() && p.by_account_id == me,
        }
    }
}

impl StreakInfo {
    pub(crate) fn from_wire(s: &pb::Streak, me: &str) -> StreakInfo {
        StreakInfo {
            calm: s.calm,
            current: s.current,
            longest: s.longest,
            freezes_held: s.freezes_held,
            days_to_next_freeze: s.days_to_next_freeze,
            next_milestone: (s.next_milestone > 0).then_some(s.next_milestone),
            me_today: s.me_today.as_ref().map(PersonDayInfo::from_wire),
            partner_today: s.partner_today.as_ref().map(PersonDayInfo::from_wire),
            pauses: s
                .pauses
                .iter()
                .map(|p| PauseInfo::from_wire(p, me))
                .collect(),
            last_connected_date: (!s.last_connected_date.is_empty())
                .then(|| s.last_connected_date.clone()),
            first_date: (!s.first_date.is_empty()).then(|| s.first_date.clone()),
        }
    }
}

impl From<&pb::StreakDay> for StreakDayInfo {
    fn from(d: &pb::StreakDay) -> Self {
        StreakDayInfo {
            date: d.date.clone(),
            status: DayStatus::from_wire(d.status),
            my_actions: d.my_actions,
            partner_actions: d.partner_actions,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Check-ins

/// What a check-in prompt is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum PromptCategory {
    /// How each feels overall.
    Mood,
    /// How much energy each has.
    Energy,
    /// The day in one word.
    OneWordDay,
    /// "I feel…" sentences.
    IFeel,
    /// Appreciating the partner.
    Appreciation,
    /// What each needs.
    NeedSupport,
    /// Small things to be thankful for.
    Gratitude,
    /// Deeper questions.
    Curiosity,
    /// Light and playful.
    Playful,
    /// Reconnecting after time apart.
    Reconnecting,
}

impl PromptCategory {
    /// Every category, in catalogue order.
    pub const ALL: [PromptCategory; 10] = [
        PromptCategory::Mood,
        PromptCategory::Energy,
        PromptCategory::OneWordDay,
        PromptCategory::IFeel,
        PromptCategory::Appreciation,
        PromptCategory::NeedSupport,
        PromptCategory::Gratitude,
        PromptCategory::Curiosity,
        PromptCategory::Playful,
        PromptCategory::Reconnecting,
    ];

    pub(crate) fn to_wire(self) -> pb::PromptCategory {
        match self {
            PromptCategory::Mood => pb::PromptCategory::Mood,
            PromptCategory::Energy => pb::PromptCategory::Energy,
            PromptCategory::OneWordDay => pb::PromptCategory::OneWordDay,
            PromptCategory::IFeel => pb::PromptCategory::IFeel,
            PromptCategory::Appreciation => pb::PromptCategory::Appreciation,
            PromptCategory::NeedSupport => pb::PromptCategory::NeedSupport,
            PromptCategory::Gratitude => pb::PromptCategory::Gratitude,
            PromptCategory::Curiosity => pb::PromptCategory::Curiosity,
            PromptCategory::Playful => pb::PromptCategory::Playful,
            PromptCategory::Reconnecting => pb::PromptCategory::Reconnecting,
        }
    }

    pub(crate) fn from_wire(v: i32) -> Option<PromptCategory> {
        let wire = pb::PromptCategory::try_from(v).ok()?;
        PromptCategory::ALL
            .into_iter()
            .find(|c| c.to_wire() == wire)
    }
}

/// How a prompt is answered.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum AnswerType {
    /// A number from 1 to 5.
    Scale {
        /// What 1 means.
        low_label: String,
        /// What 5 means.
        high_label: String,
    },
    /// One of a few options, answered with its index.
    Choice {
        /// The options, in order.
        options: Vec<String>,
    },
    /// One of a few emoji.
    Emoji {
        /// The emoji.
        options: Vec<String>,
    },
    /// Short text on one line.
    Text {
        /// Longest answer, in characters.
        max_chars: u32,
    },
}

/// An answer to a check-in; which variant fits depends on the prompt's [`AnswerType`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum CheckinAnswer {
    /// 1-5.
    Scale {
        /// The value.
        value: u8,
    },
    /// An option, by its index from 0.
    Choice {
        /// The index.
        index: u32,
    },
    /// One of the prompt's emoji.
    Emoji {
        /// The emoji.
        emoji: String,
    },
    /// 1-280 characters on one line.
    Text {
        /// The text.
        text: String,
    },
}

/// A one-tap answer that fits a watch screen.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct QuickReplyInfo {
    /// What the button says.
    pub label: String,
    /// The answer it sends.
    pub answer: CheckinAnswer,
}

/// A check-in question.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PromptInfo {
    /// Stable id, e.g. "energy-03".
    pub prompt_id: String,
    /// Its category (`None` for one this build does not know).
    pub category: Option<PromptCategory>,
    /// The question.
    pub text: String,
    /// How it is answered (`None` for a kind this build does not know: quick replies only).
    pub answer_type: Option<AnswerType>,
    /// Two to four one-tap answers.
    pub quick_replies: Vec<QuickReplyInfo>,
}

/// Where a check-in stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum CheckinStatus {
    /// Waiting for one or both answers.
    Open,
    /// Both answered; both answers are visible.
    Revealed,
    /// Over; a lone answer is visible, the other is recorded as missed.
    Expired,
}

/// One page of the couple's check-ins (`checkin_history`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CheckinPage {
    /// Open ones first, then the newest.
    pub checkins: Vec<CheckinInfo>,
    /// Pass it back for the next page; `None` on the last one.
    pub next_page_token: Option<String>,
}

/// A check-in as this account sees it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CheckinInfo {
    /// Its id.
    pub checkin_id: String,
    /// The question.
    pub prompt: PromptInfo,
    /// Where it stands.
    pub status: CheckinStatus,
    /// Who asked (`None` when a routine opened it).
    pub opened_by_account_id: Option<String>,
    /// Whether this account asked.
    pub opened_by_me: bool,
    /// The routine that opened it, if any.
    pub routine_id: Option<String>,
    /// When it opened.
    pub opened_at: SystemTime,
    /// When it closes.
    pub expires_at: SystemTime,
    /// This account's answer, once given (or queued on this device).
    pub my_answer: Option<CheckinAnswer>,
    /// `my_answer` waits in this device's outbox: not yet accepted by the server.
    pub my_answer_pending: bool,
    /// Whether the partner has answered (their answer stays hidden until both have).
    pub partner_answered: bool,
    /// The partner's answer, once revealed.
    pub partner_answer: Option<CheckinAnswer>,
    /// At expiry: this account did not answer.
    pub i_missed: bool,
    /// At expiry: the partner did not answer.
    pub partner_missed: bool,
}

/// Where an answer this device queued stands.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum AnswerState {
    /// Stored locally, waiting to be sent.
    Queued,
    /// Accepted by the server.
    Sent,
    /// Refused for good (e.g. the check-in expired); will not be retried.
    Refused {
        /// Why, in plain words.
        reason: String,
        /// Why, for the app to act on.
        code: RefusalCode,
    },
}

/// An answer in this device's outbox.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LocalAnswer {
    /// The check-in it answers.
    pub checkin_id: String,
    /// The answer.
    pub answer: CheckinAnswer,
    /// Where it stands.
    pub state: AnswerState,
    /// When it was given.
    pub created_at: SystemTime,
    /// Send attempts so far.
    pub attempts: u32,
}

impl CheckinAnswer {
    pub(crate) fn to_wire(&self) -> pb::Answer {
        use pb::answer::Value;
        let value = match self {
            CheckinAnswer::Scale { value } => Value::Scale(u32::from(*value)),
            CheckinAnswer::Choice { index } => Value::Choice(*index),
            CheckinAnswer::Emoji { emoji } => Value::Emoji(emoji.clone()),
            CheckinAnswer::Text { text } => Value::Text(text.clone()),
        };
        pb::Answer { value: Some(value) }
    }

    pub(crate) fn from_wire(a: Option<&pb::Answer>) -> Option<CheckinAnswer> {
        use pb::answer::Value;
        Some(match a?.value.as_ref()? {
            Value::Scale(v) => CheckinAnswer::Scale {
                value: (*v).min(u32::from(u8::MAX)) as u8,
            },
            Value::Choice(i) => CheckinAnswer::Choice { index: *i },
            Value::Emoji(e) => CheckinAnswer::Emoji { emoji: e.clone() },
            Value::Text(t) => CheckinAnswer::Text { text: t.clone() },
        })
    }
}

impl AnswerType {
    fn from_wire(t: &pb::prompt::AnswerType) -> AnswerType {
        use pb::prompt::AnswerType as W;
        match t {
            W::Scale(s) => AnswerType::Scale {
                low_label: s.low_label.clone(),
                high_label: s.high_label.clone(),
            },
            W::Choice(c) => AnswerType::Choice {
                options: c.options.clone(),
            },
            W::Emoji(e) => AnswerType::Emoji {
                options: e.options.clone(),
            },
            W::TextAnswer(t) => AnswerType::Text {
                max_chars: t.max_chars,
            },
        }
    }
}

impl From<&pb::Prompt> for PromptInfo {
    fn from(p: &pb::Prompt) -> Self {
        PromptInfo {
            prompt_id: p.prompt_id.clone(),
            category: PromptCategory::from_wire(p.category),
            text: p.text.clone(),
            answer_type: p.answer_type.as_ref().map(AnswerType::from_wire),
            // A reply without an answer could not be sent: leave it out.
            quick_replies: p
                .quick_replies
                .iter()
                .filter_map(|q| {
                    Some(QuickReplyInfo {
                        label: q.label.clone(),
                        answer: CheckinAnswer::from_wire(q.answer.as_ref())?,
                    })
                })
                .collect(),
        }
    }
}

impl CheckinStatus {
    /// A status this build does not know counts as closed.
    pub(crate) fn from_wire(v: i32) -> CheckinStatus {
        match pb::CheckinStatus::try_from(v) {
            Ok(pb::CheckinStatus::Open) => CheckinStatus::Open,
            Ok(pb::CheckinStatus::Revealed) => CheckinStatus::Revealed,
            _ => CheckinStatus::Expired,
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

impl CheckinInfo {
    /// The check-in as `me` sees it (no local answer applied).
    pub(crate) fn from_wire(c: &pb::Checkin, me: &str) -> CheckinInfo {
        CheckinInfo {
            checkin_id: c.checkin_id.clone(),
            prompt: c
                .prompt
                .as_ref()
                .map(PromptInfo::from)
                .unwrap_or_else(|| PromptInfo {
                    prompt_id: String::new(),
                    category: None,
                    text: String::new(),
                    answer_type: None,
                    quick_replies: vec![],
                }),
            status: CheckinStatus::from_wire(c.status),
            opened_by_account_id: non_empty(&c.opened_by_account_id),
            opened_by_me: !me.is_empty() && c.opened_by_account_id == me,
            routine_id: non_empty(&c.routine_id),
            opened_at: system_time(c.opened_at.as_ref()),
            expires_at: system_time(c.expires_at.as_ref()),
            my_answer: CheckinAnswer::from_wire(c.my_answer.as_ref()),
            my_answer_pending: false,
            partner_answered: c.partner_answered,
            partner_answer: CheckinAnswer::from_wire(c.partner_answer.as_ref()),
            i_missed: c.i_missed,
            partner_missed: c.partner_missed,
        }
    }

    /// Shows an answer this device has not yet had accepted as this account's answer.
    pub(crate) fn with_local_answer(mut self, local: Option<&LocalAnswer>) -> CheckinInfo {
        if let Some(local) = local
            && self.my_answer.is_none()
            && !matches!(local.state, AnswerState::Refused { .. })
        {
            self.my_answer = Some(local.answer.clone());
            self.my_answer_pending = local.state == AnswerState::Queued;
        }
        self
    }

    /// Open, not expired at `now`, and still waiting for this account's answer.
    pub fn awaits_my_answer(&self, now: SystemTime) -> bool {
        self.status == CheckinStatus::Open
            && self.expires_at > now
            && self.my_answer.is_none()
            && !self.i_missed
    }
}

// ---------------------------------------------------------------------------------------------
// Routines

/// What a routine does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum RoutineKind {
    /// Opens a check-in of a category that both partners answer.
    Checkin,
    /// A reminder with a short text (e.g. date night).
    Reminder,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, uniffi::Enum)]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl Weekday {
    /// Monday to Sunday.
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    fn to_wire(self) -> pb::Weekday {
        match self {
            Weekday::Monday => pb::Weekday::Monday,
            Weekday::Tuesday => pb::Weekday::Tuesday,
            Weekday::Wednesday => pb::Weekday::Wednesday,
            Weekday::Thursday => pb::Weekday::Thursday,
            Weekday::Friday => pb::Weekday::Friday,
            Weekday::Saturday => pb::Weekday::Saturday,
            Weekday::Sunday => pb::Weekday::Sunday,
        }
    }

    fn from_wire(v: i32) -> Option<Weekday> {
        let wire = pb::Weekday::try_from(v).ok()?;
        Weekday::ALL.into_iter().find(|d| d.to_wire() == wire)
    }
}

/// What a routine does and when.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RoutineSpec {
    /// 1-40 characters.
    pub name: String,
    /// What it does.
    pub kind: RoutineKind,
    /// For check-in routines: the category of the prompt.
    pub checkin_category: Option<PromptCategory>,
    /// For reminders: 1-120 characters.
    pub reminder_text: Option<String>,
    /// The weekdays it fires on (at least one).
    pub days: Vec<Weekday>,
    /// Local hour in each partner's own zone, 0-23.
    pub hour: u8,
    /// Minute, 0-59.
    pub minute: u8,
    /// A paused routine does not fire.
    pub paused: bool,
}

/// One firing of a routine for one partner.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RoutineFiringInfo {
    /// Whose firing it was.
    pub account_id: String,
    /// Whether it was this account's.
    pub mine: bool,
    /// When it was due.
    pub scheduled_for: SystemTime,
    /// When it fired (`None` when skipped).
    pub fired_at: Option<SystemTime>,
    /// Skipped because the server was down too long.
    pub skipped: bool,
}

/// A routine of the couple.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RoutineInfo {
    /// Its id.
    pub routine_id: String,
    /// Its settings.
    pub spec: RoutineSpec,
    /// Who made it.
    pub created_by_account_id: String,
    /// Whether this account made it.
    pub created_by_me: bool,
    /// When it was made.
    pub created_at: SystemTime,
    /// When it next fires for this account (`None` when paused).
    pub next_firing: Option<SystemTime>,
    /// The latest firings for either partner, newest first.
    pub recent_firings: Vec<RoutineFiringInfo>,
}

const MAX_ROUTINE_NAME: usize = limits::NAME_CHARS;
const MAX_REMINDER_TEXT: usize = limits::REMINDER_CHARS;

/// Required one-line text, by the shared rule (trimmed, counted in user-perceived characters).
fn one_line(field: &'static str, s: &str, max: usize) -> CoreResult<String> {
    Ok(limits::required_text(field, s, max)?)
}

impl RoutineSpec {
    /// Checks the spec and puts it on the wire (name and text trimmed, days sorted once each).
    pub(crate) fn to_wire(&self) -> CoreResult<pb::RoutineSpec> {
        let name = one_line("name", &self.name, MAX_ROUTINE_NAME)?;
        let reminder_text = self
            .reminder_text
            .as_deref()
            .filter(|t| !t.trim().is_empty());
        let (category, text) = match self.kind {
            RoutineKind::Checkin => {
                if reminder_text.is_some() {
                    return Err(CoreError::Invalid(
                        "reminder_text: only for reminder routines".into(),
                    ));
                }
                let category = self.checkin_category.ok_or_else(|| {
                    CoreError::Invalid(
                        "checkin_category: is required for a check-in routine".into(),
                    )
                })?;
                (category.to_wire(), String::new())
            }
            RoutineKind::Reminder => {
                if self.checkin_category.is_some() {
                    return Err(CoreError::Invalid(
                        "checkin_category: only for check-in routines".into(),
                    ));
                }
                let text = one_line(
                    "reminder_text",
                    reminder_text.unwrap_or_default(),
                    MAX_REMINDER_TEXT,
                )?;
                (pb::PromptCategory::Unspecified, text)
            }
        };
        let mut days = self.days.clone();
        days.sort_unstable();
        days.dedup();
        if days.is_empty() {
            return Err(CoreError::Invalid("days: at least one day".into()));
        }
        if self.hour > 23 || self.minute > 59 {
            return Err(CoreError::Invalid(format!(
                "time: {:02}:{:02} is not a time of day",
                self.hour, self.minute
            )));
        }
        Ok(pb::RoutineSpec {
            name,
            kind: match self.kind {
                RoutineKind::Checkin => pb::RoutineKind::Checkin,
                RoutineKind::Reminder => pb::RoutineKind::Reminder,
            } as i32,
            checkin_category: category as i32,
            reminder_text: text,
            days: days.into_iter().map(|d| d.to_wire() as i32).collect(),
            time: Some(pb::LocalTimeOfDay {
                hour: self.hour.into(),
                minute: self.minute.into(),
            }),
            paused: self.paused,
        })
    }

    pub(crate) fn from_wire(s: &pb::RoutineSpec) -> RoutineSpec {
        let kind = match pb::RoutineKind::try_from(s.kind) {
            Ok(pb::RoutineKind::Checkin) => RoutineKind::Checkin,
            // A kind this build does not know shows as a reminder: its name and text.
            _ => RoutineKind::Reminder,
        };
        let time = s.time.unwrap_or_default();
        RoutineSpec {
            name: s.name.clone(),
            kind,
            checkin_category: PromptCategory::from_wire(s.checkin_category),
            reminder_text: non_empty(&s.reminder_text),
            days: s
                .days
                .iter()
                .filter_map(|d| Weekday::from_wire(*d))
                .collect(),
            hour: time.hour.min(23) as u8,
            minute: time.minute.min(59) as u8,
            paused: s.paused,
        }
    }
}

impl RoutineInfo {
    pub(crate) fn from_wire(r: &pb::Routine, me: &str) -> RoutineInfo {
        let spec = r
            .spec
            .as_ref()
            .map(RoutineSpec::from_wire)
            .unwrap_or_else(|| RoutineSpec::from_wire(&pb::RoutineSpec::default()));
        RoutineInfo {
            routine_id: r.routine_id.clone(),
            spec,
            created_by_account_id: r.created_by_account_id.clone(),
            created_by_me: !me.is_empty() && r.created_by_account_id == me,
            created_at: system_time(r.created_at.as_ref()),
            next_firing: r.next_firing.as_ref().map(|t| system_time(Some(t))),
            recent_firings: r
                .recent_firings
                .iter()
                .map(|f| RoutineFiringInfo {
                    account_id: f.account_id.clone(),
                    mine: !me.is_empty() && f.account_id == me,
                    scheduled_for: system_time(f.scheduled_for.as_ref()),
                    fired_at: f.fired_at.as_ref().map(|t| system_time(Some(t))),
                    skipped: f.skipped,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn ts(secs: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: secs,
            nanos: 0,
        })
    }

    fn wire_answer(v: pb::answer::Value) -> Option<pb::Answer> {
        Some(pb::Answer { value: Some(v) })
    }

    #[test]
    fn streaks_convert_with_who_is_who() {
        let s = pb::Streak {
            calm: false,
            current: 12,
            longest: 30,
            freezes_held: 1,
            days_to_next_freeze: 2,
            next_milestone: 14,
            me_today: Some(pb::PersonDay {
                date: "2026-03-14".into(),
                actions: 2,
            }),
            partner_today: None,
            pauses: vec![pb::Pause {
                pause_id: "p1".into(),
                from_date: "2026-04-01".into(),
                to_date: "2026-04-03".into(),
                by_account_id: "me".into(),
            }],
            last_connected_date: String::new(),
            first_date: "2026-01-02".into(),
        };
        let info = StreakInfo::from_wire(&s, "me");
        assert_eq!(info.last_connected_date, None);
        assert_eq!(info.first_date.as_deref(), Some("2026-01-02"));
        assert_eq!(info.current, 12);
        assert_eq!(info.next_milestone, Some(14));
        assert_eq!(info.me_today.unwrap().actions, 2);
        assert!(info.partner_today.is_none());
        assert!(info.pauses[0].by_me);
        assert!(!StreakInfo::from_wire(&s, "other").pauses[0].by_me);
        let last = pb::Streak {
            next_milestone: 0,
            ..s
        };
        assert_eq!(StreakInfo::from_wire(&last, "me").next_milestone, None);
    }

    #[test]
    fn unknown_enum_values_have_safe_meanings() {
        assert_eq!(DayStatus::from_wire(0), DayStatus::Open);
        assert_eq!(DayStatus::from_wire(99), DayStatus::Open);
        assert_eq!(
            DayStatus::from_wire(pb::DayStatus::Frozen as i32),
            DayStatus::Frozen
        );
        assert_eq!(StreakChange::from_wire(42), StreakChange::Other);
        assert_eq!(
            StreakChange::from_wire(pb::StreakChange::Milestone as i32),
            StreakChange::Milestone
        );
        assert_eq!(CheckinStatus::from_wire(0), CheckinStatus::Expired);
        assert_eq!(PromptCategory::from_wire(0), None);
        assert_eq!(PromptCategory::from_wire(77), None);
        for c in PromptCategory::ALL {
            assert_eq!(PromptCategory::from_wire(c.to_wire() as i32), Some(c));
        }
        for d in Weekday::ALL {
            assert_eq!(Weekday::from_wire(d.to_wire() as i32), Some(d));
        }
    }

    #[test]
    fn answers_round_trip() {
        for a in [
            CheckinAnswer::Scale { value: 4 },
            CheckinAnswer::Choice { index: 2 },
            CheckinAnswer::Emoji {
                emoji: "☀️".into()
            },
            CheckinAnswer::Text {
                text: "Lovely".into(),
            },
        ] {
            assert_eq!(CheckinAnswer::from_wire(Some(&a.to_wire())), Some(a));
        }
        assert_eq!(CheckinAnswer::from_wire(None), None);
        assert_eq!(CheckinAnswer::from_wire(Some(&pb::Answer::default())), None);
    }

    fn checkin() -> pb::Checkin {
        pb::Checkin {
            checkin_id: "c1".into(),
            prompt: Some(pb::Prompt {
                prompt_id: "energy-01".into(),
                category: pb::PromptCategory::Energy as i32,
                text: "How's your battery?".into(),
                answer_type: Some(pb::prompt::AnswerType::Scale(pb::ScaleAnswerType {
                    low_label: "Empty".into(),
                    high_label: "Fully charged".into(),
                })),
                quick_replies: vec![
                    pb::QuickReply {
                        label: "Running low".into(),
                        answer: wire_answer(pb::answer::Value::Scale(1)),
                    },
                    pb::QuickReply {
                        label: "broken".into(),
                        answer: None,
                    },
                ],
            }),
            status: pb::CheckinStatus::Open as i32,
            opened_by_account_id: "partner".into(),
            routine_id: String::new(),
            opened_at: ts(1000),
            expires_at: ts(1000 + 86_400),
            my_answer: None,
            partner_answered: true,
            partner_answer: None,
            i_missed: false,
            partner_missed: false,
        }
    }

    #[test]
    fn checkins_convert_and_show_a_queued_answer() {
        let c = CheckinInfo::from_wire(&checkin(), "me");
        assert_eq!(c.prompt.category, Some(PromptCategory::Energy));
        assert_eq!(
            c.prompt.answer_type,
            Some(AnswerType::Scale {
                low_label: "Empty".into(),
                high_label: "Fully charged".into()
            })
        );
        assert_eq!(
            c.prompt.quick_replies.len(),
            1,
            "a reply with no answer is left out"
        );
        assert!(!c.opened_by_me);
        assert_eq!(c.opened_by_account_id.as_deref(), Some("partner"));
        assert_eq!(c.routine_id, None);
        assert_eq!(c.opened_at, UNIX_EPOCH + Duration::from_secs(1000));
        let now = UNIX_EPOCH + Duration::from_secs(2000);
        assert!(c.awaits_my_answer(now));
        assert!(!c.awaits_my_answer(UNIX_EPOCH + Duration::from_secs(1000 + 86_400)));

        let local = LocalAnswer {
            checkin_id: "c1".into(),
            answer: CheckinAnswer::Scale { value: 3 },
            state: AnswerState::Queued,
            created_at: now,
            attempts: 0,
        };
        let shown = c.clone().with_local_answer(Some(&local));
        assert_eq!(shown.my_answer, Some(CheckinAnswer::Scale { value: 3 }));
        assert!(shown.my_answer_pending);
        assert!(!shown.awaits_my_answer(now));
        let failed = LocalAnswer {
            state: AnswerState::Refused {
                reason: "expired".into(),
                code: RefusalCode::CheckinExpired,
            },
            ..local
        };
        assert_eq!(c.clone().with_local_answer(Some(&failed)), c);
    }

    fn spec() -> RoutineSpec {
        RoutineSpec {
            name: "  Morning mood ".into(),
            kind: RoutineKind::Checkin,
            checkin_category: Some(PromptCategory::Mood),
            reminder_text: None,
            days: vec![Weekday::Friday, Weekday::Monday, Weekday::Friday],
            hour: 8,
            minute: 0,
            paused: false,
        }
    }

    #[test]
    fn routine_specs_are_checked_and_round_trip() {
        let wire = spec().to_wire().unwrap();
        assert_eq!(wire.name, "Morning mood");
        assert_eq!(
            wire.days,
            vec![pb::Weekday::Monday as i32, pb::Weekday::Friday as i32]
        );
        let back = RoutineSpec::from_wire(&wire);
        assert_eq!(back.name, "Morning mood");
        assert_eq!(back.days, vec![Weekday::Monday, Weekday::Friday]);
        assert_eq!(back.checkin_category, Some(PromptCategory::Mood));
        assert_eq!((back.hour, back.minute), (8, 0));

        let reminder = RoutineSpec {
            kind: RoutineKind::Reminder,
            checkin_category: None,
            reminder_text: Some("Date night!".into()),
            ..spec()
        };
        assert_eq!(reminder.to_wire().unwrap().reminder_text, "Date night!");

        let bad = |s: RoutineSpec, field: &str| match s.to_wire() {
            Err(CoreError::Invalid(r)) => assert!(r.starts_with(field), "{r}"),
            other => panic!("expected {field} to be refused, got {other:?}"),
        };
        bad(
            RoutineSpec {
                name: " ".into(),
                ..spec()
            },
            "name",
        );
        bad(
            RoutineSpec {
                name: "x".repeat(41),
                ..spec()
            },
            "name",
        );
        bad(
            RoutineSpec {
                checkin_category: None,
                ..spec()
            },
            "checkin_category",
        );
        bad(
            RoutineSpec {
                reminder_text: Some("hi".into()),
                ..spec()
            },
            "reminder_text",
        );
        bad(
            RoutineSpec {
                reminder_text: None,
                ..reminder.clone()
            },
            "reminder_text",
        );
        bad(
            RoutineSpec {
                checkin_category: Some(PromptCategory::Mood),
                ..reminder
            },
            "checkin_category",
        );
        bad(
            RoutineSpec {
                days: vec![],
                ..spec()
            },
            "days",
        );
        bad(RoutineSpec { hour: 24, ..spec() }, "time");
    }

    #[test]
    fn routines_convert_with_who_is_who() {
        let r = pb::Routine {
            routine_id: "r1".into(),
            spec: Some(spec().to_wire().unwrap()),
            created_by_account_id: "me".into(),
            created_at: ts(10),
            next_firing: ts(20),
            recent_firings: vec![pb::RoutineFiring {
                account_id: "partner".into(),
                scheduled_for: ts(5),
                fired_at: None,
                skipped: true,
            }],
        };
        let info = RoutineInfo::from_wire(&r, "me");
        assert!(info.created_by_me);
        assert_eq!(info.next_firing, Some(UNIX_EPOCH + Duration::from_secs(20)));
        let f = &info.recent_firings[0];
        assert!(!f.mine && f.skipped && f.fired_at.is_none());
    }
}
