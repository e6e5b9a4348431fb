//! Job objects: named, nestable, securable groups of processes whose
//! limits the kernel enforces; on Linux cgroups (below), on Windows the
//! job objects themselves (`CreateJobObjectW` and its family).
//!
//! | Windows                              | taskloom                                   |
//! |--------------------------------------|--------------------------------------------|
//! | `CreateJobObject`                    | [`Job::create`], [`JobBuilder`]            |
//! | `OpenJobObject`                      | [`Job::open`]                              |
//! | `AssignProcessToJobObject`           | [`Job::assign`]                            |
//! | `CreateProcess` into a job           | [`Job::spawn`] (placed before its first instruction) |
//! | `SetInformationJobObject`            | [`Job::set_limits`]                        |
//! | `QueryInformationJobObject`          | [`Job::info`], [`Job::pids`]               |
//! | `TerminateJobObject`                 | [`Job::terminate`]                         |
//! | `IsProcessInJob`                     | [`Job::contains`], [`job_of`]              |
//! | `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE` | [`JobBuilder::kill_on_close`] (a guardian process on Linux) |
//! | job notifications                    | `Job::watch`                               |
//!
//! ```no_run
//! use std::time::Duration;
//! use taskloom::job::{Job, JobLimits};
//! use taskloom::process::ProcessBuilder;
//!
//! // A named job others can open (`taskloom job assign build PID`), at most
//! // 64 processes, half a CPU.
//! let job = Job::builder()
//!     .name("build")
//!     .limits(JobLimits {
//!         active_processes: Some(64),
//!         cpu_rate_percent: Some(50),
//!         ..Default::default()
//!     })
//!     .create()?;
//! job.spawn(ProcessBuilder::new("sh").args(["-c", "sleep 1 & sleep 2 & wait"]))?;
//! let info = Job::open("build")?.info()?;
//! println!("{} processes, {:?} user time", info.active_processes, info.user_time);
//! job.terminate()?; // every member, also those that double-forked
//! assert!(job.wait(Duration::from_secs(1))?);
//! job.delete()?;
//! # Ok::<(), taskloom::Error>(())
//! ```
//!
//! On Linux a job is a directory named after it in each cgroup hierarchy taskloom
//! uses, below this process's own cgroup (`<own>/taskloom/<name>`). On
//! cgroup2 its processes live in a leaf `@N` below the job directory, so
//! nested jobs sit beside the leaf and a fresh leaf can be made after a
//! terminate (see "the CLONE_INTO_CGROUP bug" in ARCHITECTURE.md).
//! Membership is inherited by every fork, so nothing started in a job leaves
//! it by double-forking, `setsid` or daemonizing; only a process allowed to
//! write another cgroup's `cgroup.procs` (root, or the owner of that cgroup)
//! can move itself out.

#[cfg(target_os = "linux")]
mod backend;
mod builder;
#[cfg(target_os = "linux")]
mod connector;
#[cfg(target_os = "linux")]
mod guardian;
mod limits;
#[cfg(target_os = "linux")]
mod linux;
mod name;
mod placement;
mod watch;
#[cfg(windows)]
mod windows;

pub use builder::JobBuilder;
pub use limits::{
    Capability, IoRateLimit, JobInfo, JobIo, JobLimits, JobPressure, LimitViolation,
    NotificationLimits, SoftLimit, process_time_secs,
};
pub use name::{MAX_NAME_LEN, validate_name};

#[cfg(target_os = "linux")]
pub use crate::linux::{job_name_in, layout};
#[cfg(target_os = "linux")]
pub use layout::Controller;
#[cfg(target_os = "linux")]
pub use linux::{Job, job_of};
#[cfg(all(target_os = "linux", feature = "tokio"))]
pub use watch::JobEventStream;
pub use watch::{JobCounts, JobEvent, JobWatcher};
#[cfg(windows)]
pub use windows::{Job, job_of};
