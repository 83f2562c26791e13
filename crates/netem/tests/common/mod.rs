//! A virtual-clock driver shared by the integration tests.
//!
//! It plays the role of the real driver: hands arrivals to a
//! [`LinkDirection`] in time order, jumps to each earliest deadline to collect
//! departures, and drains the link at the end. Nothing here sleeps.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use netem::{Departure, DirectionParams, Instant, LinkDirection, Token, Verdict};

/// Everything a run produced.
pub struct Run {
    pub verdicts: Vec<Verdict>,
    pub departures: Vec<Departure>,
}

/// A link from parameters the test knows to be valid.
pub fn link(seed: u64, f: impl FnOnce(&mut DirectionParams)) -> LinkDirection {
    let mut p = DirectionParams::ideal(seed);
    f(&mut p);
    LinkDirection::new(p).expect("test parameters are valid")
}

/// Polls every departure due at or before `now`.
pub fn drain_until(link: &mut LinkDirection, now: Instant, out: &mut Vec<Departure>) {
    while let Some(at) = link.poll_at() {
        if at > now {
            break;
        }
        while let Some(d) = link.poll_egress(at) {
            out.push(d);
        }
    }
}

/// Feeds `(arrival, len)` pairs (in time order), then drains everything.
pub fn drive(link: &mut LinkDirection, arrivals: impl IntoIterator<Item = (Instant, usize)>) -> Run {
    let mut run = Run { verdicts: Vec::new(), departures: Vec::new() };
    for (i, (at, len)) in arrivals.into_iter().enumerate() {
        drain_until(link, at, &mut run.departures);
        run.verdicts.push(link.handle_frame(at, Token(i as u64), len));
    }
    drain_until(link, Instant::from_nanos(u64::MAX), &mut run.departures);
    run
}

/// `n` frames of `len` bytes, one every `gap_ns`, from time 0.
pub fn periodic(n: u64, gap_ns: u64, len: usize) -> impl Iterator<Item = (Instant, usize)> {
    (0..n).map(move |i| (Instant::from_nanos(i * gap_ns), len))
}

/// The 95 % normal-approximation interval of a binomial count.
pub fn binomial_95(n: u64, p: f64) -> (f64, f64) {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (mean - 1.96 * sd, mean + 1.96 * sd)
}

/// Mean and sample standard deviation.
pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}
