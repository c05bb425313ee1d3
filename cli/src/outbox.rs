//! The outbox as the CLI tells it: every command that reaches the server sends what is queued
//! first and says what went out, and what is still waiting and why.

use std::sync::Mutex;

use serde_json::{Value, json};
use tapline_core::{AnswerState, FlushReport, TapState, TaplineClient, TaplineError};

use crate::failure::{Failure, secs_up};
use crate::out::Out;

/// What one flush did, and why rows are still queued (if they are).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flush {
    pub report: FlushReport,
    pub blocked: Option<TaplineError>,
}

impl Flush {
    /// The failure the rows still queued stand for: unreachable (3), signed out (4), rate
    /// limited (6); `None` when nothing says why.
    pub fn blocked_failure(&self) -> Option<Failure> {
        self.blocked.clone().map(Failure::from)
    }
}

/// The ids of the taps and answers still queued.
fn queued(client: &TaplineClient) -> (Vec<String>, Vec<String>) {
    let taps = client
        .local_taps(500)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.state == TapState::Queued)
        .map(|t| t.client_tap_id)
        .collect();
    let answers = client
        .local_answers(500)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.state == AnswerState::Queued)
        .map(|a| a.checkin_id)
        .collect();
    (taps, answers)
}

/// What was queued when the profile was opened: the core's background sender may send some of
/// it before the command's flush does, and it went out with this command all the same.
static AT_OPEN: Mutex<Option<(Vec<String>, Vec<String>)>> = Mutex::new(None);

/// Notes what is queued now (call right after opening the client).
pub fn remember_queued(client: &TaplineClient) {
    *AT_OPEN.lock().unwrap_or_else(|e| e.into_inner()) = Some(queued(client));
}

/// Sends everything queued now. Never fails: what could not go out, and why, is in the result.
/// Taps and answers are counted from their states (what was queued at open and is not now);
/// the command's own new tap or answer is not among them.
pub async fn flush(client: &TaplineClient) -> Flush {
    if client.account().is_none_or(|a| a.signed_out) {
        // Nothing can go out; the command itself says why.
        return Flush::default();
    }
    let result = client.flush_outbox().await;
    let before = AT_OPEN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default();
    let taps = client.local_taps(500).unwrap_or_default();
    let answers = client.local_answers(500).unwrap_or_default();
    let mut report = FlushReport::default();
    for t in taps.iter().filter(|t| before.0.contains(&t.client_tap_id)) {
        match t.state {
            TapState::Queued => {}
            TapState::Refused { .. } => report.refused += 1,
            _ => report.sent_taps += 1,
        }
    }
    for a in answers.iter().filter(|a| before.1.contains(&a.checkin_id)) {
        match a.state {
            AnswerState::Queued => {}
            AnswerState::Refused { .. } => report.refused += 1,
            AnswerState::Sent => report.sent_answers += 1,
        }
    }
    report.unsent = (taps.iter().filter(|t| t.state == TapState::Queued).count()
        + answers
            .iter()
            .filter(|a| a.state == AnswerState::Queued)
            .count()) as u32;
    // Receipts have no states to read: the core's count (when it finished) is all there is.
    let blocked = match result {
        Ok(r) => {
            report.sent_receipts = r.sent_receipts;
            None
        }
        Err(e) => Some(e),
    };
    Flush { report, blocked }
}

/// Flushes, then tells `out` what went out (a sentence on stderr; `outbox` in the JSON).
pub async fn flush_and_tell(client: &TaplineClient, out: &Out) -> Flush {
    let f = flush(client).await;
    out.flushed(describe(&f), flush_json(&f));
    f
}

fn count(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn and_list(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Why queued rows wait, in words.
pub fn blocked_words(e: &TaplineError) -> String {
    match e {
        TaplineError::Network { .. } => "the server is unreachable".into(),
        TaplineError::RateLimited { retry_after_ms } => format!(
            "the server's rate limit; retry in {} s",
            secs_up(*retry_after_ms)
        ),
        TaplineError::Unauthenticated => "this device is signed out".into(),
        other => other.to_string(),
    }
}

/// "Sent 2 queued taps and 1 answer.", with what was refused and what still waits; `None`
/// when nothing happened worth a line.
pub fn describe(f: &Flush) -> Option<String> {
    describe_parts(f, true)
}

/// [`describe`] without what still waits (for a command that says that itself).
pub fn describe_sent(f: &Flush) -> Option<String> {
    describe_parts(f, false)
}

fn describe_parts(f: &Flush, waiting: bool) -> Option<String> {
    let r = &f.report;
    let taps = r.sent_taps;
    let mut sent = Vec::new();
    if taps > 0 {
        sent.push(count(taps, "queued tap", "queued taps"));
    }
    if r.sent_answers > 0 {
        sent.push(count(r.sent_answers, "answer", "answers"));
    }
    if r.sent_receipts > 0 {
        sent.push(count(
            r.sent_receipts,
            "felt/seen receipt",
            "felt/seen receipts",
        ));
    }
    let mut sentences = Vec::new();
    if !sent.is_empty() {
        sentences.push(format!("Sent {}.", and_list(&sent)));
    }
    if r.refused > 0 {
        sentences.push(format!(
            "{} refused for good (`tapline status` shows why).",
            count(r.refused, "queued item was", "queued items were")
        ));
    }
    if let Some(e) = &f.blocked
        && r.unsent > 0
        && waiting
    {
        sentences.push(format!(
            "{} still queued: {}.",
            count(r.unsent, "item", "items"),
            blocked_words(e)
        ));
    }
    (!sentences.is_empty()).then(|| sentences.join(" "))
}

/// The flush for `--json` (`outbox`).
pub fn flush_json(f: &Flush) -> Value {
    let r = &f.report;
    let mut v = json!({
        "sent_taps": r.sent_taps,
        "sent_answers": r.sent_answers,
        "sent_receipts": r.sent_receipts,
        "refused": r.refused,
        "unsent": r.unsent,
    });
    if let Some(e) = &f.blocked {
        let failure = Failure::from(e.clone());
        v["blocked"] = json!({
            "reason": failure.reason.unwrap_or("UNREACHABLE"),
            "exit_code": failure.code,
            "retry_after_ms": failure.retry_after_ms,
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flush(
        sent_taps: u32,
        sent_answers: u32,
        unsent: u32,
        blocked: Option<TaplineError>,
    ) -> Flush {
        Flush {
            report: FlushReport {
                sent_taps,
                sent_answers,
                sent_receipts: 0,
                refused: 0,
                unsent,
            },
            blocked,
        }
    }

    #[test]
    fn a_flush_says_what_went_out_and_what_waits() {
        assert_eq!(
            describe(&flush(2, 1, 0, None)).as_deref(),
            Some("Sent 2 queued taps and 1 answer.")
        );
        assert_eq!(describe(&flush(0, 0, 0, None)), None);
        let limited = flush(
            2,
            0,
            2,
            Some(TaplineError::RateLimited {
                retry_after_ms: 12_300,
            }),
        );
        assert_eq!(
            describe(&limited).as_deref(),
            Some(
                "Sent 2 queued taps. 2 items still queued: the server's rate limit; retry in 13 s."
            )
        );
        let mut refused = flush(0, 0, 0, None);
        refused.report.refused = 1;
        refused.report.sent_receipts = 2;
        assert_eq!(
            describe(&refused).as_deref(),
            Some(
                "Sent 2 felt/seen receipts. 1 queued item was refused for good (`tapline status` shows why)."
            )
        );
    }

    #[test]
    fn the_json_names_why_rows_wait() {
        let f = flush(
            0,
            0,
            4,
            Some(TaplineError::Network {
                reason: "refused".into(),
            }),
        );
        let v = flush_json(&f);
        assert_eq!(v["unsent"], 4);
        assert_eq!(v["blocked"]["exit_code"], 3);
        assert_eq!(v["blocked"]["reason"], "UNREACHABLE");
        let f = flush(
            0,
            0,
            1,
            Some(TaplineError::RateLimited {
                retry_after_ms: 900,
            }),
        );
        assert_eq!(flush_json(&f)["blocked"]["retry_after_ms"], 900);
        assert!(flush_json(&flush(1, 0, 0, None)).get("blocked").is_none());
    }
}
