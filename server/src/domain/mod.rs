//! Pure domain logic: codes and tokens, input validation, quiet hours. No I/O here.

pub mod codes;
pub mod quiet;
pub mod taps;
pub mod validate;
