//! Inspection: the PEB/TEB/EPROCESS view of any process and thread, read
//! from `/proc` on Linux (nothing here writes anywhere). On Windows,
//! [`snapshot`] (through Toolhelp and the per-process queries, `windows.rs`)
//! for now.
//!
//! - [`snapshot`]: a fast listing of every process (or thread), for `ps`.
//! - [`inspect`]: every section of one process: image, command line,
//!   environment, modules, handle table, token, job, classification, threads.
//!
//! Names, command lines and environments are bytes, exact. A process that
//! vanishes during a snapshot is skipped; a section the caller may not read
//! is left out and named in `denied`, never an error for the whole record.
//!
//! ```
//! # #[cfg(target_os = "linux")] {
//! use taskloom::inspect::{self, Classification, SnapshotOptions};
//!
//! // Every process, with its command line (as `ps -e`).
//! let all = inspect::snapshot(SnapshotOptions { cmdline: true, ..Default::default() })?;
//! let me = std::process::id() as i32;
//! assert!(all.iter().any(|p| p.pid == me));
//!
//! // One process in full: its image, modules, handles, token, threads.
//! let info = inspect::inspect(me)?;
//! assert_eq!(info.classification, Classification::Normal);
//! assert!(info.modules.is_some_and(|m| !m.is_empty()));
//! println!("{} threads", info.basic.threads);
//! # }
//! # Ok::<(), taskloom::Error>(())
//! ```

/// The JSON form of byte strings (names, command lines, environments,
/// paths): valid UTF-8 is a JSON string; anything else is
/// `{"base64": "..."}` holding the exact bytes, so every output is valid
/// JSON and the bytes round-trip.
pub mod bytes {
    pub use crate::bytes::*;
}
#[cfg(target_os = "linux")]
pub use crate::linux::parse;

#[cfg(target_os = "linux")]
mod process;
#[cfg(target_os = "linux")]
mod reader;
#[cfg(target_os = "linux")]
mod snapshot;
#[cfg(windows)]
mod windows;

#[cfg(target_os = "linux")]
pub use process::{
    Classification, Handle, IoCounters, Memory, Module, ProcessInfo, ThreadInfo, Token,
    classification, inspect, modules_from_maps, threads,
};
#[cfg(target_os = "linux")]
pub use snapshot::{ProcEntry, snapshot};
#[cfg(windows)]
pub use windows::{ProcEntry, snapshot, split_command_line};

#[cfg(target_os = "linux")]
use std::collections::HashMap;
#[cfg(target_os = "linux")]
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Which fields a [`snapshot`] reads (each costs a read per process).
#[derive(Debug, Clone, Copy, Default)]
pub struct SnapshotOptions {
    /// Read each command line.
    pub cmdline: bool,
    /// Name each process's taskloom job (Linux: from its cgroup; Windows
    /// cannot say which job a process is in: `Unsupported`).
    pub job: bool,
    /// List threads (one entry per thread) instead of processes.
    pub threads: bool,
}

/// The name of user `uid`, through NSS (`getpwuid_r`: files, LDAP, sssd …,
/// as the machine is set up; the same lookup a spawn `--user` uses), once
/// per uid per process.
#[cfg(target_os = "linux")]
pub fn user_name(uid: u32) -> Option<&'static str> {
    static USERS: Mutex<Option<HashMap<u32, Option<&'static str>>>> = Mutex::new(None);
    let mut users = USERS.lock().unwrap_or_else(|e| e.into_inner());
    *users
        .get_or_insert_with(HashMap::new)
        .entry(uid)
        // Leaked once per distinct uid, so callers may keep the name.
        .or_insert_with(|| crate::linux::user_name_of(uid).map(|n| &*Box::leak(n.into_boxed_str())))
}

pub(crate) fn secs<S: serde::Serializer>(
    d: &Duration,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

pub(crate) fn epoch_secs<S: serde::Serializer>(
    t: &SystemTime,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    )
}
