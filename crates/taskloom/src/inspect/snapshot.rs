//! [`snapshot`]: a fast listing of every process (or thread), for `ps`.

use std::os::fd::AsFd;
use std::time::{Duration, SystemTime};

use super::reader::{ProcReader, page_size};
use super::{SnapshotOptions, bytes, epoch_secs, parse, secs};
use crate::error::{Error, Result};
use crate::linux::parse::{PF_KTHREAD, Stat};
use crate::linux::{boot_time, ticks};

/// One row of a process (or thread) listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcEntry {
    /// Process id (thread id in a thread listing).
    pub pid: i32,
    /// Thread-group id (equals `pid` for a process).
    pub tgid: i32,
    /// Parent pid.
    pub ppid: i32,
    /// Owner uid (effective uid; root for a non-dumpable process).
    pub uid: Option<u32>,
    /// Command name, exact bytes.
    #[serde(serialize_with = "bytes::serialize")]
    pub name: Vec<u8>,
    /// State letter.
    pub state: char,
    /// Threads.
    pub threads: i64,
    /// Resident memory, bytes.
    pub rss: u64,
    /// User CPU time, seconds.
    #[serde(serialize_with = "secs")]
    pub user_time: Duration,
    /// Kernel CPU time, seconds.
    #[serde(serialize_with = "secs")]
    pub kernel_time: Duration,
    /// Start time (seconds since the epoch).
    #[serde(serialize_with = "epoch_secs")]
    pub start_time: SystemTime,
    /// Nice value.
    pub nice: i64,
    /// Process group and session.
    pub pgrp: i32,
    /// Session.
    pub session: i32,
    /// Kernel thread.
    pub kernel_thread: bool,
    /// Command line (empty for kernel threads and zombies), exact bytes.
    #[serde(serialize_with = "bytes::serialize_list")]
    pub cmdline: Vec<Vec<u8>>,
    /// Its taskloom job, when asked for and in one.
    pub job: Option<String>,
}

pub(super) fn entry_from(stat: Stat, tgid: i32, uid: Option<u32>) -> ProcEntry {
    ProcEntry {
        pid: stat.pid,
        tgid,
        ppid: stat.ppid,
        uid,
        state: stat.state,
        threads: stat.num_threads,
        rss: stat.rss_pages.max(0) as u64 * page_size(),
        user_time: ticks(stat.utime),
        kernel_time: ticks(stat.stime),
        start_time: boot_time() + ticks(stat.starttime),
        nice: stat.nice,
        pgrp: stat.pgrp,
        session: stat.session,
        kernel_thread: stat.flags & PF_KTHREAD != 0,
        name: stat.comm,
        cmdline: Vec::new(),
        job: None,
    }
}

/// Lists every process (or thread) on the machine. Processes that end
/// during the listing are skipped; unreadable command lines are left empty.
///
/// Reading `/proc` is kernel work per process (formatting `stat`, walking
/// the target's memory for `cmdline`), so a large listing is split across
/// the CPUs this process may use; the rows come back in pid order.
pub fn snapshot(opts: SnapshotOptions) -> Result<Vec<ProcEntry>> {
    let pids = ProcReader::new()?.numeric_entries("");
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if workers < 2 || pids.len() < 64 {
        return snapshot_of(&pids, opts);
    }
    let chunk = pids.len().div_ceil(workers);
    std::thread::scope(|scope| {
        // A thread that cannot be made (EAGAIN at a process limit: a job's
        // member listing) leaves its part to this one: never a panic.
        let parts: Vec<_> = pids
            .chunks(chunk)
            .map(|part| {
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || snapshot_of(part, opts))
                    .map_err(|_| part)
            })
            .collect();
        let mut out = Vec::new();
        for p in parts {
            out.extend(match p {
                Ok(h) => h.join().map_err(|_| Error::InvalidInput {
                    what: "snapshot",
                    reason: "a worker panicked".into(),
                })??,
                Err(part) => snapshot_of(part, opts)?,
            });
        }
        Ok(out)
    })
}

fn snapshot_of(pids: &[i32], opts: SnapshotOptions) -> Result<Vec<ProcEntry>> {
    let mut r = ProcReader::new()?;
    let mut out = Vec::with_capacity(pids.len() * if opts.threads { 4 } else { 1 });
    let mut path = String::with_capacity(64);
    for &pid in pids {
        if opts.threads {
            threads_of(&mut r, pid, opts, &mut path, &mut out);
            continue;
        }
        // `<pid>/stat` first, with the owner from its open descriptor: three
        // syscalls; then the command line, except for kernel threads, which
        // have none.
        path.clear();
        push_num(&mut path, pid);
        path.push_str("/stat");
        let mut uid = None;
        let stat = match r.read_with_owner(&path, &mut uid) {
            Ok(b) => match parse::parse_stat(b) {
                Ok(s) => s,
                Err(_) => continue,
            },
            Err(_) => continue, // gone, or unreadable: skip, never fail the listing
        };
        let mut e = entry_from(stat, pid, uid);
        if opts.cmdline && !e.kernel_thread {
            e.cmdline = cmdline_of(&mut r, pid, &mut path);
        }
        if opts.job {
            e.job = job_of(pid);
        }
        out.push(e);
    }
    Ok(out)
}

/// `<pid>/cmdline` split into arguments; empty when it cannot be read.
fn cmdline_of(r: &mut ProcReader, pid: i32, path: &mut String) -> Vec<Vec<u8>> {
    path.clear();
    push_num(path, pid);
    path.push_str("/cmdline");
    r.read(path).map(parse::split_nul).unwrap_or_default()
}

fn push_num(s: &mut String, n: i32) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(s, "{n}");
}

fn job_of(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()
        .and_then(|t| crate::linux::job_name_seen_here(&t))
}

/// One row per thread of `pid`. The task directory has the process's owner;
/// the threads' files are opened relative to it.
fn threads_of(
    r: &mut ProcReader,
    pid: i32,
    opts: SnapshotOptions,
    path: &mut String,
    out: &mut Vec<ProcEntry>,
) {
    path.clear();
    push_num(path, pid);
    path.push_str("/task");
    let Some((tids, uid, task_dir)) = r.open_dir_entries(path) else {
        return;
    };
    let mut cmdline = Vec::new();
    let mut cmdline_read = !opts.cmdline;
    let job = if opts.job { job_of(pid) } else { None };
    for tid in tids {
        path.clear();
        push_num(path, tid);
        path.push_str("/stat");
        let stat = match r.read_at(task_dir.as_fd(), path) {
            Ok(b) => match parse::parse_stat(b) {
                Ok(s) => s,
                Err(_) => continue,
            },
            Err(_) => continue,
        };
        let mut e = entry_from(stat, pid, uid);
        if !cmdline_read {
            cmdline_read = true;
            if !e.kernel_thread {
                cmdline = cmdline_of(r, pid, path);
            }
        }
        e.cmdline = cmdline.clone();
        e.job = job.clone();
        out.push(e);
    }
}
