//! Where the CPU goes during a run: the time the engine threads (named
//! `dataplane`) spent, and how busy the whole host was, from `/proc`. It
//! shows what limits a throughput figure (one engine thread at a full
//! core, or every core of the host busy).

use std::time::Instant;

/// Clock ticks per second of `/proc` times (`sysconf(_SC_CLK_TCK)`).
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// User + system ticks from the text of a `/proc/.../stat` file; the
/// command name may hold spaces and parentheses, so fields are counted
/// after the last `)`.
pub fn task_ticks(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of stat(5), utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// (busy, total) ticks from the first (`cpu`) line of `/proc/stat`; idle
/// and iowait are not busy.
pub fn host_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// CPUs this process may use.
pub fn n_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    at: Instant,
    engine_ticks: u64,
    host_busy: u64,
    host_total: u64,
}

impl Sample {
    /// When it was taken.
    pub fn at(&self) -> Instant {
        self.at
    }
}

/// Reads the counters now.
pub fn sample() -> Sample {
    let mut engine_ticks = 0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() == "dataplane" {
                let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                engine_ticks += task_ticks(&stat).unwrap_or(0);
            }
        }
    }
    let (host_busy, host_total) =
        host_ticks(&std::fs::read_to_string("/proc/stat").unwrap_or_default()).unwrap_or((0, 0));
    Sample { at: Instant::now(), engine_ticks, host_busy, host_total }
}

/// CPU use between two samples.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Cores' worth of time the engine threads ran.
    pub engine_cores: f64,
    /// Cores' worth of time the host was busy (all processes, softirqs).
    pub host_cores: f64,
}

impl Usage {
    /// The use from `a` to `b`.
    pub fn between(a: &Sample, b: &Sample) -> Usage {
        let secs = (b.at - a.at).as_secs_f64().max(1e-9);
        let n_cpus = n_cpus() as f64;
        let host_total = b.host_total.saturating_sub(a.host_total).max(1) as f64;
        Usage {
            engine_cores: b.engine_ticks.saturating_sub(a.engine_ticks) as f64 / ticks_per_sec() / secs,
            host_cores: b.host_busy.saturating_sub(a.host_busy) as f64 / host_total * n_cpus,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_task_and_host_ticks() {
        let stat = "123 (data plane) R 1 2 3 4 5 6 7 8 9 10 250 40 0 0 20 0 1 0 100";
        assert_eq!(task_ticks(stat), Some(290));
        let host = "cpu  100 5 50 800 20 3 7 0 0 0\ncpu0 1 2 3 4 5 6 7 8\n";
        assert_eq!(host_ticks(host), Some((165, 985)));
        assert_eq!(task_ticks("garbage"), None);
    }
}
