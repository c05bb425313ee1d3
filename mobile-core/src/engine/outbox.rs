//! The outbox sender: sends queued rows oldest first, and decides each one's outcome: sent,
//! retried later (network, outage, rate limit with the server's delay), or refused for good
//! (signed out, not paired, invalid), which the app hears of.

use std::sync::Weak;
use std::time::Duration;

use prost::Message;
use tapline_proto::v1 as pb;
use tokio_util::sync::CancellationToken;

use super::Inner;
use super::backoff::{self, CAP};
use super::runtime::now_ms;
use crate::error::{CoreResult, RefusalCode, TaplineError};
use crate::model::*;
use crate::store::{OutboxItem, OutboxKind};

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Accepted (a tap gets the server's id).
    Sent(Option<String>),
    /// Try again after the delay; the error says why it waits.
    Retry(Duration, TaplineError),
    /// Given up for good.
    Refused(RefusalCode, String),
}

/// The outcome of a failed attempt: retryable failures wait (the server's `RetryInfo` delay,
/// else a back-off growing with `attempts`), final ones are refused.
pub(crate) fn outcome_of(
    error: TaplineError,
    attempts: u32,
    asked: Option<Duration>,
    jitter: f64,
) -> Outcome {
    if let Some((code, reason)) = error.final_refusal() {
        return Outcome::Refused(code, reason);
    }
    let delay = match &error {
        TaplineError::RateLimited { retry_after_ms } => Duration::from_millis(*retry_after_ms),
        _ => backoff::delay(attempts.saturating_add(1), CAP, jitter).max(asked.unwrap_or_default()),
    };
    Outcome::Retry(delay, error)
}

/// What one flush did.
#[derive(Debug, Default)]
pub(crate) struct Flushed {
    pub report: FlushReport,
    /// Why queued rows are still waiting, if they are.
    pub blocked: Option<TaplineError>,
}

impl Inner {
    /// Sends one row and records its outcome.
    pub(crate) async fn attempt(&self, item: OutboxItem) -> Outcome {
        let result: CoreResult<Option<String>> = async {
            match item.kind {
                OutboxKind::Tap => {
                    let req = pb::SendTapRequest::decode(item.payload.as_slice())?;
                    let resp = self.taps().send_tap(self.authed(req)?).await?.into_inner();
                    Ok(resp.tap.map(|t| t.tap_id))
                }
                OutboxKind::Felt | OutboxKind::Seen => {
                    let req = pb::ReportTapRequest::decode(item.payload.as_slice())?;
                    self.taps().report_tap(self.authed(req)?).await?;
                    Ok(None)
                }
                OutboxKind::Answer => {
                    self.send_answer(&item.payload).await?;
                    Ok(None)
                }
            }
        }
        .await;
        let outcome = match result {
            Ok(tap_id) => Outcome::Sent(tap_id),
            Err(e) => {
                // What the server asked to wait (RetryInfo on an outage), read before the
                // status goes.
                let asked = e.retry_after();
                outcome_of(e.into(), item.attempts, asked, backoff::jitter())
            }
        };
        let changed = match &outcome {
            Outcome::Sent(tap_id) => self.store.mark_sent(item.id, tap_id.as_deref()),
            Outcome::Retry(delay, _) => self
                .store
                .reschedule(item.id, now_ms() + delay.as_millis() as i64)
                .map(|_| None),
            Outcome::Refused(code, reason) => {
                if *code == RefusalCode::SignedOut {
                    self.signed_out();
                }
                self.store.mark_refused(item.id, *code, reason)
            }
        };
        match item.kind {
            OutboxKind::Tap => {
                if let Ok(Some(tap)) = changed {
                    self.dispatch(ClientEvent::TapStateChanged { tap });
                }
            }
            OutboxKind::Answer => self.answer_moved(&item.subject),
            OutboxKind::Felt | OutboxKind::Seen => {}
        }
        outcome
    }

    /// Tries every queued row now, oldest first, ignoring back-off, until one must wait.
    pub(crate) async fn flush(&self) -> CoreResult<Flushed> {
        let _sending = self.sending.lock().await;
        self.store.make_all_due(now_ms())?;
        let mut out = Flushed::default();
        while let Ok(item) = self.store.next_due(now_ms())? {
            let kind = item.kind;
            match self.attempt(item).await {
                Outcome::Sent(_) => match kind {
                    OutboxKind::Tap => out.report.sent_taps += 1,
                    OutboxKind::Answer => out.report.sent_answers += 1,
                    OutboxKind::Felt | OutboxKind::Seen => out.report.sent_receipts += 1,
                },
                Outcome::Refused(..) => out.report.refused += 1,
                // It stays first in line for the background sender.
                Outcome::Retry(_, e) => {
                    out.blocked = Some(e);
                    break;
                }
            }
        }
        out.report.unsent = self.store.queued_count()?;
        Ok(out)
    }

    /// Sends one queued answer; the check-in the server returns replaces the stored one.
    async fn send_answer(&self, payload: &[u8]) -> CoreResult<()> {
        let req = pb::AnswerCheckinRequest::decode(payload)?;
        let resp = self
            .checkin_client()
            .answer_checkin(self.authed(req)?)
            .await?
            .into_inner();
        if let Some(c) = resp.checkin {
            self.store.save_checkins(&[c])?;
        }
        Ok(())
    }

    /// Tells the app an answer was sent or refused (nothing while it is still queued).
    fn answer_moved(&self, checkin_id: &str) {
        if let Ok(Some(answer)) = self.store.local_answer(checkin_id)
            && answer.state != AnswerState::Queued
        {
            self.dispatch(ClientEvent::AnswerStateChanged { answer });
        }
    }
}

/// Sends queued rows in the background as they become due, until the client goes.
pub(crate) async fn outbox_loop(weak: Weak<Inner>, shutdown: CancellationToken) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let sending = tokio::select! {
            g = inner.sending.lock() => g,
            _ = shutdown.cancelled() => return,
        };
        match inner.store.next_due(now_ms()) {
            Ok(Ok(item)) => {
                tokio::select! {
                    _ = inner.attempt(item) => {}
                    _ = shutdown.cancelled() => return,
                }
                drop(sending);
            }
            Ok(Err(next)) => {
                drop(sending);
                let wait = next.map(|t| Duration::from_millis((t - now_ms()).max(0) as u64));
                let wake = inner.outbox_wake.clone();
                drop(inner);
                let notified = wake.notified();
                tokio::select! {
                    _ = notified => {}
                    _ = async { match wait { Some(w) => tokio::time::sleep(w).await, None => std::future::pending().await } } => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            Err(_) => {
                drop(sending);
                drop(inner);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_failures_wait_and_final_ones_are_refused() {
        let net = TaplineError::Network {
            reason: "down".into(),
        };
        assert!(matches!(
            outcome_of(net.clone(), 0, None, 1.0),
            Outcome::Retry(d, TaplineError::Network { .. }) if d == backoff::FIRST
        ));
        // The wait grows with the attempts, up to the cap.
        assert!(matches!(outcome_of(net.clone(), 40, None, 1.0), Outcome::Retry(d, _) if d == CAP));
        // An outage's RetryInfo is honoured when longer.
        assert!(matches!(
            outcome_of(net, 0, Some(Duration::from_secs(7)), 1.0),
            Outcome::Retry(d, _) if d == Duration::from_secs(7)
        ));
        // A rate limit waits exactly what the server said.
        assert!(matches!(
            outcome_of(TaplineError::RateLimited { retry_after_ms: 1500 }, 5, None, 0.0),
            Outcome::Retry(d, TaplineError::RateLimited { .. }) if d == Duration::from_millis(1500)
        ));
        for (error, code) in [
            (TaplineError::Unauthenticated, RefusalCode::SignedOut),
            (TaplineError::NotPaired, RefusalCode::NotPaired),
            (
                TaplineError::InvalidInput {
                    reason: "note: too long".into(),
                },
                RefusalCode::InvalidInput,
            ),
            (
                TaplineError::Refused {
                    reason: "too late".into(),
                    code: RefusalCode::CheckinExpired,
                },
                RefusalCode::CheckinExpired,
            ),
        ] {
            assert!(
                matches!(outcome_of(error.clone(), 0, None, 0.5), Outcome::Refused(c, _) if c == code),
                "{error:?}"
            );
        }
    }
}
