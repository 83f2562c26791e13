//! Virtual time as plain values.
//!
//! The deciding code never reads a clock: the driver passes an [`Instant`] in
//! with every input, as smoltcp does in its `time` module. Both types count
//! nanoseconds in a `u64` (about 584 years), and all arithmetic saturates, so a
//! bad input can make a result wrong but never panics.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A point on the driver's clock, in nanoseconds since an arbitrary origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    nanos: u64,
}

/// A span of time in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    nanos: u64,
}

impl Instant {
    /// The origin of the clock.
    pub const ZERO: Instant = Instant { nanos: 0 };

    /// An instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant { nanos }
    }

    /// An instant `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Instant {
        Instant::from_nanos(micros.saturating_mul(1_000))
    }

    /// An instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Instant {
        Instant::from_nanos(millis.saturating_mul(1_000_000))
    }

    /// An instant `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Instant {
        Instant::from_nanos(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the origin.
    pub const fn total_nanos(self) -> u64 {
        self.nanos
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration { nanos: 0 };

    /// A duration of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Duration {
        Duration { nanos }
    }

    /// A duration of `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Duration {
        Duration::from_nanos(micros.saturating_mul(1_000))
    }

    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Duration {
        Duration::from_nanos(millis.saturating_mul(1_000_000))
    }

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Duration {
        Duration::from_nanos(secs.saturating_mul(1_000_000_000))
    }

    /// A duration from fractional milliseconds, rounded to the nearest
    /// nanosecond; negative and NaN inputs give zero, huge ones saturate.
    pub fn from_millis_f64(millis: f64) -> Duration {
        // `as` from f64 to u64 saturates and maps NaN to 0, and a product with
        // 1e6 is correctly rounded IEEE arithmetic, so this is the same on
        // every platform.
        Duration::from_nanos((millis * 1_000_000.0).round() as u64)
    }

    /// Whole nanoseconds.
    pub const fn total_nanos(self) -> u64 {
        self.nanos
    }

    /// Fractional milliseconds, for reports and statistics.
    pub fn as_millis_f64(self) -> f64 {
        self.nanos as f64 / 1_000_000.0
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant::from_nanos(self.nanos.saturating_add(rhs.nanos))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant::from_nanos(self.nanos.saturating_sub(rhs.nanos))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl Add<Duration> for Duration {
    type Output = Duration;
    fn add(self, rhs: Duration) -> Duration {
        Duration::from_nanos(self.nanos.saturating_add(rhs.nanos))
    }
}

impl Sub<Duration> for Duration {
    type Output = Duration;
    fn sub(self, rhs: Duration) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(rhs.nanos))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}s", self.nanos / 1_000_000_000, self.nanos % 1_000_000_000)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}s", self.nanos / 1_000_000_000, self.nanos % 1_000_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let late = Instant::from_nanos(u64::MAX);
        assert_eq!(late + Duration::from_secs(1), late);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::ZERO - late, Duration::ZERO);
    }

    #[test]
    fn float_millis_round_and_clamp() {
        assert_eq!(Duration::from_millis_f64(1.5).total_nanos(), 1_500_000);
        assert_eq!(Duration::from_millis_f64(-3.0), Duration::ZERO);
        assert_eq!(Duration::from_millis_f64(f64::NAN), Duration::ZERO);
        assert_eq!(Instant::from_millis(1500).to_string(), "1.500000000s");
    }
}
