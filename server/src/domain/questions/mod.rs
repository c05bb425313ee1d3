//! Deeper questions in stages: the rules. Pure: no I/O.
//!
//! A couple walks the [`deck`] (three sets of twelve, each more personal than the last) one
//! question at a time. Each partner answers the current question in their own words; an answer
//! stays hidden from the partner until both have answered, then both are revealed and the next
//! question unlocks. Either partner can pause the deck (nothing can be answered until one of
//! them resumes it). The deck never counts for the streak.

pub mod deck;

use super::streaks::Side;

/// Questions in the deck.
pub const TOTAL: u32 = (deck::SETS * deck::PER_SET) as u32;
/// Longest answer, in characters.
pub const MAX_ANSWER_CHARS: usize = 500;

/// Where a couple is in the deck.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Progress {
    /// The current question, 0-based; [`TOTAL`] once every question was revealed.
    pub position: u32,
    /// Paused by a partner: nothing can be answered until resumed.
    pub paused: bool,
    /// Each partner's answer to the current question, hidden until both answered.
    pub answer_a: Option<String>,
    pub answer_b: Option<String>,
}

/// What an answer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// Kept; the partner has not answered yet (they are told, without the answer).
    Waiting,
    /// Both have answered question `position`: both answers are revealed and the next one
    /// unlocks.
    Revealed {
        position: u32,
        answer_a: String,
        answer_b: String,
    },
    /// The same answer again: nothing changes.
    Unchanged,
}

/// Why an answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The deck is paused.
    Paused,
    /// Every question has been revealed.
    Finished,
    /// Not the current question (an earlier one was revealed, a later one is locked).
    NotCurrent,
    /// Answered already, differently (answers are final).
    AlreadyAnswered,
}

impl Progress {
    /// Whether every question was revealed.
    pub fn finished(&self) -> bool {
        self.position >= TOTAL
    }

    /// The current question: `(set, text)`, 0-based set.
    pub fn current(&self) -> Option<(usize, &'static str)> {
        deck::question(self.position as usize)
    }

    /// The answer of `side` to the current question.
    pub fn answer_of(&self, side: Side) -> Option<&str> {
        match side {
            Side::A => self.answer_a.as_deref(),
            Side::B => self.answer_b.as_deref(),
        }
    }

    /// `side` answers question `position` with `text` (already checked as text).
    pub fn answer(&mut self, side: Side, position: u32, text: &str) -> Result<Answered, Refused> {
        if self.finished() {
            return Err(Refused::Finished);
        }
        if position != self.position {
            return Err(Refused::NotCurrent);
        }
        match self.answer_of(side) {
            Some(a) if a == text => return Ok(Answered::Unchanged),
            Some(_) => return Err(Refused::AlreadyAnswered),
            None => {}
        }
        if self.paused {
            return Err(Refused::Paused);
        }
        match side {
            Side::A => self.answer_a = Some(text.to_owned()),
            Side::B => self.answer_b = Some(text.to_owned()),
        }
        match (self.answer_a.take(), self.answer_b.take()) {
            (Some(a), Some(b)) => {
                let revealed = Answered::Revealed {
                    position: self.position,
                    answer_a: a,
                    answer_b: b,
                };
                self.position += 1;
                Ok(revealed)
            }
            (a, b) => {
                self.answer_a = a;
                self.answer_b = b;
                Ok(Answered::Waiting)
            }
        }
    }
}

/// The 0-based set a position belongs to, and its place in the set (both 0-based).
pub fn place(position: u32) -> (u32, u32) {
    let per = deck::PER_SET as u32;
    (position / per, position % per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_unlock_only_once_both_answered() {
        let mut p = Progress::default();
        assert_eq!(p.answer(Side::A, 0, "tea"), Ok(Answered::Waiting));
        assert_eq!(p.position, 0, "still the first question");
        assert_eq!(p.answer(Side::A, 1, "x"), Err(Refused::NotCurrent));
        assert_eq!(p.answer(Side::B, 1, "x"), Err(Refused::NotCurrent));
        assert_eq!(
            p.answer(Side::B, 0, "coffee"),
            Ok(Answered::Revealed {
                position: 0,
                answer_a: "tea".into(),
                answer_b: "coffee".into()
            })
        );
        assert_eq!(p.position, 1);
        assert_eq!((p.answer_a.as_deref(), p.answer_b.as_deref()), (None, None));
        assert_eq!(p.answer(Side::A, 0, "tea"), Err(Refused::NotCurrent));
    }

    #[test]
    fn answers_are_final_and_retries_change_nothing() {
        let mut p = Progress::default();
        p.answer(Side::B, 0, "rain").unwrap();
        assert_eq!(p.answer(Side::B, 0, "rain"), Ok(Answered::Unchanged));
        assert_eq!(p.answer(Side::B, 0, "sun"), Err(Refused::AlreadyAnswered));
    }

    #[test]
    fn a_paused_deck_takes_no_answers_but_a_retry_still_succeeds() {
        let mut p = Progress::default();
        p.answer(Side::A, 0, "yes").unwrap();
        p.paused = true;
        assert_eq!(p.answer(Side::B, 0, "no"), Err(Refused::Paused));
        assert_eq!(p.answer(Side::A, 0, "yes"), Ok(Answered::Unchanged));
        p.paused = false;
        assert!(matches!(
            p.answer(Side::B, 0, "no"),
            Ok(Answered::Revealed { .. })
        ));
    }

    #[test]
    fn the_deck_walks_three_sets_then_finishes() {
        let mut p = Progress::default();
        let mut sets = Vec::new();
        for pos in 0..TOTAL {
            sets.push(p.current().expect("a question").0);
            p.answer(Side::A, pos, "a").unwrap();
            p.answer(Side::B, pos, "b").unwrap();
        }
        assert!(p.finished());
        assert_eq!(p.current(), None);
        assert_eq!(p.answer(Side::A, TOTAL, "a"), Err(Refused::Finished));
        assert_eq!(sets[0], 0);
        assert_eq!(sets[12], 1);
        assert_eq!(sets[35], 2);
        assert!(sets.windows(2).all(|w| w[0] <= w[1]), "sets in order");
        assert_eq!(place(13), (1, 1));
    }
}
