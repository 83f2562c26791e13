//! From a link's model attributes to the parameters of its two directions.
//!
//! This is the one place that knows how ToMaTo's attribute names map onto
//! [`netem::DirectionParams`], and which way `_to` and `_from` point: for a
//! connection `between: [a, b]`, `*_from` shapes frames a→b and `*_to`
//! frames b→a (see `model::kinds::common::link_attrs`). Values are checked
//! against the `bridge` kind's schema first, and attributes not given take
//! the schema's defaults, so `tomato dataplane link` and the hostmanager
//! agree with what the model documents.

use model::Attrs;
use netem::{DirectionParams, Distribution};
use serde_json::Value;

/// Attributes the data plane does not act on (capture is another crate's).
const IGNORED: &[&str] = &["capturing", "capture_filter", "capture_mode"];

/// The seed of the b→a direction, derived from the link's seed so one seed
/// reproduces both directions but they draw different streams.
pub fn reverse_seed(seed: u64) -> u64 {
    // SplitMix64's increment: an odd constant, so the map is a bijection.
    seed.wrapping_add(0x9e37_79b9_7f4a_7c15)
}

/// A seed from the OS's randomness (std seeds `RandomState` from it), for
/// `seed: null`, kept within the model's range (53 bits).
pub fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::sys::now_nanos());
    h.finish() & ((1 << 53) - 1)
}

/// Maps a link's attributes to `(a→b, b→a)` parameters.
///
/// Checks each given attribute against the `bridge` schema and fills in the
/// defaults. `emulation: false` gives ideal directions. The link's seed is
/// `a_to_b.seed` (from `seed`, or [`fresh_seed`] when it is null or absent);
/// `b_to_a.seed` is [`reverse_seed`] of it. Errors name the attribute and
/// the allowed values.
pub fn link_params_from_attrs(attrs: &Attrs) -> Result<(DirectionParams, DirectionParams), String> {
    let kind = model::registry().get("bridge").ok_or("the model has no `bridge` kind")?;
    let mut problems = Vec::new();
    model::validate::check_attrs(&kind.attrs, "bridge", attrs, &model::Place::Topology, &mut problems);
    if !problems.is_empty() {
        return Err(problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "));
    }
    let value = |name: &str| -> Value {
        attrs.get(name).cloned().or_else(|| kind.attr(name).map(|a| a.default.clone())).unwrap_or(Value::Null)
    };
    let seed = value("seed").as_u64().unwrap_or_else(fresh_seed);
    let emulation = value("emulation").as_bool().unwrap_or(true);
    let direction = |suffix: &str, seed: u64| -> Result<DirectionParams, String> {
        let mut p = DirectionParams::ideal(seed);
        if !emulation {
            return Ok(p);
        }
        let num = |base: &str| value(&format!("{base}_{suffix}")).as_f64().unwrap_or(0.0);
        let int = |base: &str| -> Result<u32, String> {
            let v = value(&format!("{base}_{suffix}"));
            v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| format!("{base}_{suffix}: {v} is not a count"))
        };
        p.bandwidth_kbit = int("bandwidth")?;
        // ToMaTo's tbf: a bucket of 25 ms at the rate, at least 1540 bytes,
        // so a burst (a flood of ARP requests) passes at once as it does there.
        p.burst_bytes = if p.bandwidth_kbit == 0 { 0 } else { (p.bandwidth_kbit.saturating_mul(25) / 8).max(1540) };
        p.delay_ms = num("delay");
        p.jitter_ms = num("jitter");
        let dist = value(&format!("distribution_{suffix}"));
        p.distribution = dist
            .as_str()
            .and_then(Distribution::from_name)
            .ok_or_else(|| format!("distribution_{suffix}: unknown distribution {dist}"))?;
        p.lossratio_percent = num("lossratio");
        p.lossburst_frames = num("lossburst");
        p.duplicate_percent = num("duplicate");
        p.corrupt_percent = num("corrupt");
        p.reorder_percent = num("reorder");
        p.queue_frames = int("queue")?;
        p.mtu = int("mtu")?;
        p.validate().map_err(|e| format!("{suffix} direction: {e}"))?;
        Ok(p)
    };
    Ok((direction("from", seed)?, direction("to", reverse_seed(seed))?))
}

/// Whether an attribute name is one the data plane ignores.
pub fn is_ignored(name: &str) -> bool {
    IGNORED.contains(&name)
}

/// Parses `key=value` words as the command line gives them: a value that
/// is JSON (a number, `true`, `null`, a quoted string) is taken as such,
/// anything else as text, so `distribution_to=normal` works unquoted.
pub fn parse_assignments<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Attrs, String> {
    let mut attrs = Attrs::new();
    for word in words {
        let (key, raw) = word.split_once('=').ok_or_else(|| format!("`{word}` is not key=value"))?;
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        attrs.insert(key.to_string(), value);
    }
    Ok(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(words: &[&str]) -> Result<(DirectionParams, DirectionParams), String> {
        link_params_from_attrs(&parse_assignments(words.iter().copied())?)
    }

    #[test]
    fn from_shapes_a_to_b_and_to_shapes_b_to_a() {
        let (ab, ba) = params(&["delay_from=10", "lossratio_to=5", "bandwidth_from=0", "seed=7"]).expect("valid");
        assert_eq!((ab.delay_ms, ab.lossratio_percent, ab.bandwidth_kbit), (10.0, 0.0, 0));
        assert_eq!((ba.delay_ms, ba.lossratio_percent), (0.0, 5.0));
        // The model's default bandwidth applies where none is given.
        assert_eq!(ba.bandwidth_kbit, 10_000);
        assert_eq!((ab.seed, ba.seed), (7, reverse_seed(7)));
    }

    #[test]
    fn emulation_off_is_ideal_and_null_seed_is_chosen() {
        let (ab, ba) = params(&["emulation=false", "delay_to=50", "seed=null"]).expect("valid");
        assert_eq!(ab, DirectionParams::ideal(ab.seed));
        assert_eq!(ba, DirectionParams::ideal(reverse_seed(ab.seed)));
        assert!(ab.seed < 1 << 53);
    }

    #[test]
    fn schema_errors_name_the_attribute() {
        let e = params(&["lossratio_to=101"]).expect_err("out of range");
        assert!(e.starts_with("lossratio_to: 101"), "{e}");
        let e = params(&["delay=3"]).expect_err("unknown");
        assert!(e.starts_with("delay: is not an attribute of bridge"), "{e}");
        let (ab, _) = params(&["distribution_from=normal", "jitter_from=2"]).expect("valid");
        assert_eq!(ab.distribution, Distribution::Normal);
    }
}
