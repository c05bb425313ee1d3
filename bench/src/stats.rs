//! Latency distributions: HDR histograms of nanoseconds, summarised in milliseconds.

use std::fmt;

use hdrhistogram::Histogram;

/// Highest value recorded exactly (2 minutes); anything longer is recorded as this.
const HIGHEST_NS: u64 = 120_000_000_000;

/// An HDR histogram of durations in nanoseconds, 3 significant digits.
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("valid histogram bounds"))
    }
}

impl Latencies {
    /// Records one duration.
    pub fn record(&mut self, ns: u64) {
        self.0.saturating_record(ns.max(1));
    }

    /// The percentiles the report shows.
    pub fn summary(&self) -> Summary {
        let h = &self.0;
        let ms = |ns: u64| ns as f64 / 1e6;
        Summary {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Percentiles of a distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return f.write_str("no samples");
        }
        write!(
            f,
            "p50 {} p90 {} p99 {} p99.9 {} max {} ms ({} samples)",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.p999),
            ms(self.max),
            self.count
        )
    }
}

/// A duration in milliseconds with sensible precision: 0.412, 3.27, 45.1, 1203.
pub fn ms(v: f64) -> String {
    if v < 1.0 {
        format!("{v:.3}")
    } else if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut l = Latencies::default();
        for us in 1..=1000u64 {
            l.record(us * 1000);
        }
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50 - 0.5).abs() < 0.01, "{s:?}");
        assert!((s.p99 - 0.99).abs() < 0.01, "{s:?}");
        assert!((s.max - 1.0).abs() < 0.01, "{s:?}");
        l.record(u64::MAX);
        assert!(l.summary().max >= 119_000.0);
    }

    #[test]
    fn milliseconds_are_printed_with_three_significant_digits() {
        assert_eq!(ms(0.4123), "0.412");
        assert_eq!(ms(3.271), "3.27");
        assert_eq!(ms(45.12), "45.1");
        assert_eq!(ms(1203.4), "1203");
    }
}
