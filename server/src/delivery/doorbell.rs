//! The in-process doorbell: after a commit, the devices that got inbox rows are rung.
//!
//! A plain ring means "read your inbox again". A delivery also leaves the committed events (with
//! their seqs) in the stream's small mailbox, so a stream that is up to date sends them without
//! reading the database; on a gap, an overflowing mailbox or a plain ring it reads the inbox as
//! before. The inbox stays the truth: a lost ring or mailbox loses nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tapline_proto::v1::Event;
use tokio::sync::{Notify, watch};

/// Events a stream's mailbox holds before it falls back to reading the inbox.
const MAILBOX: usize = 32;

/// Committed events waiting for a stream, or a note that it must read its inbox.
#[derive(Debug, Default)]
struct Mailbox {
    events: Vec<Event>,
    stale: bool,
}

/// Why a live stream was ended by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Displaced {
    /// A newer stream for the same device took over.
    ByNewerStream,
    /// The device was signed out.
    Revoked,
}

/// Per-device doorbells for live streams; one live stream per device.
#[derive(Debug, Clone, Default)]
pub struct Doorbell {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    slots: Mutex<HashMap<String, Slot>>,
    generation: AtomicU64,
    /// Rung when a commit left events for a device with no live stream here.
    push_worker: Notify,
    /// Rung when a stream opens or closes.
    changed: Notify,
}

#[derive(Debug)]
struct Slot {
    generation: u64,
    notify: Arc<Notify>,
    mailbox: Arc<Mutex<Mailbox>>,
    end: watch::Sender<Option<Displaced>>,
}

/// A live stream's registration; dropping it unregisters.
#[derive(Debug)]
pub struct Subscription {
    inner: Arc<Inner>,
    device_id: String,
    generation: u64,
    notify: Arc<Notify>,
    mailbox: Arc<Mutex<Mailbox>>,
    end: watch::Receiver<Option<Displaced>>,
}

impl Doorbell {
    /// Registers the live stream of `device_id`, displacing the one it had.
    pub fn subscribe(&self, device_id: &str) -> Subscription {
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        let (end_tx, end_rx) = watch::channel(None);
        let mailbox = Arc::new(Mutex::new(Mailbox::default()));
        let slot = Slot {
            generation,
            notify: notify.clone(),
            mailbox: mailbox.clone(),
            end: end_tx,
        };
        let old = self.lock().insert(device_id.to_owned(), slot);
        if let Some(old) = old {
            let _ = old.end.send(Some(Displaced::ByNewerStream));
        }
        self.inner.changed.notify_one();
        Subscription {
            inner: self.inner.clone(),
            device_id: device_id.to_owned(),
            generation,
            notify,
            mailbox,
            end: end_rx,
        }
    }

    /// Rings each device with a live stream here and leaves it the committed events (`items`
    /// numbered, in seq order per device).
    pub fn deliver(&self, items: Vec<(String, Event)>) {
        let slots = self.lock();
        let mut offline = false;
        for (id, event) in items {
            offline |= !slots.contains_key(&id);
            if let Some(slot) = slots.get(&id) {
                {
                    let mut mb = lock(&slot.mailbox);
                    if mb.events.len() < MAILBOX {
                        mb.events.push(event);
                    } else {
                        mb.stale = true;
                    }
                }
                slot.notify.notify_one();
            }
        }
        drop(slots);
        if offline {
            self.inner.push_worker.notify_one();
        }
    }

    /// Waits until a commit leaves events for a device without a live stream here (returns
    /// at once if one did since the last wait): the push worker's cue.
    pub async fn offline_events(&self) {
        self.inner.push_worker.notified().await;
    }

    /// Waits until a stream opens or closes here (at once if one did since the last wait).
    pub async fn streams_changed(&self) {
        self.inner.changed.notified().await;
    }

    /// The devices with a live stream here.
    pub fn live_devices(&self) -> std::collections::HashSet<String> {
        self.lock().keys().cloned().collect()
    }

    /// Rings the doorbell of each device that has a live stream here.
    pub fn ring<'a>(&self, device_ids: impl IntoIterator<Item = &'a String>) {
        let slots = self.lock();
        for id in device_ids {
            if let Some(slot) = slots.get(id) {
                slot.ring();
            }
        }
    }

    /// Rings every live stream here (after a lost cross-instance doorbell: re-read, lose nothing).
    pub fn ring_all(&self) {
        for slot in self.lock().values() {
            slot.ring();
        }
    }

    /// Ends the live stream of a signed-out device.
    pub fn revoke(&self, device_id: &str) {
        if let Some(slot) = self.lock().remove(device_id) {
            let _ = slot.end.send(Some(Displaced::Revoked));
            self.inner.changed.notify_one();
        }
    }

    /// Number of live streams (for metrics and tests).
    pub fn live_streams(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.inner.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Slot {
    /// "Read your inbox again". Stores a permit when the stream is busy, so a ring during a
    /// read is not lost.
    fn ring(&self) {
        lock(&self.mailbox).stale = true;
        self.notify.notify_one();
    }
}

fn lock(mailbox: &Mutex<Mailbox>) -> std::sync::MutexGuard<'_, Mailbox> {
    mailbox.lock().unwrap_or_else(|e| e.into_inner())
}

impl Subscription {
    /// Waits for the next ring (returns at once if one came since the last wait).
    pub async fn rung(&self) {
        self.notify.notified().await;
    }

    /// Takes the delivered events; `None` when the inbox must be read instead (a plain ring
    /// or an overflow since the last take).
    pub fn take(&self) -> Option<Vec<Event>> {
        let mut mb = lock(&self.mailbox);
        let events = std::mem::take(&mut mb.events);
        if std::mem::take(&mut mb.stale) {
            None
        } else {
            Some(events)
        }
    }

    /// Waits until this stream is displaced or revoked, and says why.
    pub async fn ended(&self) -> Displaced {
        let mut end = self.end.clone();
        match end.wait_for(Option::is_some).await {
            Ok(reason) => reason.unwrap_or(Displaced::ByNewerStream),
            // The slot was dropped without a reason: treat it as displaced.
            Err(_) => Displaced::ByNewerStream,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut slots = self.inner.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots
            .get(&self.device_id)
            .is_some_and(|s| s.generation == self.generation)
        {
            slots.remove(&self.device_id);
        }
        drop(slots);
        self.inner.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ring_before_the_wait_is_kept() {
        let bell = Doorbell::default();
        let sub = bell.subscribe("d1");
        bell.ring([&"d1".to_string()]);
        tokio::time::timeout(std::time::Duration::from_secs(5), sub.rung())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_new_stream_displaces_the_old_and_dropping_the_old_keeps_the_new() {
        let bell = Doorbell::default();
        let first = bell.subscribe("d1");
        let second = bell.subscribe("d1");
        assert_eq!(first.ended().await, Displaced::ByNewerStream);
        drop(first);
        assert_eq!(bell.live_streams(), 1, "the newer registration stays");
        drop(second);
        assert_eq!(bell.live_streams(), 0);
    }

    #[tokio::test]
    async fn deliveries_wait_in_the_mailbox_until_it_overflows() {
        let bell = Doorbell::default();
        let sub = bell.subscribe("d1");
        let event = |seq| Event {
            seq,
            ..Default::default()
        };
        bell.deliver(vec![("d1".into(), event(1)), ("d2".into(), event(1))]);
        sub.rung().await;
        let got: Vec<u64> = sub.take().unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(got, [1]);
        let many: Vec<_> = (2..=40).map(|s| ("d1".to_string(), event(s))).collect();
        bell.deliver(many);
        assert!(sub.take().is_none(), "an overflow means: read the inbox");
        bell.deliver(vec![("d1".into(), event(41))]);
        bell.ring([&"d1".to_string()]);
        assert!(sub.take().is_none(), "a plain ring means: read the inbox");
        assert_eq!(sub.take().unwrap().len(), 0);
    }

    #[tokio::test]
    async fn revoking_ends_the_stream() {
        let bell = Doorbell::default();
        let sub = bell.subscribe("d1");
        bell.revoke("d1");
        assert_eq!(sub.ended().await, Displaced::Revoked);
    }
}
