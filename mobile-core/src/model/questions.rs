//! Deeper questions in stages, as the apps see them: from this account's point of view (the
//! partner's answer to the current question stays hidden until both answered).

use std::time::SystemTime;

use tapline_proto::v1 as pb;

use super::system_time;

/// One question of the deck, with the answers this account may see.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct QuestionInfo {
    /// 1-36, in the order they unlock.
    pub number: u32,
    /// 1-3, and its name ("Warm-up", "Closer", "Deepest").
    pub set: u32,
    pub set_name: String,
    /// 1-12 within the set.
    pub number_in_set: u32,
    pub text: String,
    /// This account's answer, once given.
    pub my_answer: Option<String>,
    /// Whether the partner answered; their words only once revealed.
    pub partner_answered: bool,
    pub partner_answer: Option<String>,
    /// When both answers were revealed.
    pub revealed_at: Option<SystemTime>,
}

impl QuestionInfo {
    pub(crate) fn from_wire(q: &pb::Question) -> QuestionInfo {
        QuestionInfo {
            number: q.number,
            set: q.set,
            set_name: q.set_name.clone(),
            number_in_set: q.number_in_set,
            text: q.text.clone(),
            my_answer: q.i_answered.then(|| q.my_answer.clone()),
            partner_answered: q.partner_answered,
            partner_answer: (q.partner_answered && q.revealed_at.is_some())
                .then(|| q.partner_answer.clone()),
            revealed_at: q.revealed_at.as_ref().map(|t| system_time(Some(t))),
        }
    }
}

/// Where the couple is in the deck.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct QuestionProgress {
    /// The current question (none once all are revealed).
    pub current: Option<QuestionInfo>,
    /// Questions revealed so far, and the total (36).
    pub revealed: u32,
    pub total: u32,
    /// Paused by a partner: nothing can be answered until resumed.
    pub paused: bool,
    /// Paused by this account.
    pub paused_by_me: bool,
    /// Every question was revealed.
    pub finished: bool,
}

impl QuestionProgress {
    pub(crate) fn from_wire(p: &pb::QuestionProgress, my_account: &str) -> QuestionProgress {
        QuestionProgress {
            current: p.current.as_ref().map(QuestionInfo::from_wire),
            revealed: p.revealed,
            total: p.total,
            paused: p.paused,
            paused_by_me: p.paused && p.paused_by_account_id == my_account,
            finished: p.finished,
        }
    }

    /// Whether the current question waits for this account's answer (not paused).
    pub fn waits_for_me(&self) -> bool {
        !self.paused && self.current.as_ref().is_some_and(|q| q.my_answer.is_none())
    }
}

/// The deck: progress, and every revealed question with both answers, in order.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct QuestionsView {
    pub progress: QuestionProgress,
    pub revealed: Vec<QuestionInfo>,
}

/// What an answer did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct QuestionAnswered {
    pub progress: QuestionProgress,
    /// When this answer revealed the question: it, with both answers.
    pub revealed: Option<QuestionInfo>,
}

/// What happened to the deck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum QuestionChange {
    /// The partner answered the current question (their answer stays hidden).
    PartnerAnswered,
    /// Both answered: the question is revealed and the next one unlocked.
    Revealed,
    /// Paused by a partner.
    Paused,
    /// Resumed by a partner.
    Resumed,
    /// A change this build does not know.
    Other,
}

impl QuestionChange {
    pub(crate) fn from_wire(c: i32) -> QuestionChange {
        match pb::QuestionChange::try_from(c) {
            Ok(pb::QuestionChange::PartnerAnswered) => QuestionChange::PartnerAnswered,
            Ok(pb::QuestionChange::Revealed) => QuestionChange::Revealed,
            Ok(pb::QuestionChange::Paused) => QuestionChange::Paused,
            Ok(pb::QuestionChange::Resumed) => QuestionChange::Resumed,
            _ => QuestionChange::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partners_words_show_only_once_revealed() {
        let hidden = pb::Question {
            number: 3,
            i_answered: true,
            my_answer: "tea".into(),
            partner_answered: true,
            partner_answer: "should never be sent, never shown".into(),
            ..Default::default()
        };
        let q = QuestionInfo::from_wire(&hidden);
        assert_eq!(q.my_answer.as_deref(), Some("tea"));
        assert!(q.partner_answered);
        assert_eq!(q.partner_answer, None);
        let shown = pb::Question {
            revealed_at: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            ..hidden
        };
        assert!(QuestionInfo::from_wire(&shown).partner_answer.is_some());
    }

    #[test]
    fn a_question_waits_for_me_until_i_answer_unless_paused() {
        let mut p = pb::QuestionProgress {
            current: Some(pb::Question {
                number: 1,
                ..Default::default()
            }),
            total: 36,
            ..Default::default()
        };
        assert!(QuestionProgress::from_wire(&p, "me").waits_for_me());
        p.paused = true;
        p.paused_by_account_id = "me".into();
        let paused = QuestionProgress::from_wire(&p, "me");
        assert!(!paused.waits_for_me() && paused.paused_by_me);
        p.paused = false;
        p.current.as_mut().unwrap().i_answered = true;
        assert!(!QuestionProgress::from_wire(&p, "me").waits_for_me());
    }
}
