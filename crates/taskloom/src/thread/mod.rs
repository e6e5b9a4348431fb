//! Threads: `CreateThread` with its options, the thread handle, and
//! `SuspendThread`/`ResumeThread`/`GetThreadContext` for any thread of this
//! process; dynamic TLS slots in [`tls`].
//!
//! ```
//! use taskloom::thread::{ThreadBuilder, ThreadPriority};
//! let t = ThreadBuilder::new()
//!     .name("worker")
//!     .priority(ThreadPriority::BelowNormal)
//!     .spawn(|| 7)
//!     .unwrap();
//! assert_eq!(t.join().unwrap(), 7); // the thread's exit code
//! ```
//!
//! # Suspending a thread, and its hazards
//! [`suspend_thread`] stops a thread wherever it is, as `SuspendThread`
//! does: in the middle of `malloc`, holding a lock, in a system call (which
//! is restarted afterwards). While it is suspended, anything that needs what
//! it holds waits too: a suspender that then allocates, prints or takes the
//! same lock can deadlock. Windows documents the same hazard; suspension is
//! for debuggers, profilers and garbage collectors that stop the world and
//! touch nothing shared until they resume it. The thread is parked in a
//! signal handler (signal `SIGRTMIN+6`); a thread that blocks that signal is
//! suspended when it unblocks it: [`suspend_thread`] waits for that at most
//! 10 s, then says so (the suspension stays requested unless resumed).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod remote;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(target_os = "linux")]
pub mod tls;
#[cfg(windows)]
mod windows;

use std::time::{Duration, SystemTime};

use crate::cpuset::CpuSet;

pub use crate::arch::ThreadContext;
#[cfg(target_os = "linux")]
pub use linux::{
    Thread, ThreadAccess, ThreadHandle, current_stack_limits, current_thread_id,
    remote_thread_context, resume_thread, set_thread_affinity, set_thread_context,
    set_thread_description, set_thread_priority, suspend_thread, thread_context,
    thread_description, thread_priority, wait_all, wait_any,
};
#[cfg(target_os = "linux")]
pub use tls::{TlsExhausted, TlsIndex};
#[cfg(windows)]
pub use windows::{Thread, current_thread_id, wait_all, wait_any};

/// `STILL_ACTIVE`: the exit code Windows reports for a running thread.
pub const STILL_ACTIVE: u32 = 259;

/// The seven Windows thread priorities, mapped onto per-thread nice values
/// and scheduling policies (Linux schedules threads individually).
///
/// | Windows                        | Linux                      |
/// |--------------------------------|----------------------------|
/// | `THREAD_PRIORITY_IDLE`         | `SCHED_IDLE`               |
/// | `THREAD_PRIORITY_LOWEST`       | nice 10                    |
/// | `THREAD_PRIORITY_BELOW_NORMAL` | nice 5                     |
/// | `THREAD_PRIORITY_NORMAL`       | nice 0                     |
/// | `THREAD_PRIORITY_ABOVE_NORMAL` | nice -5                    |
/// | `THREAD_PRIORITY_HIGHEST`      | nice -10                   |
/// | `THREAD_PRIORITY_TIME_CRITICAL`| nice -20                   |
///
/// Time-critical stays in the normal scheduling class, as on Windows outside
/// the realtime priority class. Raising a priority needs `CAP_SYS_NICE` (or
/// `RLIMIT_NICE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThreadPriority {
    /// `THREAD_PRIORITY_IDLE`.
    Idle,
    /// `THREAD_PRIORITY_LOWEST`.
    Lowest,
    /// `THREAD_PRIORITY_BELOW_NORMAL`.
    BelowNormal,
    /// `THREAD_PRIORITY_NORMAL`.
    Normal,
    /// `THREAD_PRIORITY_ABOVE_NORMAL`.
    AboveNormal,
    /// `THREAD_PRIORITY_HIGHEST`.
    Highest,
    /// `THREAD_PRIORITY_TIME_CRITICAL`.
    TimeCritical,
}

impl ThreadPriority {
    /// The nice value (`Idle` uses `SCHED_IDLE` at nice 19).
    pub const fn nice(self) -> i32 {
        match self {
            ThreadPriority::Idle => 19,
            ThreadPriority::Lowest => 10,
            ThreadPriority::BelowNormal => 5,
            ThreadPriority::Normal => 0,
            ThreadPriority::AboveNormal => -5,
            ThreadPriority::Highest => -10,
            ThreadPriority::TimeCritical => -20,
        }
    }
}

/// `CreateThread`'s options.
#[derive(Debug, Default, Clone)]
pub struct ThreadBuilder {
    name: Option<String>,
    reserve: Option<usize>,
    commit: usize,
    priority: Option<ThreadPriority>,
    affinity: Option<CpuSet>,
    ideal_processor: Option<usize>,
    suspended: bool,
}

impl ThreadBuilder {
    /// Default options: 2 MiB stack, normal priority, any CPU, running at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// The thread's name (`SetThreadDescription`; Linux keeps the first 15 bytes).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Reserved stack size (`dwStackSize` with `STACK_SIZE_PARAM_IS_A_RESERVATION`).
    pub fn stack_reserve(mut self, bytes: usize) -> Self {
        self.reserve = Some(bytes);
        self
    }

    /// Stack bytes backed by memory before the thread runs (the rest on first touch).
    pub fn stack_commit(mut self, bytes: usize) -> Self {
        self.commit = bytes;
        self
    }

    /// Priority, set by the thread before it runs any of its function.
    pub fn priority(mut self, p: ThreadPriority) -> Self {
        self.priority = Some(p);
        self
    }

    /// CPU affinity, set before the thread runs any of its function.
    pub fn affinity(mut self, cpus: CpuSet) -> Self {
        self.affinity = Some(cpus);
        self
    }

    /// `SetThreadIdealProcessor`: Linux has no preference hint, so the ideal
    /// processor is recorded and reported only ([`Thread::ideal_processor`]).
    pub fn ideal_processor(mut self, cpu: usize) -> Self {
        self.ideal_processor = Some(cpu);
        self
    }

    /// `CREATE_SUSPENDED`: the thread exists and has its id but runs none of
    /// its function until [`Thread::resume`].
    pub fn suspended(mut self, yes: bool) -> Self {
        self.suspended = yes;
        self
    }
}

/// `GetThreadTimes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ThreadTimes {
    /// When it was created.
    pub creation: SystemTime,
    /// When it ended, if it has.
    pub exit: Option<SystemTime>,
    /// User-mode CPU time.
    pub user: Duration,
    /// Kernel CPU time.
    pub kernel: Duration,
}
