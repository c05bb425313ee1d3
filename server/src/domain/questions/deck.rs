//! The deeper-questions deck: three sets of twelve, each more personal than the last.
//! Written for Tapline.

/// How many sets.
pub const SETS: usize = 3;
/// Questions per set.
pub const PER_SET: usize = 12;

/// The sets' names, in order.
pub const SET_NAMES: [&str; SETS] = ["Warm-up", "Closer", "Deepest"];

/// The questions, set by set, in the order they unlock.
pub const QUESTIONS: [[&str; PER_SET]; SETS] = [
    [
        "What small thing reliably makes a rough morning a little better for you?",
        "Which snack would you defend against anyone who calls it overrated?",
        "If today had a soundtrack, which song would be playing right now?",
        "What smell puts you in a good mood the moment you notice it?",
        "Which ordinary chore do you secretly find satisfying?",
        "What was the best thing you ate this past month, and where was it?",
        "Which place from a book, film or game would you most like to spend a weekend in?",
        "Are you more of a sunrise person or a late-night person, and why?",
        "What was the nicest surprise of your week so far?",
        "What kind of weather makes you happiest to be outside?",
        "Which word or phrase do you catch yourself saying far too often?",
        "What tiny luxury would you happily pay a little extra for?",
    ],
    [
        "What is a value you would keep even if holding on to it cost you something?",
        "Which teacher, coach or mentor shaped you more than they probably know?",
        "What moment from before the two of you met still makes you smile?",
        "What did you notice about your partner early on that turned out to be true?",
        "What are you looking forward to most in the coming year?",
        "When do you feel most like yourself around your partner?",
        "What does a good apology look like to you?",
        "Which of your partner's habits have you quietly picked up?",
        "What is a hope for your own life that you rarely say out loud?",
        "What has your partner taught you, maybe without meaning to?",
        "When you are stressed, what helps most: advice, distraction or simply being listened to?",
        "Which moment with your partner would you choose to live through again?",
    ],
    [
        "What do you find hard to ask for, even from someone you trust?",
        "Which worry do you carry that you would like your partner to understand a little better?",
        "When have you felt most cared for by your partner, even in a small way?",
        "What part of yourself are you still learning to be kind to?",
        "What about you might be misunderstood if you never explained it?",
        "What does your partner do that you are grateful for but rarely mention?",
        "How can your partner tell when you need space, and when you need closeness?",
        "What part of your relationship do you most want to protect as life changes?",
        "What helps you feel safe bringing up something difficult with your partner?",
        "Which fear of yours has grown smaller since you met your partner?",
        "What do you hope your partner always remembers about how you feel about them?",
        "What would you like the two of you to keep choosing, again and again?",
    ],
];

/// The question at a 0-based position in the whole deck (0..36), with its set (0-based).
pub fn question(position: usize) -> Option<(usize, &'static str)> {
    QUESTIONS
        .get(position / PER_SET)
        .map(|set| (position / PER_SET, set[position % PER_SET]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn all() -> Vec<&'static str> {
        QUESTIONS.iter().flatten().copied().collect()
    }

    #[test]
    fn deck_has_thirty_six_distinct_questions() {
        let all = all();
        assert_eq!(all.len(), SETS * PER_SET);
        assert_eq!(all.len(), 36);
        let distinct: HashSet<String> = all.iter().map(|q| q.to_lowercase()).collect();
        assert_eq!(distinct.len(), all.len(), "duplicate question in the deck");
    }

    #[test]
    fn every_question_is_short_and_a_question() {
        for q in all() {
            assert!(!q.trim().is_empty(), "empty question");
            assert_eq!(q, q.trim(), "stray whitespace: {q:?}");
            assert!(q.chars().count() <= 140, "too long: {q:?}");
            assert!(q.ends_with('?'), "does not end with '?': {q:?}");
        }
    }

    #[test]
    fn set_names_match_sets() {
        assert_eq!(SET_NAMES.len(), QUESTIONS.len());
        assert_eq!(SET_NAMES, ["Warm-up", "Closer", "Deepest"]);
    }

    #[test]
    fn question_walks_the_deck_in_order() {
        assert_eq!(question(0), Some((0, QUESTIONS[0][0])));
        assert_eq!(question(11), Some((0, QUESTIONS[0][11])));
        assert_eq!(question(12), Some((1, QUESTIONS[1][0])));
        assert_eq!(question(24), Some((2, QUESTIONS[2][0])));
        let (set, q) = question(35).expect("position 35 is the last question");
        assert_eq!(set, 2);
        assert_eq!(q, QUESTIONS[2][11]);
        assert_eq!(question(36), None);
        assert_eq!(question(usize::MAX), None);
        let walked: Vec<&str> = (0..SETS * PER_SET)
            .map(|p| question(p).expect("in range").1)
            .collect();
        assert_eq!(walked, all());
    }
}
