//! Check-ins as stored: opened on demand or by a routine, answered by both, revealed at once,
//! expired after 24 hours. The rules live in [`crate::domain::checkins`].

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};
use tapline_proto::v1 as pb;
use tapline_proto::v1::event::Payload;
use uuid::Uuid;

use crate::auth::Caller;
use crate::couples::{self, Members, Sides, require_couple};
use crate::db::{from_us, timestamp_us, to_us};
use crate::delivery::{account_devices, new_event, to_each};
use crate::domain::checkins::{
    Answer, AnswerOutcome, CheckinError, CheckinState, PartnerAnswer, Phase,
};
use crate::domain::prompts::{self, AnswerKind, Category, Prompt};
use crate::domain::streaks::Side;
use crate::domain::validate;
use crate::error::{Error, Refusal, Result};
use crate::store::{CHECKIN_COLUMNS, CheckinRow, Store};
use crate::streaks::{self, Action};
use crate::txn::WriteTx;

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

fn phase_from_str(s: &str) -> Phase {
    match s {
        "open" => Phase::Open,
        "revealed" => Phase::Revealed,
        _ => Phase::Expired,
    }
}

/// A check-in from its stored row.
pub fn stored_from_row(r: CheckinRow) -> Result<Stored> {
    let prompt = prompts::by_id(&r.prompt_id)
        .ok_or_else(|| Error::Corrupt(format!("prompt {:?}", r.prompt_id)))?;
    let decode = |bytes: Option<Vec<u8>>| -> Result<Option<Answer>> {
        bytes
            .map(|b| {
                let a = pb::Answer::decode(b.as_slice())
                    .map_err(|e| Error::Corrupt(format!("answer: {e}")))?;
                answer_from_pb(Some(&a))
            })
            .transpose()
    };
    Ok(Stored {
        state: CheckinState {
            prompt,
            opened_at: from_us(r.opened_at_us),
            expires_at: from_us(r.expires_at_us),
            answer_a: decode(r.answer_a)?,
            answer_b: decode(r.answer_b)?,
            phase: phase_from_str(&r.phase),
        },
        id: r.id,
        couple_id: r.couple_id,
        routine_id: r.routine_id,
        opened_by: r.opened_by,
    })
}

/// The stored row of a check-in.
fn to_row(c: &Stored) -> CheckinRow {
    let encode = |a: &Option<Answer>| a.as_ref().map(|a| answer_to_pb(a).encode_to_vec());
    CheckinRow {
        id: c.id.clone(),
        couple_id: c.couple_id.clone(),
        prompt_id: c.state.prompt.id.to_owned(),
        routine_id: c.routine_id.clone(),
        opened_by: c.opened_by.clone(),
        opened_at_us: to_us(c.state.opened_at),
        expires_at_us: to_us(c.state.expires_at),
        phase: phase_str(c.state.phase).to_owned(),
        answer_a: encode(&c.state.answer_a),
        answer_b: encode(&c.state.answer_b),
    }
}

fn row_from_any(r: &AnyRow) -> Result<CheckinRow> {
    Ok(CheckinRow {
        id: r.try_get("id")?,
        couple_id: r.try_get("couple_id")?,
        prompt_id: r.try_get("prompt_id")?,
        routine_id: r.try_get("routine_id")?,
        opened_by: r.try_get("opened_by")?,
        opened_at_us: r.try_get("opened_at_us")?,
        expires_at_us: r.try_get("expires_at_us")?,
        phase: r.try_get("phase")?,
        answer_a: r.try_get("answer_a")?,
        answer_b: r.try_get("answer_b")?,
    })
}

/// The check-ins matching `filter` (a `WHERE` clause after `FROM checkins`), bound to `binds`.
async fn select(
    conn: &mut AnyConnection,
    filter: &str,
    binds: &[&str],
    limit: i64,
) -> Result<Vec<Stored>> {
    let sql = format!("SELECT {CHECKIN_COLUMNS} FROM checkins WHERE {filter} LIMIT {limit}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_all(conn)
        .await?
        .iter()
        .map(|r| stored_from_row(row_from_any(r)?))
        .collect()
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
        "INSERT INTO checkins (id, couple_id, prompt_id, routine_id, opened_by, client_id, \
         opened_at_us, expires_at_us, phase) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open')",
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
    select(conn, "id = $1 AND couple_id = $2", &[id, couple_id], 1)
        .await?
        .pop()
        .ok_or(Error::NotFound("check-in"))
}

/// A couple's check-ins opened in `[from_us, to_us)`, oldest first.
pub async fn opened_between(
    conn: &mut AnyConnection,
    couple_id: &str,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<Stored>> {
    let sql = format!(
        "SELECT {CHECKIN_COLUMNS} FROM checkins WHERE couple_id = $1 AND opened_at_us >= $2 \
         AND opened_at_us < $3 ORDER BY opened_at_us, id"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(couple_id)
        .bind(from_us)
        .bind(to_us)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| stored_from_row(row_from_any(r)?))
        .collect()
}

/// Gives the partner nudged to an open check-in at `now` a whole day to answer it (see
/// [`CheckinState::extend_for_late_partner`]); the other partner's devices are told the new
/// expiry. Returns the check-in as it is now.
pub async fn extend_for_late_partner(
    tx: &mut WriteTx,
    mut c: Stored,
    late: Side,
    sides: &Sides,
    now: DateTime<Utc>,
) -> Result<Stored> {
    if !c.state.extend_for_late_partner(now) {
        return Ok(c);
    }
    sqlx::query("UPDATE checkins SET expires_at_us = $1 WHERE id = $2")
        .bind(to_us(c.state.expires_at))
        .bind(&c.id)
        .execute(tx.conn())
        .await?;
    let other = sides.account(late.other()).to_owned();
    let devices = account_devices(tx.conn(), &other).await?;
    let event = new_event(updated(&c, late.other()), now);
    tx.tell(to_each(&devices, &event));
    Ok(c)
}

/// A `CheckinUpdated` payload with the check-in as `side` sees it.
fn updated(c: &Stored, side: Side) -> Payload {
    Payload::CheckinUpdated(Box::new(pb::CheckinUpdated {
        checkin: Some(view(c, side)),
    }))
}

/// `CheckinUpdated` events for both partners' devices (each sees their own view), one event
/// id.
fn events_for(
    c: &Stored,
    sides: &Sides,
    devices: [&[String]; 2],
    now: DateTime<Utc>,
) -> Vec<(String, pb::Event)> {
    let mut event = new_event(Payload::Heartbeat(pb::Heartbeat::default()), now);
    let mut items = Vec::new();
    debug_assert_eq!(sides.side_of(&sides.a), Side::A);
    for (side, devices) in [Side::A, Side::B].into_iter().zip(devices) {
        event.payload = Some(updated(c, side));
        items.extend(devices.iter().map(|d| (d.clone(), event.clone())));
    }
    items
}

/// [`events_for`] with the devices read on the general connection.
async fn tell_both(tx: &mut WriteTx, c: &Stored, sides: &Sides, now: DateTime<Utc>) -> Result<()> {
    let a = account_devices(tx.conn(), &sides.a).await?;
    let b = account_devices(tx.conn(), &sides.b).await?;
    tx.tell(events_for(c, sides, [&a, &b], now));
    Ok(())
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

/// A checked `AskPartner` request.
#[derive(Debug, Clone)]
pub struct Ask {
    client_id: String,
    prompt: Option<&'static Prompt>,
    category: Option<Category>,
}

/// Checks an `AskPartner` request.
pub fn check_ask(req: &pb::AskPartnerRequest) -> Result<Ask> {
    let client_id = validate::uuid("client_checkin_id", &req.client_checkin_id)?.to_string();
    let prompt = match req.prompt_id.as_str() {
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
    Ok(Ask {
        client_id,
        prompt,
        category,
    })
}

/// Opens a check-in for both partners, on demand; a retry with the same client id answers
/// with the first one.
pub async fn ask_partner(
    tx: &mut WriteTx,
    caller: &Caller,
    ask: Ask,
    now: DateTime<Utc>,
) -> Result<pb::AskPartnerResponse> {
    let conn = tx.conn();
    let (_, couple_id) = require_couple(conn, &caller.account_id).await?;
    couples::lock_any(conn, &[&couple_id]).await?;
    let sides = couples::sides(conn, &couple_id).await?;
    let me = sides.side_of(&caller.account_id);
    let existing = select(
        conn,
        "opened_by = $1 AND client_id = $2",
        &[&caller.account_id, &ask.client_id],
        1,
    )
    .await?;
    if let Some(c) = existing.first() {
        return Ok(pb::AskPartnerResponse {
            checkin: Some(view(c, me)),
        });
    }
    let prompt = match ask.prompt {
        Some(p) => p,
        None => {
            let today = crate::accounts::local_today(conn, &caller.account_id, now).await?;
            prompts::pick(
                ask.category.unwrap_or(Category::Mood),
                streaks::couple_uuid(&couple_id),
                today,
            )
        }
    };
    let c = open(
        conn,
        &couple_id,
        prompt,
        Some(&caller.account_id),
        Some(&ask.client_id),
        None,
        now,
    )
    .await?;
    tell_both(tx, &c, &sides, now).await?;
    Ok(pb::AskPartnerResponse {
        checkin: Some(view(&c, me)),
    })
}

/// An `AnswerCheckin` call in the group commit.
#[derive(Debug)]
pub struct AnswerJob {
    /// Who answers.
    pub caller: Caller,
    /// The check-in.
    pub checkin_id: String,
    /// The answer (its shape checked against the prompt in the batch).
    pub answer: Answer,
    /// When.
    pub now: DateTime<Utc>,
}

/// Checks an `AnswerCheckin` request's fields (the answer against its prompt is checked when
/// applied).
pub fn check_answer(req: &pb::AnswerCheckinRequest) -> Result<(String, Answer)> {
    Ok((
        validate::id("checkin_id", &req.checkin_id)?,
        answer_from_pb(req.answer.as_ref())?,
    ))
}

/// Applies answers inside the group commit's transaction, after the lock prologue: each one is
/// checked against its check-in (the same answer again is a no-op, a different one is refused,
/// an expired check-in takes none), stored, told to both partners (revealed once both have
/// answered) and counted as a qualifying action for the streak.
pub async fn apply_answers<S: Store>(
    store: &mut S,
    members: &Members,
    jobs: &[AnswerJob],
) -> Result<(
    Vec<Result<pb::AnswerCheckinResponse>>,
    Vec<(String, pb::Event)>,
    Vec<Action>,
)> {
    let mut answers = Vec::with_capacity(jobs.len());
    let mut items = Vec::new();
    let mut actions = Vec::new();
    for job in jobs {
        let (Some(couple), Some(_)) = (
            members.couple_of(&job.caller.account_id),
            members.partner(&job.caller.account_id),
        ) else {
            answers.push(Err(Error::Refused(Refusal::NotPaired)));
            continue;
        };
        let Some(row) = store.checkin(&job.checkin_id, couple).await? else {
            answers.push(Err(Error::NotFound("check-in")));
            continue;
        };
        let mut c = stored_from_row(row)?;
        let Some(sides) = members.sides(couple) else {
            return Err(Error::Corrupt(format!("couple {couple} was not locked")));
        };
        let me = sides.side_of(&job.caller.account_id);
        let outcome = match c.state.answer(me, job.answer.clone(), job.now) {
            Ok(o) => o,
            Err(e) => {
                answers.push(Err(match e {
                    CheckinError::Invalid(e) => Error::invalid("answer", e.to_string()),
                    CheckinError::AlreadyAnswered => Error::Refused(Refusal::AlreadyAnswered),
                    CheckinError::Expired => Error::Refused(Refusal::CheckinExpired),
                }));
                continue;
            }
        };
        if outcome != AnswerOutcome::Unchanged {
            store.save_checkin(&to_row(&c)).await?;
            items.extend(events_for(
                &c,
                sides,
                [members.devices_of(&sides.a), members.devices_of(&sides.b)],
                job.now,
            ));
            actions.push(Action {
                couple_id: couple.to_owned(),
                account_id: job.caller.account_id.clone(),
                now: job.now,
            });
        }
        answers.push(Ok(pb::AnswerCheckinResponse {
            checkin: Some(view(&c, me)),
        }));
    }
    Ok((answers, items, actions))
}

/// Every check-in of a couple, oldest first (the export).
pub async fn all_of_couple(conn: &mut AnyConnection, couple_id: &str) -> Result<Vec<Stored>> {
    select(
        conn,
        "couple_id = $1 ORDER BY opened_at_us, id",
        &[couple_id],
        i64::MAX,
    )
    .await
}

/// Open check-ins first, then the newest.
pub async fn list(
    pool: &AnyPool,
    caller: &Caller,
    req: pb::ListCheckinsRequest,
) -> Result<pb::ListCheckinsResponse> {
    let limit = match req.limit {
        0 => 20,
        1..=MAX_LIST => req.limit,
        _ => return Err(Error::invalid("limit", format!("must be 0-{MAX_LIST}"))),
    };
    let after = match req.page_token.as_str() {
        "" => None,
        token => Some(PageToken::parse(token, req.open_only)?),
    };
    let mut conn = pool.acquire().await?;
    let (_, couple_id) = require_couple(&mut conn, &caller.account_id).await?;
    let sides = couples::sides(&mut conn, &couple_id).await?;
    let me = sides.side_of(&caller.account_id);
    // Keyset order: open first (bucket 0), then the newest, ties by id.
    let bucket = "(CASE WHEN phase = 'open' THEN 0 ELSE 1 END)";
    let only = if req.open_only {
        " AND phase = 'open'"
    } else {
        ""
    };
    let (filter, binds) = match &after {
        None => (
            format!("couple_id = $1{only} ORDER BY {bucket}, opened_at_us DESC, id DESC"),
            vec![couple_id.as_str()],
        ),
        Some(t) => (
            format!(
                "couple_id = $1{only} AND ({bucket} > {b} OR ({bucket} = {b} AND \
                 (opened_at_us < {at} OR (opened_at_us = {at} AND id < $2)))) \
                 ORDER BY {bucket}, opened_at_us DESC, id DESC",
                b = t.bucket,
                at = t.opened_at_us,
            ),
            vec![couple_id.as_str(), t.id.as_str()],
        ),
    };
    let mut page = select(&mut conn, &filter, &binds, i64::from(limit) + 1).await?;
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next_page_token = match page.last() {
        Some(last) if more => PageToken {
            open_only: req.open_only,
            bucket: u8::from(last.state.phase != Phase::Open),
            opened_at_us: to_us(last.state.opened_at),
            id: last.id.clone(),
        }
        .to_string(),
        _ => String::new(),
    };
    Ok(pb::ListCheckinsResponse {
        checkins: page.iter().map(|c| view(c, me)).collect(),
        next_page_token,
    })
}

/// Where a page of `ListCheckins` ended: `c1.<open_only>.<bucket>.<opened_at_us>.<id>`.
#[derive(Debug, PartialEq)]
struct PageToken {
    open_only: bool,
    bucket: u8,
    opened_at_us: i64,
    id: String,
}

impl std::fmt::Display for PageToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "c1.{}.{}.{}.{}",
            u8::from(self.open_only),
            self.bucket,
            self.opened_at_us,
            self.id
        )
    }
}

impl PageToken {
    fn parse(token: &str, open_only: bool) -> Result<PageToken> {
        let bad = || Error::invalid("page_token", "is not a token from this listing");
        if token.len() > 100 {
            return Err(bad());
        }
        let mut parts = token.splitn(5, '.');
        let (Some("c1"), Some(only), Some(bucket), Some(at), Some(id)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let t = PageToken {
            open_only: match only {
                "0" => false,
                "1" => true,
                _ => return Err(bad()),
            },
            bucket: match bucket {
                "0" => 0,
                "1" => 1,
                _ => return Err(bad()),
            },
            opened_at_us: at.parse().map_err(|_| bad())?,
            id: crate::domain::validate::id("page_token", id).map_err(|_| bad())?,
        };
        if t.open_only != open_only {
            return Err(Error::invalid(
                "page_token",
                "was made with a different open_only",
            ));
        }
        Ok(t)
    }
}

/// Open check-ins whose time is up at `now` (up to 200, oldest first), as `(id, couple)`.
pub async fn due(pool: &AnyPool, now: DateTime<Utc>) -> Result<Vec<(String, String)>> {
    crate::jobs::due_in_couples(
        pool,
        "SELECT id, couple_id FROM checkins WHERE phase = 'open' AND expires_at_us <= $1 \
         ORDER BY expires_at_us LIMIT 200",
        now,
    )
    .await
}

/// Expires one check-in whose time is up at `now`; whether it did (another instance, or an
/// answer, may have closed it first).
pub async fn expire(
    tx: &mut WriteTx,
    id: &str,
    couple_id: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let conn = tx.conn();
    couples::lock_any(conn, &[couple_id]).await?;
    let mut c = load(conn, id, couple_id).await?;
    if c.state.expire(now).is_none() {
        return Ok(false);
    }
    // Compare-and-set: another instance may have expired it first.
    let done =
        sqlx::query("UPDATE checkins SET phase = 'expired' WHERE id = $1 AND phase = 'open'")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    let sides = couples::sides(conn, couple_id).await?;
    tell_both(tx, &c, &sides, now).await?;
    Ok(true)
}

#[cfg(test)]
mod page_tests {
    use super::*;

    #[test]
    fn a_page_token_reads_back_and_refuses_what_it_is_not() {
        let t = PageToken {
            open_only: false,
            bucket: 1,
            opened_at_us: 1_780_000_000_000_000,
            id: "01a2373b-356f-74fc-9639-6910a33b2bc9".into(),
        };
        assert_eq!(PageToken::parse(&t.to_string(), false).unwrap(), t);
        assert!(PageToken::parse(&t.to_string(), true).is_err());
        for bad in [
            "x",
            "c1.0.1.12",
            "c1.0.2.12.01a2373b-356f-74fc-9639-6910a33b2bc9",
            "c1.0.1.x.01a2373b-356f-74fc-9639-6910a33b2bc9",
            "c1.0.1.12.' OR 1=1 --",
        ] {
            assert!(PageToken::parse(bad, false).is_err(), "{bad}");
        }
    }
}
