//! What a job limits ([`JobLimits`]) and how the limits are checked before
//! anything is made; what a job reports ([`JobInfo`], [`Capability`]).

use std::time::Duration;

use crate::cpuset::CpuSet;
use crate::error::{Error, Result};
use crate::priority::PriorityClass;

/// Limits of a job (`JOBOBJECT_EXTENDED_LIMIT_INFORMATION` and friends).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct JobLimits {
    /// Most processes (and threads: `pids.max` counts tasks) alive at once.
    pub active_processes: Option<u64>,
    /// Memory for the whole job, in bytes (`memory.max`); the OOM killer acts inside the job only.
    pub job_memory: Option<u64>,
    /// Address space per process, in bytes (`RLIMIT_AS`).
    pub process_memory: Option<u64>,
    /// CPUs the job may use (`cpuset.cpus`).
    pub affinity: Option<CpuSet>,
    /// Priority class of every process (nice values, set on members).
    pub priority: Option<PriorityClass>,
    /// Hard CPU cap as a percentage of one CPU (150 = one and a half CPUs; `cpu.max`).
    pub cpu_rate_percent: Option<u32>,
    /// The job's share of the CPUs against other busy work, 1 (least) to 9
    /// (most), 5 being everyone's default (`JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED`).
    /// Linux: `cpu.weight` 20 × weight (cgroup v1: `cpu.shares` 1024 × weight / 5),
    /// so shares keep the weights' ratios. Windows takes either this or
    /// `cpu_rate_percent`, not both.
    pub cpu_weight: Option<u32>,
    /// Memory the kernel reclaims from the job only when nothing else is
    /// left to reclaim (`memory.low`, cgroup2): a protection under pressure,
    /// not a reservation. Linux only (Windows' `JobLowMemoryLimit` is a
    /// notification, not a protection): `Unsupported` on Windows.
    pub memory_low: Option<u64>,
    /// A soft ceiling: past it the job's memory is reclaimed and its
    /// allocations slowed, but nothing is killed (`memory.high`, cgroup2;
    /// [`JobInfo::memory_high_hits`] counts the times). Linux only.
    pub memory_high: Option<u64>,
    /// User-mode CPU time for the whole job; the job is terminated past it (enforced by a watcher).
    #[serde(with = "crate::units::serde_opt_secs", rename = "job_time_seconds")]
    pub job_time: Option<Duration>,
    /// User+kernel CPU time per process (`RLIMIT_CPU`, SIGKILL at the limit).
    /// The kernel counts whole seconds: a fraction is rounded up
    /// ([`process_time_secs`]), so no process is stopped before its limit.
    #[serde(with = "crate::units::serde_opt_secs", rename = "process_time_seconds")]
    pub process_time: Option<Duration>,
    /// I/O rate limits, per device (`JobObjectIoRateControlInformation`):
    /// cgroup2's `io.max`. Linux (cgroup2 with the io controller) only for
    /// now: refused elsewhere, with the reason.
    pub io_rates: Vec<IoRateLimit>,
    /// `JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION`: a member that crashes
    /// just dies, with no crash dump and no crash handler. Linux: members
    /// get `RLIMIT_CORE` 1 (soft and hard, so they cannot raise it), below
    /// the smallest core the kernel writes, and a value at which the kernel
    /// does not start a `core_pattern` pipe handler (systemd-coredump,
    /// apport) either. The watcher reports the crash as an exit by signal.
    /// A member with `CAP_SYS_RESOURCE` (root) may raise the limit again.
    pub die_on_unhandled_exception: bool,
    /// Soft limits (`JOBOBJECT_NOTIFICATION_LIMIT_INFORMATION`): going over
    /// one stops nothing; the job's watcher reports it once
    /// ([`JobEvent::NotificationLimit`](super::JobEvent::NotificationLimit))
    /// and [`JobInfo::violations`] lists it.
    pub notify: NotificationLimits,
    /// Members may start children outside the job (`JOB_OBJECT_LIMIT_BREAKAWAY_OK`,
    /// with [`ProcessBuilder::breakaway_from_job`](crate::process::ProcessBuilder::breakaway_from_job)).
    pub breakaway_ok: bool,
}

/// The I/O rates one device allows a job (`io.max`): bytes and operations
/// per second, read and write apart; `None` is no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct IoRateLimit {
    /// The device: a block device node (`/dev/vda`), or any path on a
    /// filesystem, which names the disk that holds it.
    pub device: std::path::PathBuf,
    /// Bytes read per second.
    pub read_bytes_per_sec: Option<u64>,
    /// Bytes written per second.
    pub write_bytes_per_sec: Option<u64>,
    /// Read operations per second.
    pub read_iops: Option<u64>,
    /// Write operations per second.
    pub write_iops: Option<u64>,
}

/// The soft limits of a job (`JOBOBJECT_NOTIFICATION_LIMIT_INFORMATION`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct NotificationLimits {
    /// The job's memory, in bytes (its peak where the system keeps one).
    pub job_memory: Option<u64>,
    /// User CPU time of the whole job.
    #[serde(with = "crate::units::serde_opt_secs", rename = "user_time_seconds")]
    pub user_time: Option<Duration>,
    /// Bytes the job read (Linux: from devices, cgroup2 `io.stat`).
    pub io_read_bytes: Option<u64>,
    /// Bytes the job wrote (Linux: to devices, cgroup2 `io.stat`).
    pub io_write_bytes: Option<u64>,
}

impl NotificationLimits {
    /// Whether any soft limit is set.
    pub fn any(&self) -> bool {
        self.job_memory.is_some()
            || self.user_time.is_some()
            || self.io_read_bytes.is_some()
            || self.io_write_bytes.is_some()
    }
}

/// Which soft limit a job went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SoftLimit {
    /// [`NotificationLimits::job_memory`] (bytes).
    JobMemory,
    /// [`NotificationLimits::user_time`] (milliseconds).
    UserTime,
    /// [`NotificationLimits::io_read_bytes`].
    IoReadBytes,
    /// [`NotificationLimits::io_write_bytes`].
    IoWriteBytes,
}

impl SoftLimit {
    /// Its name, as `--json` and the tables spell it.
    pub fn name(self) -> &'static str {
        match self {
            SoftLimit::JobMemory => "job-memory",
            SoftLimit::UserTime => "user-time",
            SoftLimit::IoReadBytes => "io-read-bytes",
            SoftLimit::IoWriteBytes => "io-write-bytes",
        }
    }
}

/// A soft limit the job is over (`JOBOBJECT_LIMIT_VIOLATION_INFORMATION`):
/// which, how much the job used, and the limit (bytes, or milliseconds
/// of user time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LimitViolation {
    /// Which limit.
    pub limit: SoftLimit,
    /// What the job used.
    pub value: u64,
    /// The limit.
    pub limit_value: u64,
}

/// The soft limits `info` is over, in [`SoftLimit`] order.
pub(crate) fn violations_of(info: &JobInfo) -> Vec<LimitViolation> {
    let n = &info.limits.notify;
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let memory = info.memory_peak.or(info.memory_current);
    let checks = [
        (SoftLimit::JobMemory, memory, n.job_memory),
        (
            SoftLimit::UserTime,
            Some(ms(info.user_time)),
            n.user_time.map(ms),
        ),
        (
            SoftLimit::IoReadBytes,
            info.io.map(|io| io.read_bytes),
            n.io_read_bytes,
        ),
        (
            SoftLimit::IoWriteBytes,
            info.io.map(|io| io.write_bytes),
            n.io_write_bytes,
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(limit, value, limit_value)| {
            let (value, limit_value) = (value?, limit_value?);
            (value > limit_value).then_some(LimitViolation {
                limit,
                value,
                limit_value,
            })
        })
        .collect()
}

/// What [`Job::info`](super::Job::info) reports (`JOBOBJECT_BASIC_AND_IO_ACCOUNTING_INFORMATION` and more).
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobInfo {
    /// The job's name (a path such as `build/tests` for a nested job).
    pub name: String,
    /// Processes in the job now (nested jobs included).
    pub active_processes: usize,
    /// Their pids.
    pub pids: Vec<i32>,
    /// Most tasks alive at once (`pids.peak`), when the kernel keeps it.
    pub peak_processes: Option<u64>,
    /// `TotalProcesses`: every process the job (nested jobs included) has
    /// had, ended ones too, counted by the job's process counter; `None`
    /// where none runs (see `taskloom job caps`, `total-processes`).
    pub total_processes: Option<u64>,
    /// User CPU time of every process that ever ran in the job.
    #[serde(with = "crate::units::serde_secs", rename = "user_seconds")]
    pub user_time: Duration,
    /// Kernel CPU time, likewise.
    #[serde(with = "crate::units::serde_secs", rename = "kernel_seconds")]
    pub kernel_time: Duration,
    /// Memory in use now, in bytes.
    pub memory_current: Option<u64>,
    /// Most memory in use at once, in bytes.
    pub memory_peak: Option<u64>,
    /// Processes the OOM killer ended inside the job.
    pub oom_kills: Option<u64>,
    /// Times the job went over its `memory_high` and was throttled
    /// (`memory.events` `high`; cgroup2).
    pub memory_high_hits: Option<u64>,
    /// The soft limits ([`JobLimits::notify`]) it is over
    /// (`JobObjectLimitViolationInformation`).
    pub violations: Vec<LimitViolation>,
    /// Forks refused by the active-process limit.
    pub process_limit_hits: Option<u64>,
    /// Whether the job is frozen.
    pub frozen: bool,
    /// Its I/O, where the system counts it for the job (`None` elsewhere:
    /// cgroup v1, no `io` controller, process groups).
    pub io: Option<JobIo>,
    /// Its processes' stalls (Linux, cgroup2), `None` elsewhere.
    pub pressure: Option<JobPressure>,
    /// The limits in force.
    pub limits: JobLimits,
    /// Whether this handle holds the job's kill-on-close (`JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`).
    pub kill_on_close: bool,
}

/// A job's I/O (`IO_COUNTERS` of `JOBOBJECT_BASIC_AND_IO_ACCOUNTING_INFORMATION`):
/// on Linux the block I/O cgroup2's `io.stat` counts (reads, writes and
/// discards that reach a device, not the page cache), on Windows every
/// I/O operation the job's processes made ("other" is neither read nor
/// write: control operations on Windows, discards on Linux).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobIo {
    /// Read operations.
    pub read_operations: u64,
    /// Write operations.
    pub write_operations: u64,
    /// Other operations.
    pub other_operations: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Bytes moved by the other operations.
    pub other_bytes: u64,
}

/// How much a job's processes waited for a resource lately (Linux's
/// pressure stall information; beyond Windows): the share of the last ten
/// seconds, in percent, in which some of them (`*_some`) or all of them
/// (`*_full`) were stalled.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct JobPressure {
    /// Waiting for a CPU.
    pub cpu_some: Option<f64>,
    /// Waiting for memory (reclaim, refaults).
    pub memory_some: Option<f64>,
    /// All waiting for memory.
    pub memory_full: Option<f64>,
    /// Waiting for I/O.
    pub io_some: Option<f64>,
    /// All waiting for I/O.
    pub io_full: Option<f64>,
}

/// How one limit is enforced on this machine (`taskloom job caps`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Capability {
    /// The limit or feature.
    pub feature: &'static str,
    /// Whether the kernel enforces it here.
    pub enforced: bool,
    /// The mechanism, or why it is unavailable.
    pub detail: String,
}

/// Refuses limits no one means: zero processes, zero memory, no CPU, zero
/// CPU rate or time (each would stop the job's every process at once).
pub(crate) fn check_limits(l: &JobLimits) -> Result<()> {
    let zero = [
        (
            l.active_processes == Some(0),
            "an active process limit of 0",
        ),
        (l.job_memory == Some(0), "a job memory limit of 0 bytes"),
        (
            l.process_memory == Some(0),
            "a process memory limit of 0 bytes",
        ),
        (
            l.affinity.as_ref().is_some_and(CpuSet::is_empty),
            "an affinity limit with no CPU",
        ),
        (l.cpu_rate_percent == Some(0), "a CPU rate of 0%"),
        (l.memory_high == Some(0), "a memory ceiling of 0 bytes"),
        (
            l.job_time.is_some_and(|d| d.is_zero()),
            "a job time limit of 0",
        ),
        (
            l.process_time.is_some_and(|d| d.is_zero()),
            "a process time limit of 0",
        ),
    ];
    if let Some((_, what)) = zero.iter().find(|(bad, _)| *bad) {
        return Err(Error::InvalidInput {
            what: "job limit",
            reason: format!("{what} would stop every process at once"),
        });
    }
    if let Some(r) = l.io_rates.iter().find(|r| {
        [
            r.read_bytes_per_sec,
            r.write_bytes_per_sec,
            r.read_iops,
            r.write_iops,
        ]
        .contains(&Some(0))
    }) {
        return Err(Error::InvalidInput {
            what: "job limit",
            reason: format!(
                "an I/O rate of 0 on {} would stop every process at once",
                r.device.display()
            ),
        });
    }
    if let Some(w) = l.cpu_weight.filter(|w| !(1..=9).contains(w)) {
        return Err(Error::InvalidInput {
            what: "job limit",
            reason: format!("a CPU weight is 1 to 9 (5 is the default), not {w}"),
        });
    }
    Ok(())
}
/// The `RLIMIT_CPU` seconds that enforce a per-process time limit: the
/// kernel counts whole seconds, so a fraction rounds up (2.5 s → 3 s).
pub fn process_time_secs(limit: Duration) -> u64 {
    (limit.as_secs() + u64::from(limit.subsec_nanos() > 0)).max(1)
}

/// Refuses a job mode that is more than permission bits (setuid, setgid and
/// sticky bits mean nothing for a job and must not reach cgroup directories).
#[cfg(target_os = "linux")]
pub(crate) fn check_mode(mode: Option<u32>) -> Result<()> {
    match mode {
        Some(m) if m & !0o777 != 0 => Err(Error::InvalidInput {
            what: "job mode",
            reason: format!("{m:o} is not permission bits (0 to 777)"),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_round_trip_through_json() {
        let limits = JobLimits {
            active_processes: Some(10),
            affinity: Some(CpuSet::parse_list("0-1").unwrap()),
            job_time: Some(Duration::from_millis(1500)),
            priority: Some(PriorityClass::Idle),
            ..Default::default()
        };
        let text = serde_json::to_string(&limits).unwrap();
        let back: JobLimits = serde_json::from_str(&text).unwrap();
        assert_eq!(back, limits);
    }
}
