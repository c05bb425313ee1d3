//! Check-ins as stored: opened on demand or by a routine, answered by both, revealed at once,
//! expired after 24 hours. The rules live in [`crate::domain::checkins`].

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::{AnyConnection, Row};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::db::{from_us, timestamp_us, to_us};
use crate::delivery::{account_devices, commit, new_event};
use crate::domain::checkins::{
    Answer, AnswerOutcome, CheckinError, CheckinState, PartnerAnswer, Phase,
};
use crate::domain::prompts::{self, AnswerKind, Category, Prompt};
use crate::domain::streaks::Side;
use crate::domain::validate;
use crate::error::{Error, Refusal, Result};
use crate::pairing::require_couple;
use crate::streaks::{self, Sides};

/// Most check-ins listed at once.
const MAX_LIST: u32 = 100;

/// The wire category of a catalogue category.
pub fn category_to_pb(c: Category) -> pb::PromptCategory {
    match c {
        Category::Mood => pb::PromptCategory::Mood,
        Category::Energy => pb::PromptCategory::Energy,
        Category::OneWord => pb::PromptCategory::OneWordDay,
        Category::IFeel => pb::PromptCategory::IFeel,
        Category::Appreciation => pb::PromptCategory::Appreciation,
        Category::Support => pb::PromptCategory::NeedSupport,
        Category::Gratitude => pb::PromptCategory::Gratitude,
        Category::Curiosity => pb::PromptCategory::Curiosity,
        Category::Playful => pb::PromptCategory::Playful,
        Category::Reconnect => pb::PromptCategory::Reconnecting,
    }
}

/// The catalogue category of a wire value; `None` for unspecified or unknown.
pub fn category_from_pb(v: i32) -> Option<Category> {
    Category::ALL
        .into_iter()
        .find(|c| category_to_pb(*c) as i32 == v)
}

fn answer_to_pb(a: &Answer) -> pb::Answer {
    use pb::answer::Value;
    pb::Answer {
        value: Some(match a {
            Answer::Scale(v) => Value::Scale(u32::from(*v)),
            Answer::Choice(i) => Value::Choice(u32::from(*i)),
            Answer::Emoji(e) => Value::Emoji(e.clone()),
            Answer::Text(t) => Value::Text(t.clone()),
        }),
    }
}

fn answer_from_pb(a: Option<&pb::Answer>) -> Result<Answer> {
    use pb::answer::Value;
    let value = a
        .and_then(|a| a.value.as_ref())
        .ok_or_else(|| Error::invalid("answer", "is required"))?;
    Ok(match value {
        Value::Scale(v) => Answer::Scale(u8::try_from(*v).unwrap_or(u8::MAX)),
        Value::Choice(i) => Answer::Choice(u8::try_from(*i).unwrap_or(u8::MAX)),
        Value::Emoji(e) => Answer::Emoji(e.clone()),
        Value::Text(t) => {
            if t.len() > 4 * 280 {
                return Err(Error::invalid(
                    "answer.text",
                    "must be at most 280 characters",
                ));
            }
            Answer::Text(t.clone())
        }
    })
}

/// A catalogue prompt on the wire.
pub fn prompt_to_pb(p: &Prompt) -> pb::Prompt {
    use pb::prompt::AnswerType;
    let answer_type = match p.kind {
        AnswerKind::Scale { low, high } => AnswerType::Scale(pb::ScaleAnswerType {
            low_label: low.into(),
            high_label: high.into(),
        }),
        AnswerKind::Choice(options) => AnswerType::Choice(pb::ChoiceAnswerType {
            options: options.iter().map(|s| s.to_string()).collect(),
        }),
        AnswerKind::Emoji(options) => AnswerType::Emoji(pb::EmojiAnswerType {
            options: options.iter().map(|s| s.to_string()).collect(),
        }),
        AnswerKind::Text => AnswerType::TextAnswer(pb::TextAnswerType {
            max_chars: crate::domain::checkins::MAX_TEXT_CHARS as u32,
        }),
    };
    pb::Prompt {
        prompt_id: p.id.into(),
        category: category_to_pb(p.category) as i32,
        text: p.text.into(),
        answer_type: Some(answer_type),
        quick_replies: p
            .quick
            .iter()
            .map(|q| pb::QuickReply {
                label: q.label.into(),
                answer: Some(answer_to_pb(&crate::domain::checkins::quick_answer(p, q))),
            })
            .collect(),
    }
}

/// A stored check-in.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its id.
    pub id: String,
    /// Its couple.
    pub couple_id: String,
    /// The routine that opened it.
    pub routine_id: Option<String>,
    /// Who asked.
    pub opened_by: Option<String>,
    /// The rules' state.
    pub state: CheckinState,
}

fn phase_str(p: Phase) -> &'static str {
    match p {
        Phase::Open => "open",
        Phase::Revealed => "revealed",
        Phase::Expired => "expired",
    }
}

macro_rules! checkin_select {
    ($where:literal) => {
        concat!(
            "SELECT id, couple_id, prompt_id, routine_id, opened_by, opened_at_us, expires_at_us, phase, answer_a, answer_b ",
            "FROM checkins WHERE ",
            $where
        )
    };
}

fn stored_from_row(r: &sqlx::any::AnyRow) -> Result<Stored> {
    let prompt_id: String = r.try_get("prompt_id")?;
    let prompt = prompts::by_id(&prompt_id)
        .ok_or_else(|| Error::Corrupt(format!("prompt {prompt_id:?}")))?;
    let decode = |col: &str| -> Result<Option<Answer>> {
        let bytes: Option<Vec<u8>> = r.try_get(col)?;
        bytes
            .map(|b| {
                let a = pb::Answer::decode(b.as_slice())
                    .map_err(|e| Error::Corrupt(format!("answer: {e}")))?;
                answer_from_pb(Some(&a))
            })
            .transpose()
    };
    let phase = match r.try_get::<String, _>("phase")?.as_str() {
        "open" => Phase::Open,
        "revealed" => Phase::Revealed,
        _ => Phase::Expired,
    };
    Ok(Stored {
        id: r.try_get("id")?,
        couple_id: r.try_get("couple_id")?,
        routine_id: r.try_get("routine_id")?,
        opened_by: r.try_get("opened_by")?,
        state: CheckinState {
            prompt,
            opened_at: from_us(r.try_get("opened_at_us")?),
            expires_at: from_us(r.try_get("expires_at_us")?),
            answer_a: decode("answer_a")?,
            answer_b: decode("answer_b")?,
            phase,
        },
    })
}

/// The check-in as `viewer` sees it.
pub fn view(c: &Stored, viewer: Side) -> pb::Checkin {
    let s = &c.state;
    let partner = s.partner_answer(viewer);
    let mine = s.answer_of(viewer);
    let closed = s.phase == Phase::Expired;
    pb::Checkin {
        checkin_id: c.id.clone(),
        prompt: Some(prompt_to_pb(s.prompt)),
        status: match s.phase {
            Phase::Open => pb::CheckinStatus::Open,
            Phase::Revealed => pb::CheckinStatus::Revealed,
            Phase::Expired => pb::CheckinStatus::Expired,
        } as i32,
        opened_by_account_id: c.opened_by.clone().unwrap_or_default(),
        routine_id: c.routine_id.clone().unwrap_or_default(),
        opened_at: Some(timestamp_us(to_us(s.opened_at))),
        expires_at: Some(timestamp_us(to_us(s.expires_at))),
        my_answer: mine.map(answer_to_pb),
        partner_answered: matches!(partner, PartnerAnswer::Hidden | PartnerAnswer::Revealed(_)),
        partner_answer: match partner {
            PartnerAnswer::Revealed(a) => Some(answer_to_pb(a)),
            _ => None,
        },
        i_missed: closed && mine.is_none(),
        partner_missed: matches!(partner, PartnerAnswer::Missed),
    }
}

async fn save(conn: &mut AnyConnection, c: &Stored) -> Result<()> {
    sqlx::query("UPDATE checkins SET phase = $1, answer_a = $2, answer_b = $3 WHERE id = $4")
        .bind(phase_str(c.state.phase))
        .bind(
            c.state
                .answer_a
                .as_ref()
                .map(|a| answer_to_pb(a).encode_to_vec()),
        )
        .bind(
            c.state
                .answer_b
                .as_ref()
                .map(|a| answer_to_pb(a).encode_to_vec()),
        )
        .bind(&c.id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Opens a check-in of `prompt` for a couple.
pub async fn open(
    conn: &mut AnyConnection,
    couple_id: &str,
    prompt: &'static Prompt,
    opened_by: Option<&str>,
    client_id: Option<&str>,
    routine_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Stored> {
    let state = CheckinState::open(prompt, now);
    let id = Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO checkins (id, couple_id, prompt_id, routine_id, opened_by, client_id, opened_at_us, expires_at_us, phase) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open')",
    )
    .bind(&id)
    .bind(couple_id)
    .bind(prompt.id)
    .bind(routine_id)
    .bind(opened_by)
    .bind(client_id)
    .bind(to_us(state.opened_at))
    .bind(to_us(state.expires_at))
    .execute(conn)
    .await?;
    Ok(Stored {
        id,
        couple_id: couple_id.into(),
        routine_id: routine_id.map(Into::into),
        opened_by: opened_by.map(Into::into),
        state,
    })
}

/// Loads a check-in of `couple_id`.
pub async fn load(conn: &mut AnyConnection, id: &str, couple_id: &str) -> Result<Stored> {
    let row = sqlx::query(checkin_select!("id = $1 AND couple_id = $2"))
        .bind(id)
        .bind(couple_id)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::NotFound("check-in"))?;
    stored_from_row(&row)
}

/// `CheckinUpdated` events for `accounts` (each sees their own view), one event id.
pub async fn events_for(
    conn: &mut AnyConnection,
    c: &Stored,
    sides: &Sides,
    accounts: &[Side],
    now: DateTime<Utc>,
) -> Result<Vec<(String, pb::Event)>> {
    let mut event = new_event(Payload::Heartbeat(pb::Heartbeat::default()), now);
    let mut items = Vec::new();
    for side in accounts {
        event.payload = Some(Payload::CheckinUpdated(pb::CheckinUpdated {
            checkin: Some(view(c, *side)),
        }));
        for device in account_devices(conn, sides.account(*side)).await? {
            items.push((device, event.clone()));
        }
    }
    Ok(items)
}

/// The catalogue.
pub fn list_prompts(category: i32) -> Result<pb::ListPromptsResponse> {
    let prompts = if category == 0 {
        prompts::CATALOGUE.iter().map(prompt_to_pb).collect()
    } else {
        let c = category_from_pb(category)
            .ok_or_else(|| Error::invalid("category", "unknown prompt category"))?;
        prompts::by_category(c).map(prompt_to_pb).collect()
    };
    Ok(pb::ListPromptsResponse { prompts })
}

/// Opens a check-in for both partners, on demand.
pub async fn ask_partner(
    state: &AppState,
    caller: &Caller,
    req: pb::AskPartnerRequest,
) -> Result<pb::AskPartnerResponse> {
    let client_id = validate::uuid("client_checkin_id", &req.client_checkin_id)?.to_string();
    let named = match req.prompt_id.as_str() {
        "" => None,
        id if id.len() > 64 => return Err(Error::invalid("prompt_id", "unknown prompt")),
        id => Some(
            prompts::by_id(id)
                .ok_or_else(|| Error::invalid("prompt_id", format!("unknown prompt {id:?}")))?,
        ),
    };
    let category = match req.category {
        0 => None,
        c => Some(
            category_from_pb(c)
                .ok_or_else(|| Error::invalid("category", "unknown prompt category"))?,
        ),
    };
    let now = state.clock.now();
    let mut tx = state.db.begin_write().await?;
    let (_, couple_id) = require_couple(&mut tx, &caller.account_id).await?;
    streaks::lock_couple(&mut tx, &couple_id).await?;
    let sides = streaks::sides(&mut tx, &couple_id).await?;
    let me = sides.side_of(&caller.account_id);
    let existing = sqlx::query(checkin_select!("opened_by = $1 AND client_id = $2"))
        .bind(&caller.account_id)
        .bind(&client_id)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(row) = existing {
        return Ok(pb::AskPartnerResponse {
            checkin: Some(view(&stored_from_row(&row)?, me)),
        });
    }
    let prompt = match named {
        Some(p) => p,
        None => {
            let today = streaks::local_today(&mut tx, &caller.account_id, now).await?;
            prompts::pick(
                category.unwrap_or(Category::Mood),
                streaks::couple_uuid(&couple_id),
                today,
            )
        }
    };
    let c = open(
        &mut tx,
        &couple_id,
        prompt,
        Some(&caller.account_id),
        Some(&client_id),
        None,
        now,
    )
    .await?;
    let items = events_for(&mut tx, &c, &sides, &[Side::A, Side::B], now).await?;
    commit(state, tx, items).await?;
    Ok(pb::AskPartnerResponse {
        checkin: Some(view(&c, me)),
    })
}

/// Answers a check-in; an answer is a qualifying action for the streak.
pub async fn answer(
    state: &AppState,
    caller: &Caller,
    req: pb::AnswerCheckinRequest,
) -> Result<pb::AnswerCheckinResponse> {
    let id = validate::id("checkin_id", &req.checkin_id)?;
    let answer = answer_from_pb(req.answer.as_ref())?;
    let now = state.clock.now();
    let mut tx = state.db.begin_write().await?;
    let (_, couple_id) = require_couple(&mut tx, &caller.account_id).await?;
    // Both partners may answer at once: one at a time, or one answer would overwrite the other.
    streaks::lock_couple(&mut tx, &couple_id).await?;
    let sides = streaks::sides(&mut tx, &couple_id).await?;
    let me = sides.side_of(&caller.account_id);
    let mut c = load(&mut tx, &id, &couple_id).await?;
    let outcome = c.state.answer(me, answer, now).map_err(|e| match e {
        CheckinError::Invalid(e) => Error::invalid("answer", e.to_string()),
        CheckinError::AlreadyAnswered => Error::Refused(Refusal::AlreadyAnswered),
        CheckinError::Expired => Error::Refused(Refusal::CheckinExpired),
    })?;
    if outcome == AnswerOutcome::Unchanged {
        return Ok(pb::AnswerCheckinResponse {
            checkin: Some(view(&c, me)),
        });
    }
    save(&mut tx, &c).await?;
    let mut items = events_for(&mut tx, &c, &sides, &[Side::A, Side::B], now).await?;
    items.extend(streaks::record_action(&mut tx, &couple_id, &caller.account_id, now).await?);
    commit(state, tx, items).await?;
    Ok(pb::AnswerCheckinResponse {
        checkin: Some(view(&c, me)),
    })
}

/// Open check-ins first, then the newest.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    req: pb::ListCheckinsRequest,
) -> Result<pb::ListCheckinsResponse> {
    let limit = match req.limit {
        0 => 20,
        1..=MAX_LIST => req.limit,
        _ => return Err(Error::invalid("limit", format!("must be 0-{MAX_LIST}"))),
    };
    let mut conn = state.db.pool().acquire().await?;
    let (_, couple_id) = require_couple(&mut conn, &caller.account_id).await?;
    let sides = streaks::sides(&mut conn, &couple_id).await?;
    let me = sides.side_of(&caller.account_id);
    let rows = if req.open_only {
        sqlx::query(checkin_select!(
            "couple_id = $1 AND phase = 'open' ORDER BY opened_at_us DESC LIMIT $2"
        ))
        .bind(&couple_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?
    } else {
        sqlx::query(checkin_select!(
            "couple_id = $1 ORDER BY CASE WHEN phase = 'open' THEN 0 ELSE 1 END, opened_at_us DESC LIMIT $2"
        ))
        .bind(&couple_id)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?
    };
    let checkins = rows
        .iter()
        .map(|r| stored_from_row(r).map(|c| view(&c, me)))
        .collect::<Result<_>>()?;
    Ok(pb::ListCheckinsResponse { checkins })
}

/// Expires every open check-in whose time is up at `now`; returns how many.
pub async fn expire_due(state: &AppState, now: DateTime<Utc>) -> Result<u32> {
    let rows = sqlx::query("SELECT id, couple_id FROM checkins WHERE phase = 'open' AND expires_at_us <= $1 ORDER BY expires_at_us LIMIT 200")
        .bind(to_us(now))
        .fetch_all(state.db.pool())
        .await?;
    let mut expired = 0;
    for r in &rows {
        let (id, couple_id): (String, String) = (r.try_get("id")?, r.try_get("couple_id")?);
        let mut tx = state.db.begin_write().await?;
        streaks::lock_couple(&mut tx, &couple_id).await?;
        let mut c = load(&mut tx, &id, &couple_id).await?;
        if c.state.expire(now).is_none() {
            continue;
        }
        // Compare-and-set: another instance may have expired it first.
        let done =
            sqlx::query("UPDATE checkins SET phase = 'expired' WHERE id = $1 AND phase = 'open'")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            continue;
        }
        let sides = streaks::sides(&mut tx, &couple_id).await?;
        let items = events_for(&mut tx, &c, &sides, &[Side::A, Side::B], now).await?;
        commit(state, tx, items).await?;
        expired += 1;
    }
    Ok(expired)
}
