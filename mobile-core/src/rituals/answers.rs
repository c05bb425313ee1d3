//! Turning what a person typed, said or tapped into a check-in answer, and checking an answer
//! against its prompt before it is queued (the same rules the server applies).

use tapline_proto::limits;

use crate::error::{CoreError, CoreResult, TaplineError};
use crate::model::{AnswerType, CheckinAnswer, PromptInfo};

/// Longest text answer, in user-perceived characters.
const MAX_TEXT_CHARS: usize = limits::ANSWER_TEXT_CHARS;
/// The emoji variation selector, which some keyboards add and others do not.
const VARIATION_SELECTOR: char = '\u{fe0f}';

fn bare_emoji(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| *c != VARIATION_SELECTOR)
        .collect()
}

fn same_words(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// `n` counting from 1, as an index into `len` options.
fn ordinal(input: &str, len: usize) -> Option<u32> {
    let n: usize = input.parse().ok()?;
    (1..=len).contains(&n).then(|| (n - 1) as u32)
}

fn text_limit(max_chars: u32) -> usize {
    match max_chars as usize {
        0 => MAX_TEXT_CHARS,
        n => n.min(MAX_TEXT_CHARS),
    }
}

fn check_text(text: &str, max_chars: usize) -> CoreResult<String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(CoreError::Invalid("answer: must not be empty".into()));
    }
    if t.chars().any(char::is_control) {
        return Err(CoreError::Invalid(
            "answer: must be one line, with no control characters".into(),
        ));
    }
    if limits::char_count(t) > max_chars {
        return Err(CoreError::Invalid(format!(
            "answer: must be at most {max_chars} characters"
        )));
    }
    Ok(t.to_owned())
}

fn quick_labels(prompt: &PromptInfo) -> String {
    prompt
        .quick_replies
        .iter()
        .map(|q| format!("{:?}", q.label))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks `answer` against the prompt's answer type and puts it in canonical form (text trimmed,
/// emoji spelled as the prompt spells it). With no known answer type it is passed on as is.
pub(crate) fn validate(
    answer_type: Option<&AnswerType>,
    answer: CheckinAnswer,
) -> CoreResult<CheckinAnswer> {
    let Some(kind) = answer_type else {
        return Ok(answer);
    };
    match (kind, answer) {
        (AnswerType::Scale { .. }, CheckinAnswer::Scale { value }) if (1..=5).contains(&value) => {
            Ok(CheckinAnswer::Scale { value })
        }
        (AnswerType::Scale { .. }, CheckinAnswer::Scale { .. }) => Err(CoreError::Invalid(
            "answer: a scale answer is 1 to 5".into(),
        )),
        (AnswerType::Choice { options }, CheckinAnswer::Choice { index })
            if (index as usize) < options.len() =>
        {
            Ok(CheckinAnswer::Choice { index })
        }
        (AnswerType::Choice { options }, CheckinAnswer::Choice { .. }) => Err(CoreError::Invalid(
            format!("answer: the option index must be below {}", options.len()),
        )),
        (AnswerType::Emoji { options }, CheckinAnswer::Emoji { emoji }) => {
            let wanted = bare_emoji(&emoji);
            options
                .iter()
                .find(|o| bare_emoji(o) == wanted)
                .map(|o| CheckinAnswer::Emoji { emoji: o.clone() })
                .ok_or_else(|| {
                    CoreError::Invalid(format!("answer: must be one of {}", options.join(" ")))
                })
        }
        (AnswerType::Text { max_chars }, CheckinAnswer::Text { text }) => Ok(CheckinAnswer::Text {
            text: check_text(&text, text_limit(*max_chars))?,
        }),
        (kind, _) => Err(CoreError::Invalid(format!(
            "answer: this prompt wants {}",
            match kind {
                AnswerType::Scale { .. } => "a number from 1 to 5",
                AnswerType::Choice { .. } => "one of its options",
                AnswerType::Emoji { .. } => "one of its emoji",
                AnswerType::Text { .. } => "a short text",
            }
        ))),
    }
}

/// Resolves free input against a prompt: a quick reply's label (any case), then by the answer
/// type: a scale number 1-5 or the low/high label; an option's label or its number counting
/// from 1; an emoji (with or without a variation selector) or its number; or the text itself.
pub(crate) fn resolve(prompt: &PromptInfo, input: &str) -> CoreResult<CheckinAnswer> {
    let input = input.trim();
    if input.is_empty() {
        return Err(CoreError::Invalid("answer: must not be empty".into()));
    }
    if let Some(q) = prompt
        .quick_replies
        .iter()
        .find(|q| same_words(&q.label, input))
    {
        return validate(prompt.answer_type.as_ref(), q.answer.clone());
    }
    let Some(kind) = &prompt.answer_type else {
        return Err(CoreError::Invalid(format!(
            "answer: this prompt can only be answered with a quick reply: {}",
            quick_labels(prompt)
        )));
    };
    match kind {
        AnswerType::Scale {
            low_label,
            high_label,
        } => {
            let value = match input.parse::<u8>() {
                Ok(v @ 1..=5) => Some(v),
                _ if same_words(low_label, input) => Some(1),
                _ if same_words(high_label, input) => Some(5),
                _ => None,
            };
            value
                .map(|value| CheckinAnswer::Scale { value })
                .ok_or_else(|| {
                    CoreError::Invalid(format!(
                        "answer: a number from 1 ({low_label}) to 5 ({high_label})"
                    ))
                })
        }
        AnswerType::Choice { options } => options
            .iter()
            .position(|o| same_words(o, input))
            .map(|i| i as u32)
            .or_else(|| ordinal(input, options.len()))
            .map(|index| CheckinAnswer::Choice { index })
            .ok_or_else(|| {
                CoreError::Invalid(format!(
                    "answer: one of {} (or its number, 1-{})",
                    options.join(", "),
                    options.len()
                ))
            }),
        AnswerType::Emoji { options } => match ordinal(input, options.len()) {
            Some(i) => Ok(CheckinAnswer::Emoji {
                emoji: options[i as usize].clone(),
            }),
            None => validate(
                Some(kind),
                CheckinAnswer::Emoji {
                    emoji: input.to_owned(),
                },
            ),
        },
        AnswerType::Text { max_chars } => Ok(CheckinAnswer::Text {
            text: check_text(input, text_limit(*max_chars))?,
        }),
    }
}

/// Resolves what a person typed or said into an answer to `prompt`: a quick reply's label, a
/// scale number (1-5), an option's label or number (from 1), an emoji, or text.
#[uniffi::export]
pub fn resolve_answer(prompt: &PromptInfo, input: &str) -> Result<CheckinAnswer, TaplineError> {
    Ok(resolve(prompt, input)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PromptCategory, QuickReplyInfo};

    fn prompt(answer_type: Option<AnswerType>, quick: &[(&str, CheckinAnswer)]) -> PromptInfo {
        PromptInfo {
            prompt_id: "p".into(),
            category: Some(PromptCategory::Mood),
            text: "?".into(),
            answer_type,
            quick_replies: quick
                .iter()
                .map(|(l, a)| QuickReplyInfo {
                    label: (*l).into(),
                    answer: a.clone(),
                })
                .collect(),
        }
    }

    fn invalid(r: CoreResult<CheckinAnswer>) -> String {
        match r {
            Err(CoreError::Invalid(reason)) => reason,
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    #[test]
    fn scales_take_numbers_labels_and_quick_replies() {
        let p = prompt(
            Some(AnswerType::Scale {
                low_label: "Empty".into(),
                high_label: "Fully charged".into(),
            }),
            &[("Half full", CheckinAnswer::Scale { value: 3 })],
        );
        assert_eq!(
            resolve(&p, " 4 ").unwrap(),
            CheckinAnswer::Scale { value: 4 }
        );
        assert_eq!(
            resolve(&p, "half FULL").unwrap(),
            CheckinAnswer::Scale { value: 3 }
        );
        assert_eq!(
            resolve(&p, "empty").unwrap(),
            CheckinAnswer::Scale { value: 1 }
        );
        assert_eq!(
            resolve(&p, "Fully charged").unwrap(),
            CheckinAnswer::Scale { value: 5 }
        );
        assert!(invalid(resolve(&p, "6")).contains("1 (Empty) to 5 (Fully charged)"));
        assert!(invalid(resolve(&p, "0")).contains("1 (Empty)"));
        assert!(invalid(resolve(&p, "  ")).contains("empty"));
    }

    #[test]
    fn choices_take_labels_and_numbers_from_one() {
        let p = prompt(
            Some(AnswerType::Choice {
                options: vec!["Sleep".into(), "A walk".into(), "Quiet time".into()],
            }),
            &[("Walk", CheckinAnswer::Choice { index: 1 })],
        );
        assert_eq!(
            resolve(&p, "quiet time").unwrap(),
            CheckinAnswer::Choice { index: 2 }
        );
        assert_eq!(
            resolve(&p, "1").unwrap(),
            CheckinAnswer::Choice { index: 0 }
        );
        assert_eq!(
            resolve(&p, "walk").unwrap(),
            CheckinAnswer::Choice { index: 1 }
        );
        assert!(invalid(resolve(&p, "4")).contains("1-3"));
        assert!(invalid(resolve(&p, "Dancing")).contains("Sleep, A walk, Quiet time"));
    }

    #[test]
    fn emoji_match_with_or_without_variation_selector() {
        let p = prompt(
            Some(AnswerType::Emoji {
                options: vec!["☀️".into(), "⛅".into(), "🌧️".into()],
            }),
            &[(
                "Rainy",
                CheckinAnswer::Emoji {
                    emoji: "🌧️".into()
                },
            )],
        );
        // Typed without U+FE0F, stored in the prompt's spelling.
        assert_eq!(
            resolve(&p, "☀").unwrap(),
            CheckinAnswer::Emoji {
                emoji: "☀️".into()
            }
        );
        assert_eq!(
            resolve(&p, "2").unwrap(),
            CheckinAnswer::Emoji {
                emoji: "⛅".into()
            }
        );
        assert_eq!(
            resolve(&p, "rainy").unwrap(),
            CheckinAnswer::Emoji {
                emoji: "🌧️".into()
            }
        );
        assert!(invalid(resolve(&p, "🌈")).contains("one of"));
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        let p = prompt(
            Some(AnswerType::Text { max_chars: 0 }),
            &[(
                "Busy",
                CheckinAnswer::Text {
                    text: "Busy".into(),
                },
            )],
        );
        assert_eq!(
            resolve(&p, "  quietly happy ").unwrap(),
            CheckinAnswer::Text {
                text: "quietly happy".into()
            }
        );
        assert_eq!(
            resolve(&p, "busy").unwrap(),
            CheckinAnswer::Text {
                text: "Busy".into()
            }
        );
        assert!(invalid(resolve(&p, &"x".repeat(281))).contains("280"));
        assert!(resolve(&p, &"é".repeat(280)).is_ok());
        let short = prompt(Some(AnswerType::Text { max_chars: 5 }), &[]);
        assert!(invalid(resolve(&short, "toolong")).contains("at most 5"));
        assert!(
            invalid(validate(
                Some(&AnswerType::Text { max_chars: 0 }),
                CheckinAnswer::Text {
                    text: "two\nlines".into()
                }
            ))
            .contains("one line")
        );
    }

    #[test]
    fn unknown_answer_types_take_quick_replies_only() {
        let p = prompt(None, &[("Yes", CheckinAnswer::Choice { index: 0 })]);
        assert_eq!(
            resolve(&p, "yes").unwrap(),
            CheckinAnswer::Choice { index: 0 }
        );
        assert!(invalid(resolve(&p, "maybe")).contains("\"Yes\""));
        // And an app's own answer is passed on for the server to judge.
        assert_eq!(
            validate(None, CheckinAnswer::Scale { value: 9 }).unwrap(),
            CheckinAnswer::Scale { value: 9 }
        );
    }

    #[test]
    fn answers_of_the_wrong_kind_are_refused() {
        let scale = AnswerType::Scale {
            low_label: "a".into(),
            high_label: "b".into(),
        };
        assert!(
            invalid(validate(Some(&scale), CheckinAnswer::Choice { index: 0 })).contains("1 to 5")
        );
        assert!(
            invalid(validate(Some(&scale), CheckinAnswer::Scale { value: 0 })).contains("1 to 5")
        );
        let choice = AnswerType::Choice {
            options: vec!["a".into()],
        };
        assert!(
            invalid(validate(Some(&choice), CheckinAnswer::Choice { index: 1 }))
                .contains("below 1")
        );
    }
}
