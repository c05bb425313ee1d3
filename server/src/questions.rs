//! Deeper questions as stored: each couple's place in the deck with the answers to the current
//! question (hidden from the partner until both answered), and the revealed questions with
//! both answers. The rules are in [`crate::domain::questions`]; every change runs in the
//! group commit and tells both partners, each as they see it.

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, AnyPool, Row};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;

use crate::auth::Caller;
use crate::couples::{self, Sides, require_couple};
use crate::db::{timestamp_us, to_us};
use crate::delivery::{account_devices, new_event, to_each};
use crate::domain::questions::{Answered, MAX_ANSWER_CHARS, Progress, Refused, TOTAL, deck, place};
use crate::domain::streaks::Side;
use crate::error::{Error, Refusal, Result};
use crate::txn::WriteTx;

/// A checked `AnswerQuestion`: the 0-based position and the answer, trimmed.
pub fn check_answer(req: &pb::AnswerQuestionRequest) -> Result<(u32, String)> {
    if !(1..=TOTAL).contains(&req.number) {
        return Err(Error::invalid("number", "must be 1-36"));
    }
    let text = req.answer.trim();
    if text.is_empty() {
        return Err(Error::invalid("answer", "is required"));
    }
    if text.chars().count() > MAX_ANSWER_CHARS {
        return Err(Error::invalid("answer", "must be at most 500 characters"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::invalid("answer", "must not hold control characters"));
    }
    Ok((req.number - 1, text.to_owned()))
}

/// A couple's row, as stored (absent until the first answer or pause).
struct Stored {
    progress: Progress,
    paused_by: Option<String>,
}

async fn load(conn: &mut AnyConnection, couple_id: &str) -> Result<Stored> {
    let row = sqlx::query(
        "SELECT position, paused, paused_by, answer_a, answer_b FROM question_progress \
         WHERE couple_id = $1",
    )
    .bind(couple_id)
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else {
        return Ok(Stored {
            progress: Progress::default(),
            paused_by: None,
        });
    };
    Ok(Stored {
        progress: Progress {
            position: u32::try_from(r.try_get::<i64, _>("position")?).unwrap_or(TOTAL),
            paused: r.try_get::<i64, _>("paused")? != 0,
            answer_a: r.try_get("answer_a")?,
            answer_b: r.try_get("answer_b")?,
        },
        paused_by: r.try_get("paused_by")?,
    })
}

async fn save(
    conn: &mut AnyConnection,
    couple_id: &str,
    s: &Stored,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO question_progress (couple_id, position, paused, paused_by, answer_a, \
         answer_b, updated_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (couple_id) DO UPDATE SET position = excluded.position, \
         paused = excluded.paused, paused_by = excluded.paused_by, \
         answer_a = excluded.answer_a, answer_b = excluded.answer_b, \
         updated_at_us = excluded.updated_at_us",
    )
    .bind(couple_id)
    .bind(i64::from(s.progress.position))
    .bind(i64::from(s.progress.paused))
    .bind(s.paused_by.as_deref())
    .bind(s.progress.answer_a.as_deref())
    .bind(s.progress.answer_b.as_deref())
    .bind(to_us(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// A question of the deck at `position` (0-based), without answers.
fn bare(position: u32) -> pb::Question {
    let (set, in_set) = place(position);
    pb::Question {
        number: position + 1,
        set: set + 1,
        set_name: deck::SET_NAMES
            .get(set as usize)
            .copied()
            .unwrap_or_default()
            .to_owned(),
        number_in_set: in_set + 1,
        text: deck::question(position as usize)
            .map(|(_, q)| q.to_owned())
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// A revealed question with both answers as `me` sees them.
fn revealed(position: u32, a: &str, b: &str, me: Side, at_us: i64) -> pb::Question {
    let (mine, theirs) = match me {
        Side::A => (a, b),
        Side::B => (b, a),
    };
    pb::Question {
        my_answer: mine.to_owned(),
        i_answered: true,
        partner_answered: true,
        partner_answer: theirs.to_owned(),
        revealed_at: Some(timestamp_us(at_us)),
        ..bare(position)
    }
}

/// The progress as `me` sees it: the partner's answer to the current question stays hidden.
fn progress_view(s: &Stored, me: Side) -> pb::QuestionProgress {
    let p = &s.progress;
    let other = match me {
        Side::A => Side::B,
        Side::B => Side::A,
    };
    let current = (!p.finished()).then(|| {
        let mine = p.answer_of(me);
        pb::Question {
            my_answer: mine.unwrap_or_default().to_owned(),
            i_answered: mine.is_some(),
            partner_answered: p.answer_of(other).is_some(),
            ..bare(p.position)
        }
    });
    pb::QuestionProgress {
        current,
        revealed: p.position.min(TOTAL),
        total: TOTAL,
        paused: p.paused,
        paused_by_account_id: s.paused_by.clone().unwrap_or_default(),
        finished: p.finished(),
    }
}

/// A `QuestionUpdated` for each partner, as they see it: the partner's devices (silent in
/// their quiet hours) and the caller's other devices (silent).
#[allow(clippy::too_many_arguments)]
async fn tell(
    tx: &mut WriteTx,
    caller: &Caller,
    sides: &Sides,
    s: &Stored,
    change: pb::QuestionChange,
    shown: Option<(u32, &str, &str, i64)>,
    now: DateTime<Utc>,
) -> Result<()> {
    let me = sides.side_of(&caller.account_id);
    let conn = tx.conn();
    let partner = couples::partner(conn, &sides.couple_id, &caller.account_id).await?;
    let quiet = partner.clock(now).in_quiet_hours;
    let to_partner = account_devices(conn, &partner.id).await?;
    let mut mine = account_devices(conn, &caller.account_id).await?;
    mine.retain(|d| *d != caller.device_id);
    for (side, devices, silent) in [
        (me, mine, true),
        (
            match me {
                Side::A => Side::B,
                Side::B => Side::A,
            },
            to_partner,
            quiet,
        ),
    ] {
        let event = new_event(
            Payload::QuestionUpdated(Box::new(pb::QuestionUpdated {
                change: change as i32,
                progress: Some(progress_view(s, side)),
                revealed: shown.map(|(pos, a, b, at)| revealed(pos, a, b, side, at)),
                silent,
            })),
            now,
        );
        tx.tell(to_each(&devices, &event));
    }
    Ok(())
}

/// `AnswerQuestion`, in the group commit.
pub async fn answer(
    tx: &mut WriteTx,
    caller: &Caller,
    position: u32,
    text: String,
    now: DateTime<Utc>,
) -> Result<pb::AnswerQuestionResponse> {
    let conn = tx.conn();
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    let sides = couples::sides(conn, &couple_id).await?;
    let me = sides.side_of(&caller.account_id);
    let mut s = load(conn, &couple_id).await?;
    let outcome = s
        .progress
        .answer(me, position, &text)
        .map_err(|r| match r {
            Refused::Paused => Error::Refused(Refusal::QuestionsPaused),
            Refused::Finished | Refused::NotCurrent => Error::Refused(Refusal::QuestionLocked),
            Refused::AlreadyAnswered => Error::Refused(Refusal::AlreadyAnswered),
        })?;
    let mut shown = None;
    match &outcome {
        Answered::Unchanged => {}
        Answered::Waiting => {
            save(conn, &couple_id, &s, now).await?;
            tell(
                tx,
                caller,
                &sides,
                &s,
                pb::QuestionChange::PartnerAnswered,
                None,
                now,
            )
            .await?;
        }
        Answered::Revealed {
            position,
            answer_a,
            answer_b,
        } => {
            sqlx::query(
                "INSERT INTO question_answers (couple_id, position, answer_a, answer_b, \
                 revealed_at_us) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&couple_id)
            .bind(i64::from(*position))
            .bind(answer_a)
            .bind(answer_b)
            .bind(to_us(now))
            .execute(&mut *conn)
            .await?;
            save(conn, &couple_id, &s, now).await?;
            let at = to_us(now);
            shown = Some(revealed(*position, answer_a, answer_b, me, at));
            tell(
                tx,
                caller,
                &sides,
                &s,
                pb::QuestionChange::Revealed,
                Some((*position, answer_a, answer_b, at)),
                now,
            )
            .await?;
        }
    }
    Ok(pb::AnswerQuestionResponse {
        progress: Some(progress_view(&s, me)),
        revealed: shown,
    })
}

/// `PauseQuestions`, in the group commit.
pub async fn pause(
    tx: &mut WriteTx,
    caller: &Caller,
    paused: bool,
    now: DateTime<Utc>,
) -> Result<pb::PauseQuestionsResponse> {
    let conn = tx.conn();
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    let sides = couples::sides(conn, &couple_id).await?;
    let me = sides.side_of(&caller.account_id);
    let mut s = load(conn, &couple_id).await?;
    if s.progress.paused != paused {
        s.progress.paused = paused;
        s.paused_by = paused.then(|| caller.account_id.clone());
        save(conn, &couple_id, &s, now).await?;
        let change = if paused {
            pb::QuestionChange::Paused
        } else {
            pb::QuestionChange::Resumed
        };
        tell(tx, caller, &sides, &s, change, None, now).await?;
    }
    Ok(pb::PauseQuestionsResponse {
        progress: Some(progress_view(&s, me)),
    })
}

/// `GetQuestions`: the progress and every revealed question, as the caller sees them.
pub async fn get(pool: &AnyPool, caller: &Caller) -> Result<pb::GetQuestionsResponse> {
    let mut conn = pool.acquire().await?;
    let (_, couple_id) = require_couple(&mut conn, &caller.account_id).await?;
    let sides = couples::sides(&mut conn, &couple_id).await?;
    let me = sides.side_of(&caller.account_id);
    let s = load(&mut conn, &couple_id).await?;
    let rows = sqlx::query(
        "SELECT position, answer_a, answer_b, revealed_at_us FROM question_answers \
         WHERE couple_id = $1 ORDER BY position",
    )
    .bind(&couple_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let a: Option<String> = r.try_get("answer_a")?;
        let b: Option<String> = r.try_get("answer_b")?;
        out.push(revealed(
            u32::try_from(r.try_get::<i64, _>("position")?).unwrap_or(0),
            a.as_deref().unwrap_or_default(),
            b.as_deref().unwrap_or_default(),
            me,
            r.try_get("revealed_at_us")?,
        ));
    }
    Ok(pb::GetQuestionsResponse {
        progress: Some(progress_view(&s, me)),
        revealed: out,
    })
}
