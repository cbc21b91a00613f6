//! Validation of upstream timeouts: a pool's `connect_timeout`, `first_byte_timeout` and
//! `idle_timeout`, and the same three keys on routes and rules as overrides. Part of the
//! raw → model pipeline (see `validate`).

use std::time::Duration;

use super::duration::{self, Zero};
use super::error::Collector;
use super::model::{TimeoutOverrides, Timeouts};
use super::raw::S;

pub const DEFAULT: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    // Tool calls answered with plain JSON may run for minutes before the header comes.
    first_byte: Duration::from_secs(300),
    idle: Duration::from_secs(3600),
};

/// The three raw timeout keys of one table.
pub struct RawTimeouts<'a> {
    pub connect: Option<&'a S<String>>,
    pub first_byte: Option<&'a S<String>>,
    pub idle: Option<&'a S<String>>,
}

pub fn pool(raw: RawTimeouts<'_>, prefix: &str, c: &mut Collector<'_>) -> Timeouts {
    DEFAULT.with(&overrides(raw, prefix, c))
}

pub fn overrides(raw: RawTimeouts<'_>, prefix: &str, c: &mut Collector<'_>) -> TimeoutOverrides {
    TimeoutOverrides {
        connect: one(raw.connect, &format!("{prefix}.connect_timeout"), c),
        first_byte: one(raw.first_byte, &format!("{prefix}.first_byte_timeout"), c),
        idle: one(raw.idle, &format!("{prefix}.idle_timeout"), c),
    }
}

/// A zero timeout would fail every request.
fn one(s: Option<&S<String>>, field: &str, c: &mut Collector<'_>) -> Option<Duration> {
    duration::field(c, s, field, Zero::Refused)
}
