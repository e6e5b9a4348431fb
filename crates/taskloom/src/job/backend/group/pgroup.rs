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
//!
//! Trust: `/tmp` is shared, so another user may make `/tmp/taskloom-<uid>`
//! first and plant a group id there. Every directory on the way is checked
//! without following links (owned by this user, no access for anyone else)
//! before anything in it is read or written, and a recorded group is
//! signalled only when it is a real group (above 1) whose members all run as
//! this user and whose leader is the member recorded with it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, OrLog, Result};

/// A shared lock on a job's state directory (its creating handle's; the
/// guardian takes its own).
pub(crate) fn lock_shared(dir: &Path) -> std::io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{FlockOperation, Mode, OFlags, flock, open};
    let fd = open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    flock(&fd, FlockOperation::LockShared)?;
    Ok(fd)
}

/// Whether the job whose state is `dir` is kill-on-close and neither its
/// creating handle nor its guardian lives (no shared lock is held on the
/// directory): then its job is closed, and the state a leftover.
pub(crate) fn is_stale(dir: &Path) -> bool {
    use rustix::fs::{FlockOperation, Mode, OFlags, flock, open};
    if !dir.join("kill_on_close").exists() {
        return false;
    }
    let Ok(fd) = open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// Whether the process-group backend is in use.
pub(crate) fn forced() -> bool {
    std::env::var_os("TASKLOOM_JOB_BACKEND").is_some_and(|v| v == "process-group")
}

/// Where job state lives for this user.
pub(crate) fn state_root() -> PathBuf {
    // Only a runtime directory of this user's: one carried over in the
    // environment from another user (`setpriv`, `sudo -E`, `run --user`)
    // is not ours to write.
    let me = rustix::process::getuid().as_raw();
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() && fs::metadata(&d).is_ok_and(|m| m.uid() == me) => {
            PathBuf::from(d).join("taskloom-jobs")
        }
        _ => PathBuf::from(format!(
            "/tmp/taskloom-{}",
            rustix::process::getuid().as_raw()
        ))
        .join("jobs"),
    }
}

/// Checks that `dir` is a directory (not a link to one) that this user owns
/// and no one else may enter: job state is trusted only there.
pub(crate) fn check_private(dir: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| Error::os(format!("inspect {}", dir.display()), e))?;
    let me = rustix::process::getuid().as_raw();
    let problem = if !meta.file_type().is_dir() {
        Some("is not a directory (a link, or a file)".to_string())
    } else if meta.uid() != me {
        Some(format!(
            "belongs to uid {}, not to this user ({me})",
            meta.uid()
        ))
    } else if meta.mode() & 0o077 != 0 {
        Some(format!(
            "has mode {:o}: others may enter it",
            meta.mode() & 0o777
        ))
    } else {
        None
    };
    match problem {
        Some(why) => Err(Error::PermissionDenied {
            what: format!("trust job state in {}: it {why}", dir.display()),
            source: std::io::Error::from_raw_os_error(libc::EPERM),
        }),
        None => Ok(()),
    }
}

/// Makes `dir` (mode 0700) if it is missing, then checks it is private.
fn ensure_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::os(format!("create {}", dir.display()), e)),
    }
    check_private(dir)
}

/// The state root, made if missing, with every directory taskloom made on
/// the way checked (`/tmp/taskloom-<uid>` and its `jobs`).
pub(crate) fn private_root() -> Result<PathBuf> {
    let root = state_root();
    // `$XDG_RUNTIME_DIR` (0700, the user's, as the XDG spec requires) or
    // `/tmp/taskloom-<uid>`: private either way.
    if let Some(parent) = root.parent() {
        ensure_private(parent)?;
    }
    ensure_private(&root)?;
    Ok(root)
}

/// Creates the state directory of a new job (fails if it exists).
pub(crate) fn create_state(name: &str) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let root = private_root()?;
    let dir = root.join(name);
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::JobExists(name.to_owned()));
        }
        Err(e) => return Err(Error::os(format!("create {}", dir.display()), e)),
    }
    fs::write(dir.join("pgid"), "0")
        .map_err(|e| Error::os(format!("write {}", dir.join("pgid").display()), e))?;
    Ok(dir)
}

/// The job's process group id: 0 when it has no member yet, and also when
/// the record cannot be trusted (a state directory that is not private, a
/// group id of 1 or less, a group with a member of another user), so that
/// nothing is ever signalled on the strength of someone else's file.
pub(crate) fn pgid(dir: &Path) -> i32 {
    if check_private(dir).is_err() {
        return 0;
    }
    let recorded: i32 = fs::read_to_string(dir.join("pgid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if recorded <= 1 {
        return 0;
    }
    let me = rustix::process::getuid().as_raw();
    let rows = member_rows(recorded);
    if rows.iter().any(|e| e.uid != Some(me)) {
        return 0;
    }
    recorded
}

pub(crate) fn set_pgid(dir: &Path, pgid: i32) -> Result<()> {
    fs::write(dir.join("pgid"), pgid.to_string())
        .map_err(|e| Error::os(format!("write {}", dir.join("pgid").display()), e))
}

/// Live members: every process whose process group is the job's.
pub(crate) fn members(pgid: i32) -> Vec<i32> {
    member_rows(pgid).into_iter().map(|e| e.pid).collect()
}

/// The live members' listing rows (one snapshot of /proc).
pub(crate) fn member_rows(pgid: i32) -> Vec<crate::inspect::ProcEntry> {
    if pgid <= 1 {
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
    // Never kill(-1) (every process of the user) or kill(0) (our own group).
    if pgid <= 1 {
        return 0;
    }
    let before = members(pgid).len();
    for _ in 0..10_000 {
        let Some(group) = rustix::process::Pid::from_raw(pgid) else {
            break;
        };
        let r = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        if r.is_err() || members(pgid).is_empty() {
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
        fs::remove_dir(parent).or_log(|| format!("remove {}", parent.display()));
    }
}

/// Every job name with state for this user.
pub(crate) fn list() -> Vec<String> {
    let root = state_root();
    if check_private(&root).is_err() {
        return Vec::new();
    }
    let mut v: Vec<String> = fs::read_dir(root)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
