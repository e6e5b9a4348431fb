//! taskloom: the Windows process, thread, fiber and job model on Linux,
//! with the kernel doing the enforcing.
//!
//! | Windows                       | taskloom                                  |
//! |-------------------------------|-------------------------------------------|
//! | `CreateProcess`               | [`process::ProcessBuilder`]               |
//! | process `HANDLE`              | [`process::Process`] (a pidfd)            |
//! | `OpenProcess`                 | [`process::Process::open`]                |
//! | `WaitForMultipleObjects`      | [`process::wait_any`], [`process::wait_all`] |
//! | `ShellExecuteEx`              | [`process::shell::ShellExecute`]          |
//! | priority class, affinity mask | [`PriorityClass`], [`CpuSet`]             |
//! | job object                    | [`job::Job`] (cgroups)                    |
//! | fiber, FLS                    | [`fiber`]                                 |
//! | PEB/TEB/EPROCESS view         | [`inspect`]                               |
//! | `CreateThread`, `SuspendThread`, TLS | [`thread`]                         |
//! | `DEBUG_PROCESS`, `WaitForDebugEvent` | [`debug::Debugger`]             |
//!
//! The crate is Linux-only. See `ARCHITECTURE.md` in the repository for the
//! map of the code and the invariants it keeps.
#![deny(unsafe_code)] // allowed only in the modules ARCHITECTURE.md lists
#![warn(missing_docs)]
#![cfg(target_os = "linux")]

pub mod cpuset;
pub mod debug;
pub mod error;
pub mod fiber;
pub mod inspect;
pub mod job;
pub mod priority;
pub mod process;
pub mod thread;
pub mod units;

pub use cpuset::CpuSet;
pub use error::{Error, LogonFailure, Result};
pub use job::{Job, JobLimits};
pub use priority::PriorityClass;
