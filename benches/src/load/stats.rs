//! Latency percentiles, and where the CPU went (Linux /proc; nothing elsewhere).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

/// Percentiles of a set of latencies (nearest-rank).
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub count: usize,
    pub mean: Duration,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn of(mut samples: Vec<Duration>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        Some(Self {
            count: samples.len(),
            mean: total / samples.len() as u32,
            p50: percentile(&samples, 50.0),
            p95: percentile(&samples, 95.0),
            p99: percentile(&samples, 99.0),
            max: samples[samples.len() - 1],
        })
    }

    pub fn line(&self) -> String {
        format!(
            "p50 {} ms  p95 {} ms  p99 {} ms  max {} ms  (mean {} ms, n = {})",
            ms(self.p50),
            ms(self.p95),
            ms(self.p99),
            ms(self.max),
            ms(self.mean),
            self.count
        )
    }

    pub fn json(summary: Option<&Self>) -> Value {
        match summary {
            None => Value::Null,
            Some(s) => json!({
                "count": s.count,
                "mean": ms(s.mean),
                "p50": ms(s.p50),
                "p95": ms(s.p95),
                "p99": ms(s.p99),
                "max": ms(s.max),
            }),
        }
    }
}

/// The smallest sample with at least `p` percent of the samples at or below it.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds, rounded to 0.01 ms.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

/// /proc reports CPU time in USER_HZ ticks, which Linux fixes at 100 per second.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU counters at one moment.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    /// Ticks of this process's live threads, by thread name (trailing numbers dropped).
    threads: BTreeMap<String, u64>,
    /// Ticks of this whole process, dead threads included.
    process: u64,
    /// Busy and total ticks of the whole machine, all CPUs.
    machine_busy: u64,
    machine_total: u64,
}

/// CPU spent between two snapshots.
#[derive(Debug, Clone)]
pub struct CpuUsage {
    pub wall: Duration,
    pub cpus: usize,
    /// Share of all CPUs of the machine that were busy.
    pub machine_busy: f64,
    /// CPU-seconds of this process.
    pub process: f64,
    /// CPU-seconds of everything else on the machine (a PostgreSQL server, for one).
    pub others: f64,
    /// CPU-seconds by thread group of this process, largest first.
    pub threads: Vec<(String, f64)>,
}

impl CpuSnapshot {
    pub fn take() -> Option<Self> {
        let mut threads = BTreeMap::new();
        for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            if let Some((name, ticks)) = parse_stat(&stat) {
                let group = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
                *threads.entry(group.to_owned()).or_default() += ticks;
            }
        }
        let (_, process) = parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        let machine = std::fs::read_to_string("/proc/stat").ok()?;
        let counters: Vec<u64> = machine
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|n| n.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let idle = counters.get(3)? + counters.get(4).copied().unwrap_or(0);
        let machine_total: u64 = counters.iter().take(8).sum();
        Some(Self {
            threads,
            process,
            machine_busy: machine_total.saturating_sub(idle),
            machine_total,
        })
    }

    pub fn since(&self, earlier: &Self, wall: Duration) -> CpuUsage {
        let seconds = |ticks: u64| ticks as f64 / TICKS_PER_SECOND;
        let mut threads: Vec<(String, f64)> = self
            .threads
            .iter()
            .map(|(name, t)| {
                let before = earlier.threads.get(name).copied().unwrap_or(0);
                (name.clone(), seconds(t.saturating_sub(before)))
            })
            .filter(|(_, s)| *s > 0.0)
            .collect();
        threads.sort_by(|a, b| b.1.total_cmp(&a.1));
        let process = seconds(self.process.saturating_sub(earlier.process));
        let busy = seconds(self.machine_busy.saturating_sub(earlier.machine_busy));
        let total = self.machine_total.saturating_sub(earlier.machine_total);
        CpuUsage {
            wall,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            machine_busy: if total == 0 {
                0.0
            } else {
                busy / seconds(total)
            },
            process,
            others: (busy - process).max(0.0),
            threads,
        }
    }
}

impl CpuUsage {
    pub fn line(&self) -> String {
        let threads: Vec<String> = self
            .threads
            .iter()
            .map(|(name, s)| format!("{name} {s:.2}"))
            .collect();
        format!(
            "{:.0}% of {} CPUs busy over {:.2} s; this process {:.2} CPU-s ({}); \
             other processes {:.2} CPU-s",
            self.machine_busy * 100.0,
            self.cpus,
            self.wall.as_secs_f64(),
            self.process,
            threads.join(", "),
            self.others
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "wall_s": self.wall.as_secs_f64(),
            "cpus": self.cpus,
            "machine_busy": (self.machine_busy * 1000.0).round() / 1000.0,
            "process_cpu_s": self.process,
            "other_processes_cpu_s": self.others,
            "threads_cpu_s": self.threads.iter().cloned().collect::<BTreeMap<_, _>>(),
        })
    }
}

/// `(thread name, utime + stime)` from a /proc stat line.
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    // After the name: state (field 3) ... utime (field 14), stime (field 15).
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::of(samples).unwrap_or_else(|| panic!("samples"));
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p95, Duration::from_millis(95));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
        let one = Summary::of(vec![Duration::from_millis(7)]).unwrap_or_else(|| panic!("one"));
        assert_eq!(
            (one.p50, one.p99),
            (Duration::from_millis(7), Duration::from_millis(7))
        );
        assert!(Summary::of(Vec::new()).is_none());
    }

    #[test]
    fn stat_line() {
        let line = "42 (hearth server) S 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0";
        assert_eq!(parse_stat(line), Some(("hearth server".to_owned(), 280)));
    }
}
