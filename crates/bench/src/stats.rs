//! Pure arithmetic on measurements: percentiles, the exact binomial
//! interval a loss count must fall in, the rate over a steady window, and
//! which sequence numbers are missing. No I/O, so all of it is unit-tested.

/// The `q`-quantile (0..=1) of sorted values by the nearest-rank rule.
pub fn percentile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank: the smallest value with at least q·n values at or below.
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The central interval `[lo, hi]` of counts that a Binomial(`n`, `p`)
/// variable falls in with probability at least `level` (e.g. 0.95): at most
/// (1 − level)/2 of the mass lies below `lo` and at most as much above
/// `hi`. Computed exactly, in log space, so n = 100 000 does not underflow.
pub fn binomial_interval(n: u64, p: f64, level: f64) -> (u64, u64) {
    if p <= 0.0 {
        return (0, 0);
    }
    if p >= 1.0 {
        return (n, n);
    }
    // log pmf(k+1) = log pmf(k) + log((n−k)/(k+1)) + log(p/(1−p)).
    let odds = (p / (1.0 - p)).ln();
    let mut log_pmf = Vec::with_capacity(n as usize + 1);
    let mut l = n as f64 * (1.0 - p).ln();
    for k in 0..=n {
        log_pmf.push(l);
        l += ((n - k) as f64 / (k + 1) as f64).ln() + odds;
    }
    let max = log_pmf.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pmf: Vec<f64> = log_pmf.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = pmf.iter().sum();
    let tail = (1.0 - level) / 2.0 * total;
    let mut below = 0.0;
    let mut lo = 0;
    // lo: the first k with more than `tail` of the mass at or below it.
    for (k, m) in pmf.iter().enumerate() {
        if below + m > tail {
            lo = k as u64;
            break;
        }
        below += m;
    }
    let mut above = 0.0;
    let mut hi = n;
    for (k, m) in pmf.iter().enumerate().rev() {
        if above + m > tail {
            hi = k as u64;
            break;
        }
        above += m;
    }
    (lo, hi)
}

/// The rate in bit/s of frames received at times `at_ns` (ascending) with
/// lengths `len`, over those that arrive inside `[from_ns, to_ns]`: bytes
/// after the first frame of the window divided by the time from the first
/// to the last (the first frame's bytes were carried before the window).
pub fn steady_rate(frames: &[(u64, u32)], from_ns: u64, to_ns: u64) -> Option<f64> {
    let start = frames.partition_point(|(t, _)| *t < from_ns);
    let end = frames.partition_point(|(t, _)| *t <= to_ns);
    let window = frames.get(start..end)?;
    let (first, last) = (window.first()?, window.last()?);
    let span = last.0.checked_sub(first.0).filter(|s| *s > 0)?;
    let bytes: u64 = window[1..].iter().map(|(_, len)| u64::from(*len)).sum();
    Some(bytes as f64 * 8.0 * 1e9 / span as f64)
}

/// Sequence numbers in `0..sent` that are not in `received` (any order,
/// duplicates allowed), ascending.
pub fn missing(received: &[u64], sent: u64) -> Vec<u64> {
    let mut seen = vec![false; sent as usize];
    for seq in received {
        if let Some(s) = seen.get_mut(*seq as usize) {
            *s = true;
        }
    }
    (0..sent).filter(|s| !seen[*s as usize]).collect()
}

/// `measured / expected − 1`, in percent.
pub fn error_percent(measured: f64, expected: f64) -> f64 {
    (measured / expected - 1.0) * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&v, 1.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn binomial_interval_matches_known_quantiles() {
        // Binomial(10, 0.5): P(X <= 1) = 1.1 % and P(X <= 2) = 5.5 %, so
        // the 95 % central interval is [2, 8].
        assert_eq!(binomial_interval(10, 0.5, 0.95), (2, 8));
        // 1 % of 100 000: the normal approximation gives 1000 ± 1.96·31.46
        // = [938.3, 1061.7]; the exact bounds lie within a count of it.
        let (lo, hi) = binomial_interval(100_000, 0.01, 0.95);
        assert!((938..=940).contains(&lo), "{lo}");
        assert!((1061..=1063).contains(&hi), "{hi}");
        assert_eq!(binomial_interval(50, 0.0, 0.95), (0, 0));
        assert_eq!(binomial_interval(50, 1.0, 0.95), (50, 50));
    }

    #[test]
    fn steady_rate_counts_bytes_after_the_first_frame() {
        // 1000-byte frames every 8 µs: 1 Gbit/s.
        let frames: Vec<(u64, u32)> = (0..1000).map(|i| (i * 8_000, 1000)).collect();
        let rate = steady_rate(&frames, 80_000, 7_000_000).expect("frames in window");
        assert!((rate - 1e9).abs() < 1.0, "{rate}");
        assert_eq!(steady_rate(&frames, 9_000_000, 10_000_000), None);
        assert_eq!(steady_rate(&frames[..1], 0, 10), None);
    }

    #[test]
    fn missing_lists_lost_sequence_numbers() {
        assert_eq!(missing(&[0, 2, 2, 5, 9], 6), vec![1, 3, 4]);
        assert_eq!(missing(&[], 2), vec![0, 1]);
        assert!((error_percent(101.0, 100.0) - 1.0).abs() < 1e-9);
    }
}
