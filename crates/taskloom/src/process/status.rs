//! What both systems say of a process: how it ended, its times, and the
//! access rights a handle to it holds.

use std::time::{Duration, SystemTime};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitStatus {
    /// It called `exit(code)`.
    Exited {
        /// The exit code (0–255).
        code: i32,
    },
    /// A signal ended it.
    Signaled {
        /// The signal number.
        signal: i32,
        /// Whether it dumped core.
        core_dumped: bool,
    },
    /// It ended, but it is not our child, so the kernel does not tell us how.
    Unknown,
}

impl ExitStatus {
    /// Whether it exited with code 0.
    pub fn success(self) -> bool {
        matches!(self, ExitStatus::Exited { code: 0 })
    }

    /// The exit code, if it exited normally.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited { code } => Some(code),
            _ => None,
        }
    }

    /// The signal that ended it, if any.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Signaled { signal, .. } => Some(signal),
            _ => None,
        }
    }

    /// The shell's convention: the code, or 128 + the signal number.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited { code } => code,
            ExitStatus::Signaled { signal, .. } => 128 + signal,
            ExitStatus::Unknown => 255,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited { code } => write!(f, "exit code {code}"),
            ExitStatus::Signaled {
                signal,
                core_dumped,
            } => {
                write!(f, "killed by {}", signal_label(*signal))?;
                if *core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
            ExitStatus::Unknown => f.write_str("exited (status unknown: not our child)"),
        }
    }
}

/// A signal's name for [`ExitStatus`]'s text (only Linux ends a process by
/// a signal).
fn signal_label(signal: i32) -> String {
    #[cfg(target_os = "linux")]
    return super::signal_name(signal);
    #[cfg(not(target_os = "linux"))]
    return format!("signal {signal}");
}

/// `GetProcessTimes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ProcessTimes {
    /// When the process was created.
    pub creation: SystemTime,
    /// When it ended, if it has.
    pub exit: Option<SystemTime>,
    /// CPU time in user mode (with its waited-for children once it has ended).
    pub user: Duration,
    /// CPU time in the kernel (likewise).
    pub kernel: Duration,
}

bitflags::bitflags! {
    /// Access rights asked of [`Process::open_with_access`] (`OpenProcess`'s `dwDesiredAccess`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct ProcessAccess: u32 {
        /// `SYNCHRONIZE`: wait for it to end (always granted).
        const SYNCHRONIZE = 1;
        /// `PROCESS_TERMINATE`: send it SIGKILL.
        const TERMINATE = 2;
        /// `PROCESS_SUSPEND_RESUME`: send it SIGSTOP/SIGCONT.
        const SUSPEND_RESUME = 4;
        /// `PROCESS_QUERY_INFORMATION`: read its private `/proc` files, and its times.
        const QUERY_INFORMATION = 8;
        /// `PROCESS_SET_INFORMATION`: change its affinity and priority
        /// (what the kernel then allows: the same user, lower priority
        /// only without `CAP_SYS_NICE`).
        const SET_INFORMATION = 16;
    }
}
