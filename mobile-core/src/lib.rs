//! The shared Tapline client core, embedded by the iOS, watchOS, Android and Wear OS apps
//! through uniffi (and used directly by the `tapline` terminal client).
//!
//! - [`TaplineClient`]: account, couple and settings calls; taps through an offline outbox;
//!   event subscriptions with a foreign [`EventListener`]; `sync_now` for push-woken watches;
//!   a no-network [`Glance`]; streaks, check-ins (answers queued offline like taps),
//!   routines, spaces ("I need a moment"), together time and the next time we meet, the
//!   deeper questions, the reconnect plan, moments kept for both and the weekly recap.
//! - Two transports: native gRPC over HTTP/2, or gRPC-Web through the host's [`HttpTransport`].
//! - [`haptics`]: one pattern format, rendered for each platform as well as it can play it:
//!   Core Haptics (iPhone), amplitude or on/off waveforms (Android, Wear OS), `WKHapticType`
//!   steps (Apple Watch), each with its fidelity.

uniffi::setup_scaffolding!();

mod api;
mod engine;
mod error;
mod glance;
pub mod haptics;
mod model;
mod rituals;
mod store;
mod transport;

pub use api::{EventListener, Subscription, TaplineClient};
pub use error::{RefusalCode, TaplineError};
pub use glance::{Glance, MeetingGlance, RecapGlance};
pub use model::*;
pub use rituals::answers::resolve_answer;
pub use transport::HttpTransport;
