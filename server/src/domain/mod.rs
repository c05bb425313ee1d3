//! Pure domain logic: codes and tokens, input validation, quiet hours. No I/O here.

pub mod checkins;
pub mod codes;
pub mod moments;
pub mod prompts;
pub mod push;
pub mod questions;
pub mod quiet;
pub mod reconnect;
pub mod schedule;
pub mod space;
pub mod streaks;
pub mod taps;
pub mod together;
pub mod validate;
pub mod zones;
