//! How each cgroup hierarchy spells a controller's files: the one place
//! that knows cgroup2's and cgroup v1's formats apart.

use std::path::Path;
use std::time::Duration;

use super::cgroup;

/// How a hierarchy spells a controller's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// cgroup v1.
    V1,
    /// cgroup2.
    V2,
}

impl Format {
    /// The job memory limit: the file and the value to write.
    pub(super) fn memory_limit(self, bytes: Option<u64>) -> (&'static str, String) {
        match (self, bytes) {
            (Format::V1, Some(b)) => ("memory.limit_in_bytes", b.to_string()),
            (Format::V1, None) => ("memory.limit_in_bytes", "-1".into()),
            (Format::V2, Some(b)) => ("memory.max", b.to_string()),
            (Format::V2, None) => ("memory.max", "max".into()),
        }
    }

    /// The CPU rate cap (percent of one CPU): the files and values to write, in order.
    pub(super) fn cpu_rate(self, percent: Option<u32>) -> Vec<(&'static str, String)> {
        const PERIOD: u64 = 100_000;
        match self {
            Format::V1 => {
                let quota = percent
                    .map(|p| (p as u64 * PERIOD / 100).max(1000) as i64)
                    .unwrap_or(-1);
                vec![
                    ("cpu.cfs_period_us", PERIOD.to_string()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ]
            }
            Format::V2 => {
                let value = match percent {
                    Some(p) => format!("{} {PERIOD}", (p as u64 * 1000).max(1000)),
                    None => format!("max {PERIOD}"),
                };
                vec![("cpu.max", value)]
            }
        }
    }

    /// The CPU weight (Windows' 1–9): the file and value that keep the
    /// weights' ratios, 5 being the kernel's default share.
    pub(super) fn cpu_weight(self, weight: Option<u32>) -> (&'static str, String) {
        let w = u64::from(weight.unwrap_or(5));
        match self {
            Format::V1 => ("cpu.shares", (w * 1024 / 5).to_string()),
            Format::V2 => ("cpu.weight", (w * 20).to_string()),
        }
    }

    /// Memory now, at its peak, and OOM kills, from a memory directory.
    pub(super) fn memory_usage(self, dir: &Path) -> (Option<u64>, Option<u64>, Option<u64>) {
        let num = |f: &str| {
            cgroup::read(&dir.join(f))
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
        };
        match self {
            Format::V1 => (
                num("memory.usage_in_bytes"),
                num("memory.max_usage_in_bytes"),
                cgroup::keyed(&dir.join("memory.oom_control"), "oom_kill"),
            ),
            Format::V2 => (
                num("memory.current"),
                num("memory.peak"),
                cgroup::keyed(&dir.join("memory.events"), "oom_kill"),
            ),
        }
    }

    /// User and kernel CPU time of a job, from its cgroup2 directory or its
    /// v1 cpuacct directory.
    pub(super) fn cpu_time(self, dir: &Path) -> (Duration, Duration) {
        match self {
            Format::V2 => {
                let stat = dir.join("cpu.stat");
                (
                    Duration::from_micros(cgroup::keyed(&stat, "user_usec").unwrap_or(0)),
                    Duration::from_micros(cgroup::keyed(&stat, "system_usec").unwrap_or(0)),
                )
            }
            Format::V1 => {
                let tick = crate::linux::clock_ticks_per_second();
                let stat = dir.join("cpuacct.stat");
                let ms = |key| cgroup::keyed(&stat, key).unwrap_or(0) * 1000 / tick;
                (
                    Duration::from_millis(ms("user")),
                    Duration::from_millis(ms("system")),
                )
            }
        }
    }
}
