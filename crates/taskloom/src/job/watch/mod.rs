//! Job notifications (`JOB_OBJECT_MSG_*`) and the counts Windows keeps
//! (total processes, abnormal exits): one event type for both systems,
//! a watcher each. On Windows the job object's own completion port
//! (`windows.rs`); on Linux the process-events connector and scans of the
//! job's cgroup (`linux.rs`).

use crate::process::ExitStatus;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(windows)]
mod windows;

#[cfg(all(target_os = "linux", feature = "tokio"))]
pub use linux::JobEventStream;
#[cfg(target_os = "linux")]
pub use linux::JobWatcher;
#[cfg(windows)]
pub use windows::JobWatcher;

/// One job notification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum JobEvent {
    /// `JOB_OBJECT_MSG_NEW_PROCESS`.
    NewProcess {
        /// The new member.
        pid: i32,
    },
    /// `JOB_OBJECT_MSG_EXIT_PROCESS` / `ABNORMAL_EXIT_PROCESS`.
    ProcessExited {
        /// The member that ended.
        pid: i32,
        /// How it ended, when the process-events connector is available (root).
        status: Option<ExitStatus>,
    },
    /// `JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT`: forks refused so far.
    ActiveProcessLimit {
        /// Total refusals.
        hits: u64,
    },
    /// `JOB_OBJECT_MSG_JOB_MEMORY_LIMIT`: the OOM killer ended a member.
    MemoryLimit {
        /// Total OOM kills in the job.
        oom_kills: u64,
    },
    /// `JOB_OBJECT_MSG_END_OF_JOB_TIME`: the job used its user time; it was terminated.
    JobTimeLimit {
        /// User time used.
        user_time_ms: u64,
    },
    /// `JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO`.
    JobEmpty,
    /// `JOB_OBJECT_MSG_NOTIFICATION_LIMIT`: the job went over a soft limit
    /// ([`JobLimits::notify`](crate::job::JobLimits::notify)); nothing was
    /// stopped. Reported once per limit.
    NotificationLimit(crate::job::LimitViolation),
}

/// Counts a [`JobWatcher`] keeps (`JOBOBJECT_BASIC_ACCOUNTING_INFORMATION`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobCounts {
    /// Processes that were members while the watcher ran (those present at its start included).
    pub total_processes: u64,
    /// Members that ended.
    pub exited_processes: u64,
    /// Members that ended by a signal or with a non-zero code (known only with the connector).
    pub abnormal_exits: u64,
    /// Most members alive at once.
    pub peak_processes: u64,
    /// Whether forks and exits came from the kernel's connector (exact) or from scans.
    pub exact: bool,
}
