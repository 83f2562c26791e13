//! Seeded random numbers with a fixed, documented output stream.
//!
//! A run must make the same decisions for the same seed on every platform and
//! in every release, so the stream cannot depend on a crate's version. We use
//! two published generators by Blackman and Vigna, implemented here and pinned
//! by reference vectors in the tests:
//!
//! - SplitMix64 expands a `u64` seed into generator states;
//! - xoshiro256++ produces the stream of each decision.
//!
//! Probabilities are compared as integers (`draw < p * 2^64`), so loss,
//! duplication, corruption and reordering involve no floating point at all.

/// SplitMix64: used only to turn a seed into well-mixed generator state.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A SplitMix64 sequence starting at `seed`.
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next output of the reference `splitmix64.c`.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// xoshiro256++ 1.0, one independent stream per kind of decision.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose state is the next four outputs of `seeder`.
    pub(crate) fn from_splitmix(seeder: &mut SplitMix64) -> Rng {
        let mut s = [seeder.next_u64(), seeder.next_u64(), seeder.next_u64(), seeder.next_u64()];
        // The all-zero state is the one fixed point of xoshiro; four
        // consecutive SplitMix64 outputs are never all zero in practice, but
        // the guard costs nothing.
        if s == [0; 4] {
            s[0] = 1;
        }
        Rng { s }
    }

    /// The next output of the reference `xoshiro256plusplus.c`.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[0].wrapping_add(self.s[3]).rotate_left(23).wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform draw from the open interval (0, 1), from the top 53 bits.
    pub(crate) fn unit_open(&mut self) -> f64 {
        // Centre of one of 2^53 equal cells: never exactly 0 or 1, so the
        // inverse CDFs below never see an infinite argument.
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Whether an event of probability `p` happens. Draws nothing when the
    /// outcome is certain either way, so a disabled feature leaves its
    /// stream where it was.
    pub(crate) fn chance(&mut self, p: Probability) -> bool {
        match p {
            Probability::Never => false,
            Probability::Always => true,
            Probability::Below(threshold) => self.next_u64() < threshold,
        }
    }
}

/// A probability stored as an integer threshold on a `u64` draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probability {
    /// Probability 0.
    Never,
    /// Probability 1.
    Always,
    /// The event happens when a uniform `u64` is below this value.
    Below(u64),
}

impl Probability {
    /// From a fraction; values at or below 0 (and NaN) never happen, values at
    /// or above 1 always do.
    pub(crate) fn from_fraction(p: f64) -> Probability {
        if p.is_nan() || p <= 0.0 {
            Probability::Never
        } else if p >= 1.0 {
            Probability::Always
        } else {
            // Multiplying by a power of two is exact, and `as` saturates, so
            // the threshold is the same on every platform.
            match (p * 18_446_744_073_709_551_616.0) as u64 {
                0 => Probability::Never,
                threshold => Probability::Below(threshold),
            }
        }
    }

    /// From a percentage as ToMaTo's attributes give it.
    pub(crate) fn from_percent(percent: f64) -> Probability {
        Probability::from_fraction(percent / 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_published_reference() {
        let mut sm = SplitMix64::new(0);
        assert_eq!(sm.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(sm.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(sm.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn xoshiro256plusplus_matches_the_reference_stream() {
        // State {0, 0, 0, 1} run through the reference C code.
        let mut rng = Rng { s: [0, 0, 0, 1] };
        let expected = [
            0x0000_0000_0080_0000,
            0x0000_0000_0080_0011,
            0x0002_2000_0080_0011,
            0x0002_2000_4400_0020,
            0x0002_2000_4480_08a1,
            0x0110_2100_8022_08a0,
            0x0114_0022_8420_0880,
            0x0402_8966_44a6_4095,
            0x8a14_a0a2_44ac_c891,
            0x8c88_ba46_80b2_0495,
        ];
        for want in expected {
            assert_eq!(rng.next_u64(), want);
        }
    }

    #[test]
    fn probabilities_at_the_edges() {
        assert_eq!(Probability::from_percent(0.0), Probability::Never);
        assert_eq!(Probability::from_percent(100.0), Probability::Always);
        assert_eq!(Probability::from_percent(f64::NAN), Probability::Never);
        assert_eq!(Probability::from_fraction(0.5), Probability::Below(1 << 63));
    }

    #[test]
    fn unit_open_stays_inside_the_interval() {
        let mut rng = Rng::from_splitmix(&mut SplitMix64::new(7));
        for _ in 0..10_000 {
            let u = rng.unit_open();
            assert!(u > 0.0 && u < 1.0);
        }
    }
}
