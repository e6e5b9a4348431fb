//! The degraded job backend, for machines where this process may write no
//! cgroup (an unprivileged user without a delegated subtree), or when asked
//! for with `TASKLOOM_JOB_BACKEND=process-group`.
//!
//! A job is then a process group: the first process spawned into it leads a
//! new group, later ones join it (`setpgid` before `execve`), and every fork
//! inherits it, double forks included. Terminate and kill-on-close signal
//! the whole group. What it cannot do, and `taskloom job caps` says so:
//! a member that calls `setsid` or `setpgid` leaves the job; running
//! processes that are not our own children cannot be assigned; job-wide
//! memory, process-count, affinity and CPU-rate limits have no kernel
//! counterpart without cgroups (per-process memory, CPU time and priority
//! still apply, as rlimits and nice values).
//!
//! A named job's state (its group id and limits) is a directory of this
//! user's (`$XDG_RUNTIME_DIR/taskloom-jobs/<name>`, else
//! `/tmp/taskloom-<uid>/jobs/<name>`, mode 0700), so another process of the
//! same user can open it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Whether the process-group backend is in use.
pub(crate) fn forced() -> bool {
    std::env::var_os("TASKLOOM_JOB_BACKEND").is_some_and(|v| v == "process-group")
}

/// Where job state lives for this user.
pub(crate) fn state_root() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("taskloom-jobs"),
        _ => PathBuf::from(format!(
            "/tmp/taskloom-{}",
            rustix::process::getuid().as_raw()
        ))
        .join("jobs"),
    }
}

/// Creates the state directory of a new job (fails if it exists).
pub(crate) fn create_state(name: &str) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let root = state_root();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&root)
        .map_err(|e| Error::os("create job state directory", e))?;
    let dir = root.join(name);
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::JobExists(name.to_owned()));
        }
        Err(e) => return Err(Error::os("create job state directory", e)),
    }
    fs::write(dir.join("pgid"), "0").map_err(|e| Error::os("write job state", e))?;
    Ok(dir)
}

/// The job's process group id (0: no member yet).
pub(crate) fn pgid(dir: &Path) -> i32 {
    fs::read_to_string(dir.join("pgid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

pub(crate) fn set_pgid(dir: &Path, pgid: i32) -> Result<()> {
    fs::write(dir.join("pgid"), pgid.to_string()).map_err(|e| Error::os("write job state", e))
}

/// Live members: every process whose process group is the job's.
pub(crate) fn members(pgid: i32) -> Vec<i32> {
    member_rows(pgid).into_iter().map(|e| e.pid).collect()
}

/// The live members' listing rows (one snapshot of /proc).
pub(crate) fn member_rows(pgid: i32) -> Vec<crate::inspect::ProcEntry> {
    if pgid <= 0 {
        return Vec::new();
    }
    crate::inspect::snapshot(Default::default())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.pgrp == pgid && e.state != 'Z' && e.state != 'X')
        .collect()
}

/// SIGKILLs the group until no member is left (or ~10 s pass).
pub(crate) fn kill_group(pgid: i32) -> usize {
    if pgid <= 0 {
        return 0;
    }
    let before = members(pgid).len();
    for _ in 0..10_000 {
        // SAFETY: kill with a negative pid signals that process group only.
        let r = unsafe { libc::kill(-pgid, libc::SIGKILL) };
        if r != 0 || members(pgid).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    before
}

/// Removes the state root (and its `/tmp/taskloom-<uid>` parent) once no job is left.
pub(crate) fn remove_empty_roots() {
    let root = state_root();
    if fs::remove_dir(&root).is_ok()
        && std::env::var_os("XDG_RUNTIME_DIR").is_none_or(|d| d.is_empty())
        && let Some(parent) = root.parent()
    {
        let _ = fs::remove_dir(parent);
    }
}

/// Every job name with state for this user.
pub(crate) fn list() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(state_root())
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
