//! End-to-end tests: every scenario runs against SQLite and PostgreSQL with the real server on
//! an ephemeral port, driven over gRPC by partners with phones and watches.

mod contract;
mod delivery;
mod faults;
mod leaving;
mod limits;
mod metrics;
mod moments;
mod pairing;
mod providers;
mod push;
mod questions;
mod reconnect;
mod retention;
mod rituals;
mod security;
mod server;
mod space;
mod taps;
mod tls;
mod together;
mod travel;
mod webpush;
