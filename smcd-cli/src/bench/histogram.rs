//! A fixed-size log-linear histogram of round-trip times in nanoseconds:
//! exact below 128 ns, then 128 buckets per power of two (each at most
//! 1/128 ≈ 0.8 % wide), so recording a sample never allocates and costs
//! a few instructions, however long the run.

use std::time::Duration;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
/// Buckets: `SUB` exact ones, then `SUB` per exponent 7 … 63.
const BUCKETS: usize = SUB * (64 - SUB_BITS as usize + 1);

/// Counts of samples per bucket.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    /// Count one sample.
    pub(crate) fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = index(ns);
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
            self.total += 1;
        }
    }

    /// The `q` quantile (0 … 1) in nanoseconds: the middle of the bucket
    /// holding the sample of rank ⌈q·n⌉; `None` without samples.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        // The rank of the wanted sample, 1 … total.
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = bounds(i);
                return Some(low as f64 + (width as f64 - 1.0) / 2.0);
            }
        }
        None
    }
}

/// The bucket of `ns`.
fn index(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros();
    let shift = exp - SUB_BITS;
    let sub = ((ns >> shift) as usize) & (SUB - 1);
    (shift as usize + 1) * SUB + sub
}

/// The lowest value of bucket `i` and how many values it holds.
fn bounds(i: usize) -> (u64, u64) {
    if i < SUB {
        return (i as u64, 1);
    }
    let shift = (i / SUB - 1) as u32;
    let sub = (i % SUB) as u64;
    ((SUB as u64 + sub) << shift, 1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        for ns in [
            0,
            1,
            127,
            128,
            255,
            256,
            257,
            1_000,
            65_432,
            1 << 40,
            u64::MAX,
        ] {
            let (low, width) = bounds(index(ns));
            assert!(low <= ns && ns - low < width, "{ns}: [{low}, +{width})");
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        let mut last = 0;
        for ns in 0..100_000 {
            assert!(index(ns) >= last, "{ns}");
            last = index(ns);
        }
    }

    #[test]
    fn quantiles_are_within_a_bucket() {
        let mut h = Histogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.total, 1000);
        let near = |got: Option<f64>, want: f64| {
            let g = got.unwrap_or(f64::NAN);
            assert!((g - want).abs() <= want / 100.0, "{g} vs {want}");
        };
        near(h.quantile(0.5), 500_000.0);
        near(h.quantile(0.99), 990_000.0);
        near(h.quantile(0.999), 999_000.0);
        near(h.quantile(1.0), 1_000_000.0);
        assert_eq!(Histogram::new().quantile(0.5), None);
    }
}
