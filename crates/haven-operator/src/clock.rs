//! Time is an input: controllers ask a clock, and the lifecycle functions take `now` as a
//! parameter, so they are tested at any instant without waiting.

use chrono::{DateTime, Utc};

/// Where controllers get "now" from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
