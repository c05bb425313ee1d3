//! The check-in prompt catalogue: short, warm questions in ten categories, each with an answer
//! kind and a few quick replies small enough for a watch.
//!
//! Ids are stable (`<category>-<nn>`): once shipped, a prompt's id, answer kind and option order
//! never change, because stored answers refer to them. Add new prompts with new ids.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use uuid::Uuid;

/// Longest quick-reply label, in characters (fits a watch button).
pub const MAX_QUICK_REPLY_CHARS: usize = tapline_proto::limits::QUICK_REPLY_CHARS;

/// What a prompt is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// How they feel overall.
    Mood,
    /// How much energy they have.
    Energy,
    /// Their day in one word.
    OneWord,
    /// "I feel…" sentences.
    IFeel,
    /// Appreciating the partner.
    Appreciation,
    /// What they need, how to support them.
    Support,
    /// Small things to be thankful for.
    Gratitude,
    /// Deeper questions.
    Curiosity,
    /// Light and playful.
    Playful,
    /// Reconnecting after time apart.
    Reconnect,
}

impl Category {
    /// Every category, in catalogue order.
    pub const ALL: [Category; 10] = [
        Category::Mood,
        Category::Energy,
        Category::OneWord,
        Category::IFeel,
        Category::Appreciation,
        Category::Support,
        Category::Gratitude,
        Category::Curiosity,
        Category::Playful,
        Category::Reconnect,
    ];

    /// The stable name used in ids and storage.
    pub fn slug(self) -> &'static str {
        match self {
            Category::Mood => "mood",
            Category::Energy => "energy",
            Category::OneWord => "oneword",
            Category::IFeel => "ifeel",
            Category::Appreciation => "appreciation",
            Category::Support => "support",
            Category::Gratitude => "gratitude",
            Category::Curiosity => "curiosity",
            Category::Playful => "playful",
            Category::Reconnect => "reconnect",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// A category name that is not one of [`Category::slug`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown prompt category {0:?}")]
pub struct UnknownCategory(pub String);

impl FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.slug() == s)
            .ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

/// How a prompt is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// A value from 1 to 5, with a label for each end.
    Scale {
        /// What 1 means.
        low: &'static str,
        /// What 5 means.
        high: &'static str,
    },
    /// One of 2 to 6 options, answered by index.
    Choice(&'static [&'static str]),
    /// One of 2 to 6 emoji, answered by the emoji itself.
    Emoji(&'static [&'static str]),
    /// Short free text.
    Text,
}

/// What tapping a quick reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuickValue {
    /// A scale value, 1 to 5.
    Scale(u8),
    /// The option (choice or emoji) at this index.
    Option(u8),
    /// The label itself, as a text answer.
    Text,
}

/// A one-tap answer shown on small screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuickReply {
    /// The button text, at most [`MAX_QUICK_REPLY_CHARS`] characters.
    pub label: &'static str,
    /// The answer it stands for.
    pub value: QuickValue,
}

/// One check-in question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prompt {
    /// Stable id, `<category slug>-<nn>`.
    pub id: &'static str,
    /// Its category.
    pub category: Category,
    /// The question.
    pub text: &'static str,
    /// How it is answered.
    pub kind: AnswerKind,
    /// Two to four quick replies.
    pub quick: &'static [QuickReply],
}

const fn p(
    id: &'static str,
    category: Category,
    text: &'static str,
    kind: AnswerKind,
    quick: &'static [QuickReply],
) -> Prompt {
    Prompt {
        id,
        category,
        text,
        kind,
        quick,
    }
}

const fn scale(low: &'static str, high: &'static str) -> AnswerKind {
    AnswerKind::Scale { low, high }
}

/// A quick reply for a scale value.
const fn sv(label: &'static str, value: u8) -> QuickReply {
    QuickReply {
        label,
        value: QuickValue::Scale(value),
    }
}

/// A quick reply for an option index.
const fn op(label: &'static str, index: u8) -> QuickReply {
    QuickReply {
        label,
        value: QuickValue::Option(index),
    }
}

/// A quick reply whose label is the text answer.
const fn tx(label: &'static str) -> QuickReply {
    QuickReply {
        label,
        value: QuickValue::Text,
    }
}

use AnswerKind::{Choice, Emoji, Text};
use Category::*;

/// Every prompt, grouped by category.
#[rustfmt::skip]
pub static CATALOGUE: &[Prompt] = &[
    // Mood
    p("mood-01", Mood, "How's your heart doing right now?", scale("Heavy", "Light"),
        &[sv("Heavy", 1), sv("So-so", 3), sv("Light", 5)]),
    p("mood-02", Mood, "Pick the weather that matches your mood.",
        Emoji(&["☀️", "⛅", "🌧️", "⛈️", "🌈"]),
        &[op("Sunny", 0), op("Cloudy", 1), op("Rainy", 2)]),
    p("mood-03", Mood, "How settled do you feel this evening?", scale("Restless", "At ease"),
        &[sv("Restless", 1), sv("In between", 3), sv("At ease", 5)]),
    p("mood-04", Mood, "Which word sits closest to your mood?",
        Choice(&["Calm", "Bright", "Tender", "Tense", "Flat"]),
        &[op("Calm", 0), op("Bright", 1), op("Tense", 3)]),
    p("mood-05", Mood, "If your mood were a colour today, which one?",
        Choice(&["Golden", "Soft blue", "Green", "Grey", "Pink"]),
        &[op("Golden", 0), op("Soft blue", 1), op("Grey", 3)]),
    p("mood-06", Mood, "How much did you smile today?", scale("Barely", "Nonstop"),
        &[sv("Barely", 1), sv("Some", 3), sv("Nonstop", 5)]),
    p("mood-07", Mood, "Describe your mood in a few words.", Text,
        &[tx("Pretty good"), tx("A bit foggy"), tx("Quietly happy")]),
    // Energy
    p("energy-01", Energy, "How's your battery?", scale("Empty", "Fully charged"),
        &[sv("Running low", 1), sv("Half full", 3), sv("Charged", 5)]),
    p("energy-02", Energy, "What would recharge you most tonight?",
        Choice(&["Sleep", "A walk", "Quiet time", "Good food", "Time with you"]),
        &[op("Sleep", 0), op("Quiet time", 2), op("Time with you", 4)]),
    p("energy-03", Energy, "Body check: how rested do you feel?", scale("Worn out", "Well rested"),
        &[sv("Worn out", 1), sv("Okay", 3), sv("Rested", 5)]),
    p("energy-04", Energy, "Which animal is your energy right now?",
        Emoji(&["🐢", "🐨", "🐕", "🐆"]),
        &[op("Turtle", 0), op("Koala", 1), op("Cheetah", 3)]),
    p("energy-05", Energy, "How full was your day?", scale("Slow", "Packed"),
        &[sv("Slow", 1), sv("Steady", 3), sv("Packed", 5)]),
    p("energy-06", Energy, "When did you feel most awake today?",
        Choice(&["Morning", "Midday", "Afternoon", "Evening", "Not yet"]),
        &[op("Morning", 0), op("Evening", 3), op("Not yet", 4)]),
    p("energy-07", Energy, "What's been draining you lately?", Text,
        &[tx("Work"), tx("Not much"), tx("Too little sleep")]),
    // One-word day
    p("oneword-01", OneWord, "Your day in one word?", Text,
        &[tx("Busy"), tx("Lovely"), tx("Long")]),
    p("oneword-02", OneWord, "One word for this morning?", Text,
        &[tx("Slow"), tx("Fresh"), tx("Rushed")]),
    p("oneword-03", OneWord, "Sum up your week so far in one word.", Text,
        &[tx("Full"), tx("Gentle"), tx("Wild")]),
    p("oneword-04", OneWord, "One emoji for your day.",
        Emoji(&["😊", "😴", "😤", "🥳", "🤯", "🥲"]),
        &[op("Happy", 0), op("Sleepy", 1), op("Overloaded", 4)]),
    p("oneword-05", OneWord, "Which word fits today best?",
        Choice(&["Smooth", "Bumpy", "Surprising", "Ordinary"]),
        &[op("Smooth", 0), op("Bumpy", 1), op("Ordinary", 3)]),
    p("oneword-06", OneWord, "One word you'd like tomorrow to be.", Text,
        &[tx("Easy"), tx("Fun"), tx("Calm")]),
    p("oneword-07", OneWord, "If today were a headline, what's the key word?", Text,
        &[tx("Victory"), tx("Survival"), tx("Progress")]),
    // I feel
    p("ifeel-01", IFeel, "Finish the sentence: right now I feel…", Text,
        &[tx("Grateful"), tx("Tired"), tx("Hopeful")]),
    p("ifeel-02", IFeel, "I feel most like myself when…", Text,
        &[tx("I'm with you"), tx("I'm outdoors"), tx("I'm making things")]),
    p("ifeel-03", IFeel, "Today I felt…",
        Choice(&["Seen", "Stretched", "Proud", "Lonely", "Content"]),
        &[op("Seen", 0), op("Proud", 2), op("Content", 4)]),
    p("ifeel-04", IFeel, "How close do you feel to me today?", scale("Far away", "Right beside you"),
        &[sv("A bit far", 1), sv("Close", 4), sv("Right here", 5)]),
    p("ifeel-05", IFeel, "I feel a little lighter when…", Text,
        &[tx("You text me"), tx("I get outside"), tx("I finish things")]),
    p("ifeel-06", IFeel, "Which feeling would you like more of this week?",
        Choice(&["Ease", "Joy", "Focus", "Closeness", "Rest"]),
        &[op("Ease", 0), op("Joy", 1), op("Rest", 4)]),
    p("ifeel-07", IFeel, "Right now I feel…",
        Emoji(&["🥰", "😌", "😕", "😢", "😠", "🤩"]),
        &[op("Loved", 0), op("Calm", 1), op("Down", 3)]),
    // Appreciation
    p("appreciation-01", Appreciation, "Something about you I appreciated today:", Text,
        &[tx("Your patience"), tx("Your laugh"), tx("Your care")]),
    p("appreciation-02", Appreciation, "How appreciated did you feel this week?",
        scale("Not much", "Very"),
        &[sv("Not much", 1), sv("Somewhat", 3), sv("Very", 5)]),
    p("appreciation-03", Appreciation, "What's a small thing I do that you love?", Text,
        &[tx("Good-night texts"), tx("Making coffee"), tx("Listening")]),
    p("appreciation-04", Appreciation, "Which of my qualities shone today?",
        Choice(&["Kindness", "Humour", "Patience", "Courage", "Curiosity"]),
        &[op("Kindness", 0), op("Humour", 1), op("Patience", 2)]),
    p("appreciation-05", Appreciation, "Send a little applause for something I did.",
        Emoji(&["👏", "🙌", "🏆", "💐"]),
        &[op("Clap", 0), op("Trophy", 2), op("Flowers", 3)]),
    p("appreciation-06", Appreciation, "What do you admire in how I handle hard days?", Text,
        &[tx("You stay kind"), tx("You keep going"), tx("You ask for help")]),
    p("appreciation-07", Appreciation, "A moment with me you'd happily replay:", Text,
        &[tx("This morning"), tx("Last weekend"), tx("Our last call")]),
    // Need and support
    p("support-01", Support, "What would help you most right now?",
        Choice(&["A hug", "Some space", "A call", "Advice", "Distraction", "Just listening"]),
        &[op("A hug", 0), op("Some space", 1), op("Just listening", 5)]),
    p("support-02", Support, "How supported do you feel today?", scale("On my own", "Held"),
        &[sv("On my own", 1), sv("Okay", 3), sv("Held", 5)]),
    p("support-03", Support, "Is something on your mind you'd like to share?", Text,
        &[tx("Not right now"), tx("Later tonight?"), tx("Yes, call me")]),
    p("support-04", Support, "How could I make tomorrow a bit easier for you?", Text,
        &[tx("Check in on me"), tx("Send a joke"), tx("Nothing, thanks")]),
    p("support-05", Support, "What kind of message would feel good today?",
        Choice(&["Sweet", "Funny", "Encouraging", "Short and simple"]),
        &[op("Sweet", 0), op("Funny", 1), op("Encouraging", 2)]),
    p("support-06", Support, "How heavy is your load this week?", scale("Light", "Too much"),
        &[sv("Light", 1), sv("Manageable", 3), sv("Too much", 5)]),
    p("support-07", Support, "Would a pep talk, a plan or a pause help most?",
        Choice(&["Pep talk", "A plan", "A pause"]),
        &[op("Pep talk", 0), op("A plan", 1), op("A pause", 2)]),
    // Gratitude
    p("gratitude-01", Gratitude, "One small good thing from today:", Text,
        &[tx("Sunshine"), tx("Good coffee"), tx("A kind word")]),
    p("gratitude-02", Gratitude, "How thankful do you feel today?",
        scale("Hard to say", "Overflowing"),
        &[sv("Hard to say", 1), sv("Quietly", 3), sv("Overflowing", 5)]),
    p("gratitude-03", Gratitude, "Who made your day a little better?", Text,
        &[tx("You"), tx("A friend"), tx("A stranger")]),
    p("gratitude-04", Gratitude, "What are you glad to have right now?",
        Choice(&["Health", "Home", "Friends", "Us", "Time"]),
        &[op("Home", 1), op("Friends", 2), op("Us", 3)]),
    p("gratitude-05", Gratitude, "A thank-you emoji for today.",
        Emoji(&["🙏", "🌻", "✨", "🍀"]),
        &[op("Thanks", 0), op("Sunflower", 1), op("Sparkle", 2)]),
    p("gratitude-06", Gratitude, "Something about our life you're thankful for:", Text,
        &[tx("Our routines"), tx("Our jokes"), tx("Our home")]),
    p("gratitude-07", Gratitude, "Which comfort did you enjoy today?",
        Choice(&["Food", "Sleep", "Music", "Nature", "A chat"]),
        &[op("Food", 0), op("Music", 2), op("A chat", 4)]),
    // Curiosity
    p("curiosity-01", Curiosity, "What have you been wondering about lately?", Text,
        &[tx("Big questions"), tx("Our future"), tx("Random facts")]),
    p("curiosity-02", Curiosity, "If we could learn one thing together, what would it be?",
        Choice(&["A language", "Cooking", "Dancing", "An instrument", "Gardening"]),
        &[op("A language", 0), op("Cooking", 1), op("Dancing", 2)]),
    p("curiosity-03", Curiosity, "What's a dream you haven't told me much about?", Text,
        &[tx("Ask me tonight"), tx("Travelling"), tx("A small house")]),
    p("curiosity-04", Curiosity, "How hopeful do you feel about the year ahead?",
        scale("Uncertain", "Very hopeful"),
        &[sv("Uncertain", 1), sv("Curious", 3), sv("Very hopeful", 5)]),
    p("curiosity-05", Curiosity, "Which childhood memory still makes you smile?", Text,
        &[tx("Summer holidays"), tx("A pet"), tx("Family meals")]),
    p("curiosity-06", Curiosity, "What would you like us to do more of?",
        Choice(&["Talk", "Travel", "Play", "Rest", "Create"]),
        &[op("Talk", 0), op("Travel", 1), op("Rest", 3)]),
    p("curiosity-07", Curiosity, "What changed your mind about something recently?", Text,
        &[tx("A book"), tx("A conversation"), tx("Nothing yet")]),
    // Light and playful
    p("playful-01", Playful, "Pick our snack for the next date.",
        Emoji(&["🍕", "🍣", "🍦", "🥐", "🌮"]),
        &[op("Pizza", 0), op("Sushi", 1), op("Ice cream", 2)]),
    p("playful-02", Playful, "If today were a song, how fast would it go?",
        scale("Lullaby", "Dance floor"),
        &[sv("Lullaby", 1), sv("Easy groove", 3), sv("Dance floor", 5)]),
    p("playful-03", Playful, "Beach, mountains or city for our next escape?",
        Choice(&["Beach", "Mountains", "City"]),
        &[op("Beach", 0), op("Mountains", 1), op("City", 2)]),
    p("playful-04", Playful, "Which superpower would have saved your day?",
        Choice(&["Teleporting", "Pausing time", "Mind reading", "Extra hands"]),
        &[op("Teleporting", 0), op("Pausing time", 1), op("Extra hands", 3)]),
    p("playful-05", Playful, "Show me the face you're making right now.",
        Emoji(&["😄", "😏", "🤪", "😐", "😳"]),
        &[op("Grinning", 0), op("Smirking", 1), op("Silly", 2)]),
    p("playful-06", Playful, "Invent a nickname for me today.", Text,
        &[tx("Sunshine"), tx("Captain"), tx("Pumpkin")]),
    p("playful-07", Playful, "How ready are you for a silly evening?",
        scale("Not today", "Bring it on"),
        &[sv("Not today", 1), sv("Maybe", 3), sv("Bring it on", 5)]),
    // Reconnecting after distance
    p("reconnect-01", Reconnect, "How close did we feel this week?",
        scale("Drifting", "Tight-knit"),
        &[sv("Drifting", 1), sv("Okay", 3), sv("Close", 5)]),
    p("reconnect-02", Reconnect, "What's one thing you missed about me?", Text,
        &[tx("Your voice"), tx("Your hugs"), tx("Our chats")]),
    p("reconnect-03", Reconnect, "How would you like to reconnect?",
        Choice(&["A long call", "A walk", "A meal together", "A quiet night", "A surprise"]),
        &[op("A long call", 0), op("A walk", 1), op("A quiet night", 3)]),
    p("reconnect-04", Reconnect, "What from your week haven't I heard about yet?", Text,
        &[tx("Tell you tonight"), tx("A funny story"), tx("A small win")]),
    p("reconnect-05", Reconnect, "Ready to catch up properly?",
        Choice(&["Yes, tonight", "Tomorrow", "This weekend"]),
        &[op("Yes, tonight", 0), op("Tomorrow", 1), op("This weekend", 2)]),
    p("reconnect-06", Reconnect, "Which would feel most like home right now?",
        Emoji(&["🏠", "🫂", "☕", "🌙"]),
        &[op("Home", 0), op("A hug", 1), op("Coffee", 2)]),
    p("reconnect-07", Reconnect, "One thing that would make the distance feel smaller:", Text,
        &[tx("Daily voice note"), tx("Shared playlist"), tx("Watch together")]),
];

/// The prompt with this id.
pub fn by_id(id: &str) -> Option<&'static Prompt> {
    CATALOGUE.iter().find(|p| p.id == id)
}

/// The prompts of one category, in catalogue order.
pub fn by_category(category: Category) -> impl Iterator<Item = &'static Prompt> {
    CATALOGUE.iter().filter(move |p| p.category == category)
}

/// The prompt of `category` for `couple` on `date`.
///
/// Deterministic, and different every day: each couple walks the category's prompts in its own
/// order (a start and a stride derived from the couple id), so consecutive days never repeat and
/// every prompt comes round once per cycle. Uses its own hash, stable across builds and releases.
pub fn pick(category: Category, couple: Uuid, date: NaiveDate) -> &'static Prompt {
    let list: Vec<&'static Prompt> = by_category(category).collect();
    let n = list.len() as u64;
    let (hi, lo) = couple.as_u64_pair();
    let seed = splitmix64(hi ^ splitmix64(lo ^ category as u64));
    let mut stride = 1 + (seed >> 32) % (n - 1).max(1);
    while gcd(stride, n) != 1 {
        stride += 1;
    }
    let day = i64::from(date.num_days_from_ce()).rem_euclid(n as i64) as u64;
    list[((seed % n + day * stride) % n) as usize]
}

/// One step of the splitmix64 generator, used as a stable 64-bit mixer.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::Duration;

    use super::*;

    #[test]
    fn catalogue_is_large_and_ids_are_unique_and_well_formed() {
        assert!(CATALOGUE.len() >= 60);
        let mut ids = HashSet::new();
        for prompt in CATALOGUE {
            assert!(ids.insert(prompt.id), "duplicate id {}", prompt.id);
            let (slug, number) = prompt.id.rsplit_once('-').unwrap();
            assert_eq!(slug, prompt.category.slug(), "{}", prompt.id);
            assert!(
                number.len() == 2 && number.chars().all(|c| c.is_ascii_digit()),
                "{}",
                prompt.id
            );
            assert!(!prompt.text.trim().is_empty() && prompt.text.chars().count() <= 80);
        }
        for category in Category::ALL {
            assert!(by_category(category).count() >= 6, "{category}");
        }
    }

    #[test]
    fn answer_kinds_and_quick_replies_fit_their_rules() {
        for prompt in CATALOGUE {
            let id = prompt.id;
            assert!((2..=4).contains(&prompt.quick.len()), "{id}");
            let mut labels = HashSet::new();
            for reply in prompt.quick {
                assert!(labels.insert(reply.label), "{id}: repeated quick reply");
                let chars = reply.label.chars().count();
                assert!(
                    chars > 0 && chars <= MAX_QUICK_REPLY_CHARS,
                    "{id}: {}",
                    reply.label
                );
                match (prompt.kind, reply.value) {
                    (AnswerKind::Scale { .. }, QuickValue::Scale(v)) => {
                        assert!((1..=5).contains(&v), "{id}")
                    }
                    (AnswerKind::Choice(options), QuickValue::Option(i))
                    | (AnswerKind::Emoji(options), QuickValue::Option(i)) => {
                        assert!(usize::from(i) < options.len(), "{id}")
                    }
                    (AnswerKind::Text, QuickValue::Text) => {}
                    (kind, value) => panic!("{id}: {value:?} does not answer {kind:?}"),
                }
            }
            match prompt.kind {
                AnswerKind::Scale { low, high } => {
                    assert!(!low.is_empty() && !high.is_empty() && low != high, "{id}")
                }
                AnswerKind::Choice(options) | AnswerKind::Emoji(options) => {
                    assert!((2..=6).contains(&options.len()), "{id}");
                    let unique: HashSet<_> = options.iter().collect();
                    assert_eq!(unique.len(), options.len(), "{id}");
                }
                AnswerKind::Text => {}
            }
            if let AnswerKind::Emoji(options) = prompt.kind {
                for emoji in options {
                    assert!(!emoji.chars().any(|c| c.is_alphanumeric()), "{id}: {emoji}");
                }
            }
        }
    }

    #[test]
    fn lookups_by_id_and_category() {
        assert_eq!(by_id("energy-03").unwrap().category, Category::Energy);
        assert!(by_id("energy-99").is_none());
        assert!(by_category(Category::Playful).all(|p| p.category == Category::Playful));
        for category in Category::ALL {
            assert_eq!(category.slug().parse::<Category>(), Ok(category));
        }
        assert!("moods".parse::<Category>().is_err());
    }

    #[test]
    fn pick_is_deterministic_stays_in_category_and_varies_daily() {
        let couple = Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788);
        let other = Uuid::from_u128(42);
        let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        for category in Category::ALL {
            let n = by_category(category).count();
            let mut seen = HashSet::new();
            let mut previous = None;
            for i in 0..n as i64 {
                let date = start + Duration::days(i);
                let prompt = pick(category, couple, date);
                assert_eq!(prompt, pick(category, couple, date));
                assert_eq!(prompt.category, category);
                assert_ne!(Some(prompt.id), previous);
                previous = Some(prompt.id);
                seen.insert(prompt.id);
            }
            // One full cycle shows every prompt of the category once.
            assert_eq!(seen.len(), n, "{category}");
        }
        let a: Vec<_> = (0..7)
            .map(|i| pick(Category::Mood, couple, start + Duration::days(i)).id)
            .collect();
        let b: Vec<_> = (0..7)
            .map(|i| pick(Category::Mood, other, start + Duration::days(i)).id)
            .collect();
        assert_ne!(a, b);
    }
}
