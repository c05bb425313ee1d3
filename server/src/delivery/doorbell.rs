//! The in-process doorbell: after a commit, the devices that got inbox rows are rung. A ring only
//! means "read your inbox again"; it never carries an event, so a lost ring loses nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};

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
}

#[derive(Debug)]
struct Slot {
    generation: u64,
    notify: Arc<Notify>,
    end: watch::Sender<Option<Displaced>>,
}

/// A live stream's registration; dropping it unregisters.
#[derive(Debug)]
pub struct Subscription {
    inner: Arc<Inner>,
    device_id: String,
    generation: u64,
    notify: Arc<Notify>,
    end: watch::Receiver<Option<Displaced>>,
}

impl Doorbell {
    /// Registers the live stream of `device_id`, displacing the one it had.
    pub fn subscribe(&self, device_id: &str) -> Subscription {
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        let (end_tx, end_rx) = watch::channel(None);
        let slot = Slot {
            generation,
            notify: notify.clone(),
            end: end_tx,
        };
        let old = self.lock().insert(device_id.to_owned(), slot);
        if let Some(old) = old {
            let _ = old.end.send(Some(Displaced::ByNewerStream));
        }
        Subscription {
            inner: self.inner.clone(),
            device_id: device_id.to_owned(),
            generation,
            notify,
            end: end_rx,
        }
    }

    /// Rings the doorbell of each device that has a live stream here.
    pub fn ring<'a>(&self, device_ids: impl IntoIterator<Item = &'a String>) {
        let slots = self.lock();
        for id in device_ids {
            if let Some(slot) = slots.get(id) {
                // Stores a permit when the stream is busy, so a ring during a read is not lost.
                slot.notify.notify_one();
            }
        }
    }

    /// Rings every live stream here (after a lost cross-instance doorbell: re-read, lose nothing).
    pub fn ring_all(&self) {
        for slot in self.lock().values() {
            slot.notify.notify_one();
        }
    }

    /// Ends the live stream of a signed-out device.
    pub fn revoke(&self, device_id: &str) {
        if let Some(slot) = self.lock().remove(device_id) {
            let _ = slot.end.send(Some(Displaced::Revoked));
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

impl Subscription {
    /// Waits for the next ring (returns at once if one came since the last wait).
    pub async fn rung(&self) {
        self.notify.notified().await;
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
    async fn revoking_ends_the_stream() {
        let bell = Doorbell::default();
        let sub = bell.subscribe("d1");
        bell.revoke("d1");
        assert_eq!(sub.ended().await, Displaced::Revoked);
    }
}
