//! Counting answers: how many, how fast (percentiles), which statuses, how many errors.

use std::collections::BTreeMap;
use std::time::Duration;

use super::http::Answer;

/// What an answer counts as in the step that received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// The answer the step wants (including a refusal the step expects, like a 401).
    Ok,
    /// 429 with `Retry-After`: the app shed load as designed; not an error.
    Throttled,
    /// Anything else: a status the step does not allow, or no HTTP answer at all.
    Error,
}

/// Answers of one step (or one phase of it).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    /// Latency of every answer, in milliseconds (failures included).
    pub(crate) latencies_ms: Vec<f64>,
    /// Latency of every answer that was not [`Class::Ok`], in milliseconds.
    pub(crate) failed_ms: Vec<f64>,
    /// Answers counted as [`Class::Ok`].
    pub(crate) ok: u64,
    /// Latency of every [`Class::Ok`] answer, in milliseconds.
    pub(crate) ok_ms: Vec<f64>,
    /// Count per status code, or per failure (`reset`, `refused`, `timeout`, ...).
    pub(crate) statuses: BTreeMap<String, u64>,
    /// Answers counted as [`Class::Throttled`].
    pub(crate) throttled: u64,
    /// Answers counted as [`Class::Error`].
    pub(crate) errors: u64,
    /// Writes acknowledged with a 2xx (workload only).
    pub(crate) acked_writes: u64,
}

impl Tally {
    /// Counts one answer as `class`.
    pub(crate) fn record(&mut self, answer: &Answer, class: Class) {
        let ms = answer.latency.as_secs_f64() * 1e3;
        self.latencies_ms.push(ms);
        *self.statuses.entry(answer.status_key()).or_default() += 1;
        match class {
            Class::Ok => {
                self.ok += 1;
                self.ok_ms.push(ms);
            }
            Class::Throttled => {
                self.throttled += 1;
                self.failed_ms.push(ms);
            }
            Class::Error => {
                self.errors += 1;
                self.failed_ms.push(ms);
            }
        }
    }

    /// Number of answers.
    pub(crate) fn requests(&self) -> u64 {
        self.latencies_ms.len() as u64
    }

    /// Adds `other`'s counts to these.
    pub(crate) fn merge(&mut self, other: &Tally) {
        self.latencies_ms.extend_from_slice(&other.latencies_ms);
        self.failed_ms.extend_from_slice(&other.failed_ms);
        self.ok += other.ok;
        self.ok_ms.extend_from_slice(&other.ok_ms);
        for (k, v) in &other.statuses {
            *self.statuses.entry(k.clone()).or_default() += v;
        }
        self.throttled += other.throttled;
        self.errors += other.errors;
        self.acked_writes += other.acked_writes;
    }

    /// The `p`-th percentile (0–100) of all latencies, in milliseconds.
    pub(crate) fn percentile(&self, p: f64) -> Option<f64> {
        percentile(&self.latencies_ms, p)
    }

    /// `200:12 401:3 reset:1`: every status with its count.
    pub(crate) fn status_counts(&self) -> String {
        self.statuses
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Nearest-rank percentile of `values` (0–100); `None` when there are none.
pub(crate) fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// Requests per second of `count` answers over `elapsed`.
pub(crate) fn rate(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: Option<u16>, ms: u64) -> Answer {
        Answer {
            status,
            failure: status.is_none().then(|| "reset".to_owned()),
            latency: Duration::from_millis(ms),
            ..Answer::default()
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn a_tally_counts_statuses_classes_and_merges() {
        let mut a = Tally::default();
        a.record(&answer(Some(200), 10), Class::Ok);
        a.record(&answer(Some(429), 1), Class::Throttled);
        let mut b = Tally::default();
        b.record(&answer(None, 5), Class::Error);
        b.record(&answer(Some(200), 20), Class::Ok);
        a.merge(&b);
        assert_eq!(a.requests(), 4);
        assert_eq!(a.status_counts(), "200:2 429:1 reset:1");
        assert_eq!((a.throttled, a.errors), (1, 1));
        assert_eq!(a.failed_ms, vec![1.0, 5.0]);
    }
}
