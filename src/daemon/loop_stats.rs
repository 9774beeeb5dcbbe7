//! How well the event loop keeps time: the lateness of every timer it fires (how long after
//! its deadline the loop got to it), as a histogram since start, plus stall and budget
//! counters. `relevo status` reports the worst lateness and percentiles: the figure that shows
//! that nothing on the loop blocks (a flood, a slow log sink, a netlink re-read).
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest lateness recorded exactly (1 hour in µs); later values are clamped to it.
const MAX_RECORDED_US: u64 = 3_600_000_000;

/// Timer lateness and loop counters since start.
pub struct LoopStats {
    /// Lateness of fired timers, in microseconds (3 significant digits).
    lateness_us: Option<Histogram<u64>>,
    worst: Duration,
    /// Turns that woke so late that queued packets were read before any timer fired.
    pub stalls: u64,
    /// Times a socket drain stopped at its per-turn budget with datagrams still queued.
    pub budget_exhausted: u64,
}

/// The status view of [`LoopStats`].
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct LoopStatus {
    pub timers_fired: u64,
    pub timer_lateness_worst_us: u64,
    pub timer_lateness_p50_us: u64,
    pub timer_lateness_p99_us: u64,
    pub timer_lateness_p999_us: u64,
    pub stalls: u64,
    pub budget_exhausted: u64,
}

impl Default for LoopStats {
    fn default() -> Self {
        LoopStats {
            lateness_us: Histogram::new_with_bounds(1, MAX_RECORDED_US, 3).ok(),
            worst: Duration::ZERO,
            stalls: 0,
            budget_exhausted: 0,
        }
    }
}

impl LoopStats {
    /// Records one fired timer that was due `late` ago.
    pub fn timer_fired(&mut self, late: Duration) {
        self.worst = self.worst.max(late);
        if let Some(histogram) = self.lateness_us.as_mut() {
            let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
            histogram.saturating_record(us.min(MAX_RECORDED_US));
        }
    }

    pub fn status(&self) -> LoopStatus {
        let quantile = |q: f64| {
            self.lateness_us
                .as_ref()
                .map_or(0, |h| h.value_at_quantile(q))
        };
        LoopStatus {
            timers_fired: self.lateness_us.as_ref().map_or(0, |h| h.len()),
            timer_lateness_worst_us: u64::try_from(self.worst.as_micros()).unwrap_or(u64::MAX),
            timer_lateness_p50_us: quantile(0.5),
            timer_lateness_p99_us: quantile(0.99),
            timer_lateness_p999_us: quantile(0.999),
            stalls: self.stalls,
            budget_exhausted: self.budget_exhausted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_worst() {
        let mut stats = LoopStats::default();
        for _ in 0..990 {
            stats.timer_fired(Duration::from_micros(20));
        }
        for _ in 0..10 {
            stats.timer_fired(Duration::from_millis(5));
        }
        let status = stats.status();
        assert_eq!(status.timers_fired, 1000);
        assert_eq!(status.timer_lateness_worst_us, 5000);
        assert!((19..=21).contains(&status.timer_lateness_p50_us));
        assert!((19..=21).contains(&status.timer_lateness_p99_us));
        assert!(status.timer_lateness_p999_us >= 4990);
        stats.timer_fired(Duration::from_secs(7200));
        assert_eq!(stats.status().timer_lateness_worst_us, 7_200_000_000);
    }
}
