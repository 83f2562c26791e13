//! Statistical fidelity of `LinkDirection` on a virtual clock.
//!
//! Every test uses a fixed seed, so its numbers are the same on every run;
//! the tolerances are the statistical ones, so a different stream (a new seed
//! or a changed draw order) would still pass. Run with `--nocapture` to see
//! the measured figures.

mod common;

use common::{binomial_95, drive, link, mean_sd, periodic};
use netem::{Distribution, DropCause, Instant, Verdict};

const MS: u64 = 1_000_000;

fn delays_ms(verdicts: &[Verdict]) -> Vec<f64> {
    verdicts.iter().filter_map(|v| v.first()).map(|s| s.delay.as_millis_f64()).collect()
}

#[test]
fn independent_loss_rate_is_within_the_binomial_interval() {
    let n = 100_000;
    let mut l = link(11, |p| p.lossratio_percent = 1.0);
    let run = drive(&mut l, periodic(n, MS, 100));
    let lost = l.counters().dropped_loss.frames;
    let (lo, hi) = binomial_95(n, 0.01);
    println!("loss 1%: {lost} of {n} lost = {:.4}% (95% interval {lo:.0}..{hi:.0})", lost as f64 / n as f64 * 100.0);
    assert!((lo..=hi).contains(&(lost as f64)));
    assert_eq!(run.departures.len() as u64, n - lost);
}

#[test]
fn gilbert_loss_has_the_configured_rate_and_mean_burst() {
    let n = 200_000;
    let mut l = link(12, |p| {
        p.lossratio_percent = 5.0;
        p.lossburst_frames = 4.0;
    });
    let run = drive(&mut l, periodic(n, MS, 100));
    let mut bursts = Vec::new();
    let mut current = 0u64;
    for v in &run.verdicts {
        if v.drop_cause() == Some(DropCause::Loss) {
            current += 1;
        } else if current > 0 {
            bursts.push(current as f64);
            current = 0;
        }
    }
    let lost = l.counters().dropped_loss.frames as f64;
    let rate = lost / n as f64;
    let (mean_burst, _) = mean_sd(&bursts);
    println!("gilbert p=5% B=4: loss {:.3}%, {} bursts, mean burst {mean_burst:.3}", rate * 100.0, bursts.len());
    assert!((rate - 0.05).abs() < 0.005, "loss rate {rate}");
    assert!((mean_burst - 4.0).abs() < 0.25, "mean burst {mean_burst}");
}

/// Sparse frames (1 s apart), so the FIFO floor never raises a delay.
fn sample_delays(seed: u64, dist: Distribution, delay: f64, jitter: f64, n: u64) -> Vec<f64> {
    let mut l = link(seed, |p| {
        p.delay_ms = delay;
        p.jitter_ms = jitter;
        p.distribution = dist;
    });
    let run = drive(&mut l, periodic(n, 1_000 * MS, 100));
    delays_ms(&run.verdicts)
}

#[test]
fn normal_delay_has_the_configured_mean_and_sd() {
    let d = sample_delays(21, Distribution::Normal, 100.0, 10.0, 20_000);
    let (mean, sd) = mean_sd(&d);
    println!("normal 100±10 ms: mean {mean:.3} ms, sd {sd:.3} ms");
    assert!((mean - 100.0).abs() < 0.3, "mean {mean}");
    assert!((sd - 10.0).abs() < 0.3, "sd {sd}");
    // netem's table clamp: never beyond ±4 sd.
    assert!(d.iter().all(|x| (60.0..=140.0).contains(x)));
}

#[test]
fn uniform_delay_stays_in_bounds() {
    let d = sample_delays(22, Distribution::Uniform, 50.0, 20.0, 20_000);
    let (mean, sd) = mean_sd(&d);
    let min = d.iter().copied().fold(f64::INFINITY, f64::min);
    let max = d.iter().copied().fold(0.0, f64::max);
    println!("uniform 50±20 ms: mean {mean:.3}, sd {sd:.3}, min {min:.3}, max {max:.3}");
    assert!(min >= 30.0 && max <= 70.0);
    assert!(min < 30.1 && max > 69.9, "the whole range is used");
    assert!((mean - 50.0).abs() < 0.3);
    assert!((sd - 20.0 / 3f64.sqrt()).abs() < 0.3);
}

#[test]
fn pareto_and_paretonormal_have_netem_shapes() {
    let d = sample_delays(23, Distribution::Pareto, 100.0, 10.0, 20_000);
    let (mean, sd) = mean_sd(&d);
    let min = d.iter().copied().fold(f64::INFINITY, f64::min);
    let max = d.iter().copied().fold(0.0, f64::max);
    println!("pareto 100±10 ms: mean {mean:.3}, sd {sd:.3}, min {min:.3}, max {max:.3}");
    // Shifted Pareto(3): minimum delay - 2/3 jitter, right tail clamped at
    // +4 jitter, mean close to `delay` (the clamp trims it slightly).
    assert!(min >= 100.0 - 20.0 / 3.0 - 1e-6);
    assert!(max <= 140.0);
    assert!((mean - 100.0).abs() < 1.0, "mean {mean}");
    let above = d.iter().filter(|x| **x > 100.0).count() as f64 / d.len() as f64;
    assert!(above < 0.5, "right-skewed: the median is below the mean");

    let d = sample_delays(24, Distribution::Paretonormal, 100.0, 10.0, 20_000);
    let (mean, sd) = mean_sd(&d);
    println!("paretonormal 100±10 ms: mean {mean:.3}, sd {sd:.3}");
    assert!((mean - 100.0).abs() < 1.0, "mean {mean}");
    assert!(d.iter().all(|x| (60.0..=140.0).contains(x)));
}

#[test]
fn delay_is_never_negative() {
    let d = sample_delays(25, Distribution::Normal, 1.0, 10.0, 10_000);
    let zeros = d.iter().filter(|x| **x == 0.0).count();
    println!("normal 1±10 ms: {zeros} of {} draws clamped to 0", d.len());
    assert!(d.iter().all(|x| *x >= 0.0));
    assert!(zeros > 4_000, "about 46% of draws are negative");
}

/// Offers 1500-byte frames at 1.2x the rate for one virtual second.
fn measured_rate(kbit: u32) -> (f64, u64) {
    let mut l = link(31, |p| p.bandwidth_kbit = kbit);
    let serialisation_ns = 1500 * 8 * 1_000_000 / u64::from(kbit);
    let gap = serialisation_ns * 10 / 12;
    let n = 1_000_000_000 / gap;
    let run = drive(&mut l, periodic(n, gap, 1500));
    let second = Instant::from_secs(1);
    let bits: u64 = run.departures.iter().filter(|d| d.due <= second).map(|d| u64::from(d.len) * 8).sum();
    (bits as f64 / 1000.0, l.counters().dropped_queue.frames)
}

#[test]
fn rate_limit_holds_within_half_a_percent() {
    for kbit in [10_000, 100_000, 1_000_000] {
        let (measured, tail_drops) = measured_rate(kbit);
        let error = (measured - f64::from(kbit)) / f64::from(kbit);
        println!(
            "rate {} Mbit/s: measured {:.3} Mbit/s, error {:+.4}%, tail drops {tail_drops}",
            kbit / 1000,
            measured / 1000.0,
            error * 100.0
        );
        assert!(error.abs() < 0.005);
        assert!(tail_drops > 0, "20% overload must overflow the queue");
    }
}

#[test]
fn back_to_back_at_line_rate_loses_nothing() {
    // 1500 B at 10 Mbit/s take exactly 1.2 ms.
    let mut l = link(32, |p| p.bandwidth_kbit = 10_000);
    let run = drive(&mut l, periodic(1000, 1_200_000, 1500));
    assert_eq!(run.departures.len(), 1000);
    assert!(run.verdicts.iter().all(|v| v.first().map(|s| s.delay.total_nanos()) == Some(1_200_000)));
}

#[test]
fn duplication_and_corruption_rates() {
    let n = 100_000;
    let mut l = link(41, |p| {
        p.duplicate_percent = 5.0;
        p.corrupt_percent = 2.0;
    });
    let run = drive(&mut l, periodic(n, MS, 500));
    let c = l.counters();
    let (dlo, dhi) = binomial_95(n, 0.05);
    // Corruption is drawn per copy, duplicates included.
    let copies = n + c.duplicated.frames;
    let (clo, chi) = binomial_95(copies, 0.02);
    println!(
        "dup 5%: {} ({dlo:.0}..{dhi:.0}); corrupt 2%: {} of {copies} copies ({clo:.0}..{chi:.0})",
        c.duplicated.frames, c.corrupted.frames
    );
    assert!((dlo..=dhi).contains(&(c.duplicated.frames as f64)));
    assert!((clo..=chi).contains(&(c.corrupted.frames as f64)));
    assert_eq!(run.departures.len() as u64, copies);
    assert_eq!(run.departures.iter().filter(|d| d.duplicate).count() as u64, c.duplicated.frames);
    for d in run.departures.iter().filter_map(|d| d.corruption) {
        assert_eq!(d.flips(), 1);
        assert!(d.first_bit() < 500 * 8);
    }
}

#[test]
fn noise_damages_bits_per_mebibyte_like_wirefilter() {
    let n = 100_000u64;
    let noise = 10.0;
    let mut l = link(42, |p| p.noise_bits_per_mbyte = noise);
    let run = drive(&mut l, periodic(n, MS, 1500));
    let flips: u64 = run.departures.iter().filter_map(|d| d.corruption).map(|c| u64::from(c.flips())).sum();
    let mib = (n * 1500) as f64 / f64::from(1u32 << 20);
    // wirefilter's geometric count has mean q/(1-q), q = len*noise/2^20.
    let q = 1500.0 * noise / f64::from(1u32 << 20);
    let expected = q / (1.0 - q) * n as f64;
    println!(
        "noise {noise} bits/MiB: {flips} flips = {:.2} bits/MiB (model {:.2})",
        flips as f64 / mib,
        expected / mib
    );
    assert!((flips as f64 - expected).abs() < 0.05 * expected);
}

#[test]
fn reorder_share_matches_and_only_reordered_frames_overtake() {
    let n = 100_000;
    let mut l = link(51, |p| {
        p.delay_ms = 10.0;
        p.reorder_percent = 10.0;
    });
    let run = drive(&mut l, periodic(n, MS, 100));
    let reordered = l.counters().reordered.frames;
    let (lo, hi) = binomial_95(n, 0.10);
    println!("reorder 10%: {reordered} of {n} ({lo:.0}..{hi:.0})");
    assert!((lo..=hi).contains(&(reordered as f64)));
    // Frames that took the delay still leave in arrival order.
    let in_order: Vec<u64> =
        run.departures.iter().filter(|d| d.due.total_nanos() >= d.seq * MS + 10 * MS).map(|d| d.seq).collect();
    assert!(in_order.windows(2).all(|w| w[0] < w[1]));
    let overtakes = run.departures.windows(2).filter(|w| w[0].seq > w[1].seq).count();
    assert!(overtakes > 0);
}

#[test]
fn no_reordering_without_delay() {
    let mut l = link(52, |p| p.reorder_percent = 50.0);
    drive(&mut l, periodic(1000, MS, 100));
    assert_eq!(l.counters().reordered.frames, 0);
}

#[test]
fn jitter_alone_never_reorders() {
    // Frames 0.1 ms apart with ±20 ms jitter would overtake each other
    // constantly without the FIFO floor.
    let mut l = link(53, |p| {
        p.delay_ms = 30.0;
        p.jitter_ms = 20.0;
    });
    let run = drive(&mut l, periodic(10_000, MS / 10, 100));
    assert!(run.departures.windows(2).all(|w| w[0].seq < w[1].seq));
}
