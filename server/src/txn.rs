//! A transaction of the group commit's general connection: where the few, rare writes run
//! (accounts, devices, codes, pairing, settings, check-in asks and expiries, routines), in
//! the writer's thread, one after another, each inside its own savepoint. What a job tells
//! devices is appended in the same transaction, and rung only after the commit.

use std::future::Future;
use std::pin::Pin;

use sqlx::AnyConnection;
use tapline_proto::v1::Event;

use crate::error::Result;

/// The future a [`TxFn`] returns: it runs on the writer's own thread, so it need not be `Send`.
pub type TxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + 'a>>;

/// A job for the writer's general connection: given the open transaction, does its reads and
/// writes and says what devices must be told.
pub type TxFn<T> = Box<dyn for<'a> FnOnce(&'a mut WriteTx) -> TxFuture<'a, T> + Send>;

/// One job's view of the open transaction.
pub struct WriteTx {
    conn: AnyConnection,
    items: Vec<(String, Event)>,
    revoked: Vec<String>,
}

impl WriteTx {
    /// A job's transaction over `conn` (inside the writer's open transaction and savepoint).
    pub(crate) fn new(conn: AnyConnection) -> WriteTx {
        WriteTx {
            conn,
            items: Vec::new(),
            revoked: Vec::new(),
        }
    }

    /// The connection, inside the open transaction.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    /// Events to append to devices' inboxes in this transaction, rung after its commit.
    pub fn tell(&mut self, items: impl IntoIterator<Item = (String, Event)>) {
        self.items.extend(items);
    }

    /// A device signed out by this transaction: after commit its token is forgotten and its
    /// live stream ended, here and (through the cluster doorbell) on other instances.
    pub fn revoked(&mut self, device_id: String) {
        self.revoked.push(device_id);
    }

    /// What the job asked for, taken when it succeeds.
    pub(crate) fn take(&mut self) -> (Vec<(String, Event)>, Vec<String>) {
        (
            std::mem::take(&mut self.items),
            std::mem::take(&mut self.revoked),
        )
    }

    /// The connection back.
    pub(crate) fn into_conn(self) -> AnyConnection {
        self.conn
    }
}
