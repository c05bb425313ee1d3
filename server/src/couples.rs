//! Couples: membership, the partner, and the lock order every write transaction follows.
//!
//! # Lock order (PostgreSQL)
//!
//! Every transaction that writes takes its row locks in this order, and only then writes:
//!
//! 1. the **couple** rows it touches, `FOR UPDATE`, in id order;
//! 2. the **device** rows of those couples' members (and of any other device it will write),
//!    `FOR UPDATE`, in id order;
//! 3. then anything else (taps, receipts, inbox rows, streak rows, check-ins, routines), whose
//!    foreign keys take `KEY SHARE` locks only on rows locked in steps 1-2 or on rows nobody
//!    updates (accounts' keys, taps).
//!
//! A tap's insert takes a `KEY SHARE` lock on its sender's device row through the foreign key;
//! taking it before the ordered device locks of step 2 is what deadlocked writers before. The
//! hot batch takes steps 1-2 in [`prologue`]; the group commit's other transactions in
//! [`lock_any`]. On SQLite a write transaction holds the database's one write lock, and the
//! group commit is its only writer, so there is nothing to order.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use crate::accounts;
use crate::domain::streaks::Side;
use crate::error::{Error, Refusal, Result};
use crate::store::{AccountRow, Store};

/// The two members of a couple: side A is `couples.account_a`.
#[derive(Debug, Clone)]
pub struct Sides {
    /// The couple.
    pub couple_id: String,
    /// Side A's account.
    pub a: String,
    /// Side B's account.
    pub b: String,
}

impl Sides {
    /// The side of `account_id`.
    pub fn side_of(&self, account_id: &str) -> Side {
        if self.a == account_id {
            Side::A
        } else {
            Side::B
        }
    }

    /// The account on `side`.
    pub fn account(&self, side: Side) -> &str {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }
}

/// Loads the members of a couple.
pub async fn sides(conn: &mut AnyConnection, couple_id: &str) -> Result<Sides> {
    let row = sqlx::query("SELECT account_a, account_b FROM couples WHERE id = $1")
        .bind(couple_id)
        .fetch_one(conn)
        .await?;
    Ok(Sides {
        couple_id: couple_id.to_owned(),
        a: row.try_get("account_a")?,
        b: row.try_get("account_b")?,
    })
}

/// The caller's account and couple id, or [`Refusal::NotPaired`].
pub async fn require_couple(
    conn: &mut AnyConnection,
    account_id: &str,
) -> Result<(AccountRow, String)> {
    let me = accounts::load(conn, account_id).await?;
    match me.couple_id.clone() {
        Some(c) => Ok((me, c)),
        None => Err(Error::Refused(Refusal::NotPaired)),
    }
}

/// The other member of `couple_id`.
pub async fn partner(conn: &mut AnyConnection, couple_id: &str, me: &str) -> Result<AccountRow> {
    accounts::load_where(conn, "couple_id = $1 AND id <> $2", &[couple_id, me])
        .await?
        .ok_or_else(|| Error::Corrupt(format!("couple {couple_id} has no partner")))
}

/// Takes steps 1-2 of the lock order on the group commit's general connection (PostgreSQL;
/// nothing on SQLite): `couples` in id order, then every active device of their members in id
/// order, so the events the transaction appends later take no new locks.
pub async fn lock_any(conn: &mut AnyConnection, couples: &[&str]) -> Result<()> {
    if crate::db::is_sqlite(conn) || couples.is_empty() {
        return Ok(());
    }
    let mut couples = couples.to_vec();
    couples.sort_unstable();
    couples.dedup();
    for c in &couples {
        sqlx::query("SELECT id FROM couples WHERE id = $1 FOR UPDATE")
            .bind(*c)
            .execute(&mut *conn)
            .await?;
    }
    let mut devices: Vec<String> = Vec::new();
    for c in &couples {
        let rows = sqlx::query(
            "SELECT d.id FROM devices d JOIN accounts a ON a.id = d.account_id \
             WHERE a.couple_id = $1 AND d.revoked_at_us IS NULL",
        )
        .bind(*c)
        .fetch_all(&mut *conn)
        .await?;
        for r in &rows {
            devices.push(r.try_get("id")?);
        }
    }
    devices.sort_unstable();
    devices.dedup();
    for d in &devices {
        sqlx::query("SELECT id FROM devices WHERE id = $1 FOR UPDATE")
            .bind(d)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The accounts a batch touches, with their partners and devices, after steps 1-2 of the lock
/// order.
#[derive(Debug, Default)]
pub struct Members {
    /// Every account: the callers and their current partners.
    pub accounts: HashMap<String, AccountRow>,
    /// Each account's active devices, in id order.
    pub devices: HashMap<String, Vec<String>>,
    /// The locked couples' sides.
    pub couples: HashMap<String, Sides>,
}

impl Members {
    /// `account`'s current partner.
    pub fn partner(&self, account: &str) -> Option<&AccountRow> {
        let me = self.accounts.get(account)?;
        let couple = me.couple_id.as_ref()?;
        self.accounts
            .values()
            .find(|p| p.id != me.id && p.couple_id.as_ref() == Some(couple))
    }

    /// `account`'s active devices.
    pub fn devices_of(&self, account: &str) -> &[String] {
        self.devices.get(account).map_or(&[], Vec::as_slice)
    }

    /// The sides of a locked couple.
    pub fn sides(&self, couple: &str) -> Option<&Sides> {
        self.couples.get(couple)
    }

    /// The couple of `account`, if paired.
    pub fn couple_of(&self, account: &str) -> Option<&str> {
        self.accounts.get(account)?.couple_id.as_deref()
    }
}

/// Steps 1-2 of the lock order for a batch whose callers are `accounts`: finds their couples,
/// locks them in id order, reads every member (now stable), then locks every member's active
/// devices in id order.
pub async fn prologue<S: Store>(store: &mut S, mut accounts: Vec<String>) -> Result<Members> {
    accounts.sort_unstable();
    accounts.dedup();
    let mut couples: Vec<String> = store
        .couples_of(&accounts)
        .await?
        .into_iter()
        .filter_map(|(_, c)| c)
        .collect();
    couples.sort_unstable();
    couples.dedup();
    let mut members = Members::default();
    for c in store.lock_couples(&couples).await? {
        let sides = Sides {
            couple_id: c.id.clone(),
            a: c.account_a,
            b: c.account_b,
        };
        members.couples.insert(c.id, sides);
    }
    for a in store.members(&couples).await? {
        members.accounts.insert(a.id.clone(), a);
    }
    let unpaired: Vec<String> = accounts
        .iter()
        .filter(|a| !members.accounts.contains_key(*a))
        .cloned()
        .collect();
    for a in store.accounts(&unpaired).await? {
        members.accounts.insert(a.id.clone(), a);
    }
    let mut ids: Vec<String> = members.accounts.keys().cloned().collect();
    ids.sort_unstable();
    for (device, account) in store.lock_devices(&ids).await? {
        members.devices.entry(account).or_default().push(device);
    }
    for ds in members.devices.values_mut() {
        ds.sort_unstable();
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str, couple: Option<&str>) -> AccountRow {
        AccountRow {
            id: id.into(),
            display_name: id.into(),
            zone: chrono_tz::UTC,
            quiet: None,
            receipts_enabled: true,
            couple_id: couple.map(Into::into),
            created_at_us: 0,
        }
    }

    #[test]
    fn a_partner_is_the_other_member_of_the_same_couple() {
        let mut m = Members::default();
        for a in [
            account("a", Some("c1")),
            account("b", Some("c1")),
            account("x", Some("c2")),
            account("solo", None),
        ] {
            m.accounts.insert(a.id.clone(), a);
        }
        assert_eq!(m.partner("a").map(|p| p.id.as_str()), Some("b"));
        assert_eq!(m.partner("b").map(|p| p.id.as_str()), Some("a"));
        assert!(m.partner("x").is_none(), "partner not loaded");
        assert!(m.partner("solo").is_none());
        assert_eq!(m.couple_of("a"), Some("c1"));
        assert!(m.devices_of("a").is_empty());
    }
}
