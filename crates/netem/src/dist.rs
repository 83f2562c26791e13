//! Delay jitter distributions, shaped like Linux netem's tables.
//!
//! netem draws a delay as `delay + jitter * x`, where `x` comes from a table
//! holding the inverse CDF of a standardised distribution in units of
//! 1/8192, stored as `i16` (so `x` is clamped to about ±4). We compute the same
//! inverse CDFs directly from one uniform draw `u` instead of a table:
//!
//! - `uniform`: `x = 2u − 1`, so the delay is uniform in `delay ± jitter`
//!   (netem's non-table path);
//! - `normal`: `x = Φ⁻¹(u)` (mean `delay`, standard deviation `jitter`);
//! - `pareto`: `x = 4/3 · ((1 − u)^(−1/3) − 1.5)`, a Pareto of shape 3 shifted
//!   to mean 0, as iproute2's `pareto.c` builds it (standard deviation about
//!   1.15 · jitter, a long right tail, never below `delay − 2/3 · jitter`);
//! - `paretonormal`: `x = (Φ⁻¹(u) + 3 · pareto(u)) / 4`, iproute2's
//!   `paretonormal.c` mix (both parts from the same `u`, as in its table).
//!
//! Φ⁻¹ is Acklam's rational approximation (relative error below 1.2e-9), and
//! the transcendental functions come from the `libm` crate, so a seed gives
//! the same delays on every platform.

use crate::rng::Rng;

/// The `distribution_to`/`distribution_from` attribute of a ToMaTo link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// Uniform in `delay ± jitter`.
    Uniform,
    /// Gaussian with mean `delay` and standard deviation `jitter`.
    Normal,
    /// Shifted Pareto (shape 3) scaled by `jitter`, as netem's table.
    Pareto,
    /// netem's mix of one quarter normal and three quarters Pareto.
    Paretonormal,
}

/// netem stores table entries as `i16` in units of 1/8192 of the jitter.
const TABLE_MIN: f64 = -32_768.0 / 8_192.0;
/// The largest value a netem table entry can hold.
const TABLE_MAX: f64 = 32_767.0 / 8_192.0;

impl Distribution {
    /// Parses ToMaTo's attribute value (`uniform`, `normal`, `pareto`,
    /// `paretonormal`).
    pub fn from_name(name: &str) -> Option<Distribution> {
        match name {
            "uniform" => Some(Distribution::Uniform),
            "normal" => Some(Distribution::Normal),
            "pareto" => Some(Distribution::Pareto),
            "paretonormal" => Some(Distribution::Paretonormal),
            _ => None,
        }
    }

    /// The attribute value for this distribution.
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Normal => "normal",
            Distribution::Pareto => "pareto",
            Distribution::Paretonormal => "paretonormal",
        }
    }

    /// A standardised offset `x` (delay = `delay + jitter * x`) from one
    /// uniform draw.
    pub(crate) fn sample(self, rng: &mut Rng) -> f64 {
        self.quantile(rng.unit_open())
    }

    /// The inverse CDF at `u` in (0, 1), clamped like netem's tables.
    pub(crate) fn quantile(self, u: f64) -> f64 {
        match self {
            Distribution::Uniform => 2.0 * u - 1.0,
            Distribution::Normal => inverse_normal_cdf(u).clamp(TABLE_MIN, TABLE_MAX),
            Distribution::Pareto => pareto_quantile(u).clamp(TABLE_MIN, TABLE_MAX),
            Distribution::Paretonormal => {
                // iproute2 clamps the Pareto entry to i16 before mixing.
                let pareto = pareto_quantile(u).min(TABLE_MAX);
                ((inverse_normal_cdf(u) + 3.0 * pareto) / 4.0).clamp(TABLE_MIN, TABLE_MAX)
            }
        }
    }
}

/// The shifted, scaled Pareto (shape 3) quantile of iproute2's `pareto.c`.
fn pareto_quantile(u: f64) -> f64 {
    (4.0 / 3.0) * (1.0 / libm::cbrt(1.0 - u) - 1.5)
}

/// Acklam's approximation of the standard normal quantile, for `p` in (0, 1).
fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const P_LOW: f64 = 0.024_25;

    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail(libm::sqrt(-2.0 * libm::log(p)))
    } else if p > 1.0 - P_LOW {
        -tail(libm::sqrt(-2.0 * libm::log(1.0 - p)))
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_hits_known_points() {
        assert!(inverse_normal_cdf(0.5).abs() < 1e-12);
        assert!((inverse_normal_cdf(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((inverse_normal_cdf(0.01) + 2.326_347_874).abs() < 1e-8);
    }

    #[test]
    fn quantiles_are_clamped_like_netem_tables() {
        for dist in [Distribution::Normal, Distribution::Pareto, Distribution::Paretonormal] {
            assert!(dist.quantile(1e-300) >= TABLE_MIN);
            assert!(dist.quantile(1.0 - 1e-16) <= TABLE_MAX);
        }
        // The Pareto minimum is at u -> 0: 4/3 * (1 - 1.5) = -2/3.
        assert!((Distribution::Pareto.quantile(1e-12) + 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn names_round_trip() {
        for dist in [Distribution::Uniform, Distribution::Normal, Distribution::Pareto, Distribution::Paretonormal] {
            assert_eq!(Distribution::from_name(dist.name()), Some(dist));
        }
        assert_eq!(Distribution::from_name("gamma"), None);
    }
}
