//! Parameters of one link direction, in the units of ToMaTo's attributes.
//!
//! [`DirectionParams`] maps 1:1 onto a connection's `*_to`/`*_from`
//! attributes plus the wirefilter knobs ToMaTo lacks (burst loss, noise, MTU,
//! byte queue, reordering). [`ParamsUpdate`] carries a live change: only the
//! fields it sets change. Validation happens here, once, so the per-frame
//! code can trust its inputs.

use thiserror::Error;

use crate::dist::Distribution;

/// The longest delay or jitter accepted, in ms (one hour): long enough for any
/// experiment, short enough that nanosecond arithmetic cannot overflow.
pub const MAX_DELAY_MS: f64 = 3_600_000.0;

/// The bandwidth assumed when sizing an automatic queue for an unlimited link:
/// ToMaTo's largest `bandwidth` value, 1 Gbit/s.
const AUTO_QUEUE_UNLIMITED_KBIT: f64 = 1_000_000.0;

/// Everything that shapes one direction of a link.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectionParams {
    /// Rate in kbit/s (1 kbit = 1000 bit, as tc's `Kbit`); 0 = unlimited.
    pub bandwidth_kbit: u32,
    /// Bytes that may leave at once, unpaced, after an idle spell: the
    /// bucket of a token-bucket rate limiter (ToMaTo's `tbf` buffer); 0 =
    /// every frame paced at the rate (wirefilter).
    pub burst_bytes: u32,
    /// Queue limit in frames; 0 = automatic (ToMaTo's netem `limit` rule).
    pub queue_frames: u32,
    /// Queue limit in bytes (wirefilter `chanbufsize`); 0 = none.
    pub queue_bytes: u32,
    /// Base one-way delay in ms.
    pub delay_ms: f64,
    /// Jitter in ms; its meaning depends on `distribution`.
    pub jitter_ms: f64,
    /// Shape of the jitter.
    pub distribution: Distribution,
    /// Loss probability in percent.
    pub lossratio_percent: f64,
    /// Mean loss burst length in frames (wirefilter `lostburst`); 0 =
    /// independent loss, otherwise at least 1.
    pub lossburst_frames: f64,
    /// Probability in percent that a frame is sent twice.
    pub duplicate_percent: f64,
    /// Probability in percent that one random bit of a frame is flipped.
    pub corrupt_percent: f64,
    /// Damaged bits per MiB of traffic (wirefilter `noise`).
    pub noise_bits_per_mbyte: f64,
    /// Largest frame, in bytes, that passes; 0 = no limit.
    pub mtu: u32,
    /// Percent of frames that skip the delay when there is one (netem
    /// `reorder`).
    pub reorder_percent: f64,
    /// Seed of every random decision of this direction.
    pub seed: u64,
}

/// Calls macro `$apply` with every field a [`ParamsUpdate`] can set, so
/// the list is written once for applying and for diffing.
macro_rules! with_live_fields {
    ($apply:ident) => {
        $apply!(
            bandwidth_kbit,
            burst_bytes,
            queue_frames,
            queue_bytes,
            delay_ms,
            jitter_ms,
            distribution,
            lossratio_percent,
            lossburst_frames,
            duplicate_percent,
            corrupt_percent,
            noise_bits_per_mbyte,
            mtu,
            reorder_percent,
            seed
        )
    };
}

impl DirectionParams {
    /// An ideal link: no rate limit, delay, loss or damage.
    pub fn ideal(seed: u64) -> DirectionParams {
        DirectionParams {
            bandwidth_kbit: 0,
            burst_bytes: 0,
            queue_frames: 0,
            queue_bytes: 0,
            delay_ms: 0.0,
            jitter_ms: 0.0,
            distribution: Distribution::Uniform,
            lossratio_percent: 0.0,
            lossburst_frames: 0.0,
            duplicate_percent: 0.0,
            corrupt_percent: 0.0,
            noise_bits_per_mbyte: 0.0,
            mtu: 0,
            reorder_percent: 0.0,
            seed,
        }
    }

    /// Checks every value, naming the first bad one.
    pub fn validate(&self) -> Result<(), ParamsError> {
        check_range("delay_ms", self.delay_ms, 0.0, MAX_DELAY_MS)?;
        check_range("jitter_ms", self.jitter_ms, 0.0, MAX_DELAY_MS)?;
        check_range("lossratio_percent", self.lossratio_percent, 0.0, 100.0)?;
        check_range("duplicate_percent", self.duplicate_percent, 0.0, 100.0)?;
        check_range("corrupt_percent", self.corrupt_percent, 0.0, 100.0)?;
        check_range("reorder_percent", self.reorder_percent, 0.0, 100.0)?;
        check_range("noise_bits_per_mbyte", self.noise_bits_per_mbyte, 0.0, f64::MAX)?;
        check_range("lossburst_frames", self.lossburst_frames, 0.0, f64::MAX)?;
        // The chance of leaving the bad state is 1/B, which must be a
        // probability.
        if self.lossburst_frames > 0.0 && self.lossburst_frames < 1.0 {
            return Err(ParamsError::BurstTooShort { value: self.lossburst_frames });
        }
        Ok(())
    }

    /// The queue limit in frames actually applied: `queue_frames`, or when
    /// that is 0 ToMaTo's rule `max(ceil(max(delay, jitter/2) · bw / 2000),
    /// 10)` with delay in ms and bw in kbit/s. An unlimited link is sized as
    /// if it ran at 1 Gbit/s, so the limit stays finite.
    pub fn effective_queue_frames(&self) -> u32 {
        if self.queue_frames != 0 {
            return self.queue_frames;
        }
        let bw = if self.bandwidth_kbit == 0 { AUTO_QUEUE_UNLIMITED_KBIT } else { f64::from(self.bandwidth_kbit) };
        let frames = (self.delay_ms.max(self.jitter_ms / 2.0) * bw / 2000.0).ceil();
        // `as` saturates, so an absurd product caps at u32::MAX.
        (frames as u32).max(10)
    }

    /// A copy with the fields `update` sets replaced.
    pub fn updated(&self, update: &ParamsUpdate) -> DirectionParams {
        let mut p = self.clone();
        macro_rules! take {
            ($($field:ident),*) => {
                $(if let Some(value) = update.$field { p.$field = value; })*
            };
        }
        with_live_fields!(take);
        p
    }
}

/// A live change: `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamsUpdate {
    /// New rate in kbit/s.
    pub bandwidth_kbit: Option<u32>,
    /// New token bucket size in bytes.
    pub burst_bytes: Option<u32>,
    /// New queue limit in frames.
    pub queue_frames: Option<u32>,
    /// New queue limit in bytes.
    pub queue_bytes: Option<u32>,
    /// New delay in ms.
    pub delay_ms: Option<f64>,
    /// New jitter in ms.
    pub jitter_ms: Option<f64>,
    /// New jitter distribution.
    pub distribution: Option<Distribution>,
    /// New loss percentage.
    pub lossratio_percent: Option<f64>,
    /// New mean loss burst length.
    pub lossburst_frames: Option<f64>,
    /// New duplication percentage.
    pub duplicate_percent: Option<f64>,
    /// New corruption percentage.
    pub corrupt_percent: Option<f64>,
    /// New noise in bits per MiB.
    pub noise_bits_per_mbyte: Option<f64>,
    /// New MTU.
    pub mtu: Option<u32>,
    /// New reorder percentage.
    pub reorder_percent: Option<f64>,
    /// New seed: restarts every random stream.
    pub seed: Option<u64>,
}

impl ParamsUpdate {
    /// The change that turns `old` into `new`: only the fields that differ,
    /// so frames in flight and random streams of the rest are kept.
    pub fn between(old: &DirectionParams, new: &DirectionParams) -> ParamsUpdate {
        let mut u = ParamsUpdate::default();
        macro_rules! diff {
            ($($field:ident),*) => {
                $(if old.$field != new.$field { u.$field = Some(new.$field.clone()); })*
            };
        }
        with_live_fields!(diff);
        u
    }

    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == ParamsUpdate::default()
    }
}

/// A parameter outside its allowed range.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ParamsError {
    /// A value is NaN, infinite or outside `[min, max]`.
    #[error("{name} = {value} is outside [{min}, {max}]")]
    OutOfRange {
        /// The field name.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// The smallest allowed value.
        min: f64,
        /// The largest allowed value.
        max: f64,
    },
    /// A mean burst length between 0 and 1 frames.
    #[error("lossburst_frames = {value} must be 0 (independent loss) or at least 1")]
    BurstTooShort {
        /// The rejected value.
        value: f64,
    },
}

fn check_range(name: &'static str, value: f64, min: f64, max: f64) -> Result<(), ParamsError> {
    // `contains` is false for NaN, and max < infinity rejects infinities.
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ParamsError::OutOfRange { name, value, min, max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_queue_follows_tomato_rule() {
        let mut p = DirectionParams::ideal(0);
        p.bandwidth_kbit = 10_000;
        assert_eq!(p.effective_queue_frames(), 10);
        p.delay_ms = 50.0;
        // ceil(50 * 10000 / 2000) = 250.
        assert_eq!(p.effective_queue_frames(), 250);
        p.jitter_ms = 200.0;
        // max(50, 100) = 100 -> 500.
        assert_eq!(p.effective_queue_frames(), 500);
        p.queue_frames = 7;
        assert_eq!(p.effective_queue_frames(), 7);
        let mut unlimited = DirectionParams::ideal(0);
        unlimited.delay_ms = 10.0;
        assert_eq!(unlimited.effective_queue_frames(), 5_000);
    }

    #[test]
    fn update_between_carries_only_the_differences() {
        let old = DirectionParams::ideal(3);
        let mut new = old.clone();
        assert!(ParamsUpdate::between(&old, &new).is_empty());
        new.delay_ms = 10.0;
        new.lossratio_percent = 5.0;
        let u = ParamsUpdate::between(&old, &new);
        assert_eq!(u, ParamsUpdate { delay_ms: Some(10.0), lossratio_percent: Some(5.0), ..ParamsUpdate::default() });
        assert_eq!(old.updated(&u), new);
    }

    #[test]
    fn validation_names_the_field_and_value() {
        let mut p = DirectionParams::ideal(0);
        p.lossratio_percent = 101.0;
        assert_eq!(
            p.validate(),
            Err(ParamsError::OutOfRange { name: "lossratio_percent", value: 101.0, min: 0.0, max: 100.0 })
        );
        p.lossratio_percent = 1.0;
        p.delay_ms = f64::NAN;
        assert!(matches!(p.validate(), Err(ParamsError::OutOfRange { name: "delay_ms", .. })));
        p.delay_ms = 1.0;
        p.lossburst_frames = 0.5;
        assert_eq!(p.validate(), Err(ParamsError::BurstTooShort { value: 0.5 }));
        p.lossburst_frames = 3.0;
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn update_changes_only_given_fields() {
        let p = DirectionParams::ideal(9);
        let q = p.updated(&ParamsUpdate { delay_ms: Some(20.0), ..ParamsUpdate::default() });
        assert_eq!(q.delay_ms, 20.0);
        assert_eq!(q.seed, 9);
        assert_eq!(q, DirectionParams { delay_ms: 20.0, ..p });
    }
}
