//! Inspection: the PEB/TEB/EPROCESS view of any process and thread, read
//! from `/proc` (nothing here writes anywhere).
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
//! # Ok::<(), taskloom::Error>(())
//! ```
#![allow(unsafe_code)] // one block (getdents64): ARCHITECTURE.md, "Invariants"

pub use crate::linux::{bytes, parse};

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use parse::{Mapping, PF_KTHREAD, Stat, Status};

use crate::error::{Error, Result};

/// A reusable reader of `/proc` files relative to an open `/proc` directory.
struct ProcReader {
    proc: OwnedFd,
    buf: Vec<u8>,
}

/// The owner uid of an open file (`fstat`).
fn owner_of(fd: BorrowedFd<'_>) -> Option<u32> {
    rustix::fs::fstat(fd).ok().map(|st| st.st_uid)
}

/// Why a file could not be read.
#[derive(Debug, PartialEq, Eq)]
enum ReadErr {
    /// The process is gone (ENOENT, ESRCH).
    Gone,
    /// Not permitted (EACCES, EPERM).
    Denied,
    /// Anything else.
    Other,
}

impl ProcReader {
    fn new() -> Result<Self> {
        let proc = rustix::fs::open(
            "/proc",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::os("open /proc", e.into()))?;
        Ok(ProcReader {
            proc,
            buf: Vec::with_capacity(4096),
        })
    }

    fn classify(e: rustix::io::Errno) -> ReadErr {
        match e {
            Errno::NOENT | Errno::SRCH => ReadErr::Gone,
            Errno::ACCESS | Errno::PERM => ReadErr::Denied,
            _ => ReadErr::Other,
        }
    }

    /// Reads `rel` (e.g. `123/stat`) into the internal buffer.
    fn read(&mut self, rel: &str) -> std::result::Result<&[u8], ReadErr> {
        read_into(&mut self.buf, self.proc.as_fd(), rel, None)?;
        Ok(&self.buf)
    }

    /// Reads `rel` relative to the directory `dir` into the internal buffer.
    fn read_at(&mut self, dir: BorrowedFd<'_>, rel: &str) -> std::result::Result<&[u8], ReadErr> {
        read_into(&mut self.buf, dir, rel, None)?;
        Ok(&self.buf)
    }

    /// As [`Self::read`], also storing the file's owner uid in `owner`: under
    /// `/proc/<pid>` every file has the process's owner (its effective uid,
    /// root when it is not dumpable), and `fstat` on the open file saves the
    /// path walk a separate `fstatat` of the directory would cost.
    fn read_with_owner(
        &mut self,
        rel: &str,
        owner: &mut Option<u32>,
    ) -> std::result::Result<&[u8], ReadErr> {
        read_into(&mut self.buf, self.proc.as_fd(), rel, Some(owner))?;
        Ok(&self.buf)
    }

    /// The owner uid of `/proc/<pid>` (the process's effective uid, or root when it is not dumpable).
    fn owner(&self, pid: &str) -> Option<u32> {
        rustix::fs::statat(&self.proc, pid, AtFlags::empty())
            .ok()
            .map(|st| st.st_uid)
    }

    fn readlink(&self, rel: &str) -> std::result::Result<Vec<u8>, ReadErr> {
        rustix::fs::readlinkat(&self.proc, rel, Vec::with_capacity(256))
            .map(|c| c.into_bytes())
            .map_err(Self::classify)
    }

    fn numeric_entries(&self, rel: &str) -> Vec<i32> {
        self.numeric_entries_and_owner(rel).0
    }

    /// As [`Self::numeric_entries_and_owner`], keeping the directory open for reads below it.
    fn open_dir_entries(&self, rel: &str) -> Option<(Vec<i32>, Option<u32>, OwnedFd)> {
        let (v, owner, fd) = self.list_dir(rel);
        Some((v, owner, fd?))
    }

    /// The numeric entries of a directory below `/proc` (`""` for `/proc`
    /// itself), and the directory's owner uid. One `getdents64` usually
    /// suffices: procfs fills the buffer until it runs out of entries, so a
    /// return with room for another entry to spare is the end.
    fn numeric_entries_and_owner(&self, rel: &str) -> (Vec<i32>, Option<u32>) {
        let (v, owner, _) = self.list_dir(rel);
        (v, owner)
    }

    fn list_dir(&self, rel: &str) -> (Vec<i32>, Option<u32>, Option<OwnedFd>) {
        let Ok(fd) = rustix::fs::openat(
            &self.proc,
            if rel.is_empty() { "." } else { rel },
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return (Vec::new(), None, None);
        };
        let owner = owner_of(fd.as_fd());
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // rustix's RawDir reads until getdents returns 0; procfs fills the
            // buffer in one call, so the loop below stops at a call that left
            // room to spare and saves that last call per directory (one per
            // process in a thread snapshot).
            // SAFETY: getdents64 into a buffer of the given size.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    fd.as_raw_fd(),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            if n <= 0 {
                break;
            }
            let n = n as usize;
            let mut off = 0;
            while off + 19 <= n {
                // struct linux_dirent64 { u64 ino; i64 off; u16 reclen; u8 type; char name[]; }
                let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
                if reclen == 0 || off + reclen > n {
                    break;
                }
                let name = &buf[off + 19..off + reclen];
                let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
                if let Some(v) = parse::parse_int::<i32>(name) {
                    out.push(v);
                }
                off += reclen;
            }
            if buf.len() - n > 512 {
                break;
            }
        }
        out.sort_unstable();
        (out, owner, Some(fd))
    }
}

/// Reads `rel` relative to the directory `dir` into `buf` (cleared first),
/// storing the file's owner uid in `owner` when asked.
fn read_into(
    buf: &mut Vec<u8>,
    dir: BorrowedFd<'_>,
    rel: &str,
    owner: Option<&mut Option<u32>>,
) -> std::result::Result<(), ReadErr> {
    let fd = rustix::fs::openat(dir, rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(ProcReader::classify)?;
    if let Some(owner) = owner {
        *owner = owner_of(fd.as_fd());
    }
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(buf.capacity().max(4096));
        }
        let spare = buf.capacity() - buf.len();
        let n = match rustix::io::read(&fd, rustix::buffer::spare_capacity(buf)) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(ProcReader::classify(e)),
        };
        // A /proc file hands over what it has in one read when the buffer is
        // large enough (seq_file and cmdline alike): a short read is the end,
        // which saves the second read that would return 0.
        if n == 0 || n < spare {
            return Ok(());
        }
    }
}

pub(crate) use crate::linux::{boot_time, ticks};

fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// The name of user `uid`, through NSS (`getpwuid_r`: files, LDAP, sssd …,
/// as the machine is set up; the same lookup a spawn `--user` uses), once
/// per uid per process.
pub fn user_name(uid: u32) -> Option<&'static str> {
    static USERS: Mutex<Option<HashMap<u32, Option<&'static str>>>> = Mutex::new(None);
    let mut users = USERS.lock().unwrap_or_else(|e| e.into_inner());
    *users
        .get_or_insert_with(HashMap::new)
        .entry(uid)
        // Leaked once per distinct uid, so callers may keep the name.
        .or_insert_with(|| crate::linux::user_name_of(uid).map(|n| &*Box::leak(n.into_boxed_str())))
}

/// Which fields a [`snapshot`] reads (each costs a file read per process).
#[derive(Debug, Clone, Copy, Default)]
pub struct SnapshotOptions {
    /// Read each command line.
    pub cmdline: bool,
    /// Read each process's cgroup to name its taskloom job.
    pub job: bool,
    /// List threads (one entry per thread) instead of processes.
    pub threads: bool,
}

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

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn epoch_secs<S: serde::Serializer>(t: &SystemTime, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    )
}

fn entry_from(stat: Stat, tgid: i32, uid: Option<u32>) -> ProcEntry {
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

/// How Windows would classify a process, with the Linux reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    /// An ordinary user process.
    Normal,
    /// A kernel thread (PF_KTHREAD): no user address space, like Windows' minimal processes.
    Minimal,
    /// Non-dumpable: its private `/proc` files are closed to other users.
    Protected,
    /// A foreign ABI (personality) or another pid namespace.
    Pico,
    /// It has exited and waits for its parent.
    Zombie,
}

/// One open descriptor (a handle table entry).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Handle {
    /// Descriptor number.
    pub fd: i32,
    /// file, directory, device, pipe, socket, eventfd, pidfd, epoll, signalfd, timerfd, inotify, anon, ...
    pub kind: &'static str,
    /// What it refers to (the `fd/N` link), exact bytes.
    #[serde(serialize_with = "bytes::serialize")]
    pub target: Vec<u8>,
    /// Open flags (octal in `fdinfo`), when readable.
    pub flags: Option<u32>,
    /// Close-on-exec.
    pub cloexec: Option<bool>,
}

fn handle_kind(target: &[u8]) -> &'static str {
    let t = target;
    let starts = |p: &str| t.starts_with(p.as_bytes());
    if starts("pipe:") {
        "pipe"
    } else if starts("socket:") {
        "socket"
    } else if starts("anon_inode:[eventfd]") {
        "eventfd"
    } else if starts("anon_inode:[pidfd]") || starts("pidfd:") {
        "pidfd"
    } else if starts("anon_inode:[eventpoll]") {
        "epoll"
    } else if starts("anon_inode:[signalfd]") {
        "signalfd"
    } else if starts("anon_inode:[timerfd]") {
        "timerfd"
    } else if starts("anon_inode:inotify") {
        "inotify"
    } else if starts("anon_inode:") {
        "anon"
    } else if starts("/dev/") {
        "device"
    } else if starts("/") {
        if std::fs::metadata(std::ffi::OsStr::new(
            &String::from_utf8_lossy(t).into_owned(),
        ))
        .is_ok_and(|m| m.is_dir())
        {
            "directory"
        } else {
            "file"
        }
    } else {
        "other"
    }
}

/// A mapped image (an entry of the loader's module list).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Module {
    /// Lowest mapped address.
    pub base: u64,
    /// From base to the end of the last mapping of the file.
    pub size: u64,
    /// The file, exact bytes.
    #[serde(serialize_with = "bytes::serialize")]
    pub path: Vec<u8>,
    /// Its GNU build-id in hex, read from the ELF notes of the file at
    /// `path` (the kernel does not report it), where readable.
    pub build_id: Option<String>,
}

/// Reads the build-id of a mapped image from its file. A file replaced on
/// disk since it was mapped (`(deleted)`) gives no id rather than a wrong one.
fn build_id(m: &Module) -> Option<String> {
    use std::io::Read;
    if m.path.ends_with(b" (deleted)") {
        return None;
    }
    let path = std::ffi::OsStr::from_bytes(&m.path);
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = vec![0u8; 64 * 1024];
    let n = f.read(&mut head).ok()?;
    let id = parse::elf_build_id(&head[..n])?;
    Some(id.iter().map(|b| format!("{b:02x}")).collect())
}

/// Modules from `maps`: file-backed mappings grouped by path, in address order.
pub fn modules_from_maps(maps: &[Mapping]) -> Vec<Module> {
    let mut out: Vec<Module> = Vec::new();
    for m in maps
        .iter()
        .filter(|m| m.inode != 0 && m.path.starts_with(b"/"))
    {
        match out.iter_mut().find(|x| x.path == m.path) {
            Some(x) => {
                let end = x.base.saturating_add(x.size).max(m.end);
                x.base = x.base.min(m.start);
                x.size = end - x.base;
            }
            None => out.push(Module {
                base: m.start,
                size: m.end.saturating_sub(m.start),
                path: m.path.clone(),
                build_id: None,
            }),
        }
    }
    out.sort_by_key(|m| m.base);
    out
}

/// The security token: identities, capabilities, restrictions.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Token {
    /// Real, effective, saved, filesystem uid.
    pub uid: [u32; 4],
    /// Real, effective, saved, filesystem gid.
    pub gid: [u32; 4],
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Effective capabilities, by name.
    pub effective: Vec<String>,
    /// Permitted capabilities.
    pub permitted: Vec<String>,
    /// Inheritable capabilities.
    pub inheritable: Vec<String>,
    /// Bounding set.
    pub bounding: Vec<String>,
    /// Ambient set.
    pub ambient: Vec<String>,
    /// `no_new_privs`.
    pub no_new_privs: bool,
    /// Seccomp: disabled, strict, filter.
    pub seccomp: &'static str,
    /// LSM label (`attr/current`), when an LSM is active.
    pub lsm_label: Option<String>,
}

/// One thread (TEB/ETHREAD view).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ThreadInfo {
    /// Thread id.
    pub tid: i32,
    /// Name, exact bytes.
    #[serde(serialize_with = "bytes::serialize")]
    pub name: Vec<u8>,
    /// State letter.
    pub state: char,
    /// Kernel priority and nice.
    pub priority: i64,
    /// Nice.
    pub nice: i64,
    /// Scheduling policy name.
    pub policy: &'static str,
    /// Allowed CPUs.
    pub affinity: String,
    /// CPU it last ran on.
    pub last_cpu: i32,
    /// User CPU time, seconds.
    #[serde(serialize_with = "secs")]
    pub user_time: Duration,
    /// Kernel CPU time, seconds.
    #[serde(serialize_with = "secs")]
    pub kernel_time: Duration,
    /// Voluntary context switches.
    pub voluntary_switches: u64,
    /// Involuntary context switches.
    pub involuntary_switches: u64,
    /// Where it sleeps in the kernel (`wchan`), where permitted.
    pub wait_channel: Option<String>,
    /// Kernel stack (`stack`; root only).
    pub kernel_stack: Option<Vec<String>>,
    /// Stack range (the main thread's `[stack]` mapping).
    pub stack: Option<(u64, u64)>,
}

fn policy_name(p: u32) -> &'static str {
    match p {
        0 => "other",
        1 => "fifo",
        2 => "rr",
        3 => "batch",
        5 => "idle",
        6 => "deadline",
        _ => "unknown",
    }
}

/// Every section of one process (PEB + EPROCESS + token + threads).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcessInfo {
    /// The basic row (stat).
    #[serde(flatten)]
    pub basic: ProcEntry,
    /// The image path (`exe`), exact bytes.
    #[serde(serialize_with = "opt_bytes")]
    pub image: Option<Vec<u8>>,
    /// Current directory, exact bytes.
    #[serde(serialize_with = "opt_bytes")]
    pub cwd: Option<Vec<u8>>,
    /// Environment, exact bytes.
    #[serde(serialize_with = "opt_bytes_list")]
    pub environment: Option<Vec<Vec<u8>>>,
    /// The tracer's pid, if being debugged.
    pub debugger: Option<i32>,
    /// Memory: virtual, resident, peak resident, private (anonymous resident), bytes.
    pub memory: Option<Memory>,
    /// Page faults (minor, major).
    pub page_faults: (u64, u64),
    /// I/O counters (`io`), where permitted.
    pub io: Option<IoCounters>,
    /// Mapped images.
    pub modules: Option<Vec<Module>>,
    /// Open descriptors.
    pub handles: Option<Vec<Handle>>,
    /// Identities and privileges.
    pub token: Option<Token>,
    /// Cgroup membership lines, and the taskloom job if it is in one.
    pub cgroups: Option<Vec<String>>,
    /// Classification, and why.
    pub classification: Classification,
    /// Why it was classified so.
    pub classification_reason: String,
    /// Exit code of a zombie (`waitpid` encoding).
    pub exit_code: Option<i32>,
    /// Threads.
    pub thread_list: Option<Vec<ThreadInfo>>,
    /// Sections that could not be read for lack of permission.
    pub denied: Vec<&'static str>,
}

/// Memory counters of a process.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Memory {
    /// Virtual size.
    pub virtual_bytes: u64,
    /// Resident now.
    pub resident: u64,
    /// Peak resident.
    pub peak_resident: Option<u64>,
    /// Private resident (anonymous).
    pub private: Option<u64>,
}

/// `/proc/<pid>/io`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct IoCounters {
    /// Bytes read (all sources).
    pub read_chars: u64,
    /// Bytes written.
    pub write_chars: u64,
    /// Read system calls.
    pub read_calls: u64,
    /// Write system calls.
    pub write_calls: u64,
    /// Bytes read from storage.
    pub read_bytes: u64,
    /// Bytes written to storage.
    pub write_bytes: u64,
}

fn opt_bytes<S: serde::Serializer>(
    v: &Option<Vec<u8>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(b) => bytes::serialize(b, s),
        None => s.serialize_none(),
    }
}

fn opt_bytes_list<S: serde::Serializer>(
    v: &Option<Vec<Vec<u8>>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(b) => bytes::serialize_list(b, s),
        None => s.serialize_none(),
    }
}

/// `<pid>/stat`, parsed: `NoSuchProcess` when it cannot be read.
fn read_stat(r: &mut ProcReader, p: &str, pid: i32) -> Result<Stat> {
    match r.read(&format!("{p}/stat")) {
        Ok(b) => parse::parse_stat(b).map_err(|e| Error::InvalidInput {
            what: "/proc/<pid>/stat",
            reason: e.to_string(),
        }),
        Err(_) => Err(Error::NoSuchProcess { pid }),
    }
}

/// Reads every section of process `pid`.
pub fn inspect(pid: i32) -> Result<ProcessInfo> {
    let mut r = ProcReader::new()?;
    let p = pid.to_string();
    let stat = read_stat(&mut r, &p, pid)?;
    let uid = r.owner(&p);
    let mut denied = Vec::new();
    let mut section =
        |name: &'static str, res: std::result::Result<Vec<u8>, ReadErr>| -> Option<Vec<u8>> {
            match res {
                Ok(b) => Some(b),
                Err(ReadErr::Denied) => {
                    denied.push(name);
                    None
                }
                Err(_) => None,
            }
        };
    let status_bytes = section("status", r.read(&format!("{p}/status")).map(<[u8]>::to_vec));
    let status: Option<Status> = status_bytes.as_deref().map(parse::parse_status);
    let cmdline = section(
        "cmdline",
        r.read(&format!("{p}/cmdline")).map(<[u8]>::to_vec),
    )
    .map(|b| parse::split_nul(&b))
    .unwrap_or_default();
    let environment = section(
        "environment",
        r.read(&format!("{p}/environ")).map(<[u8]>::to_vec),
    )
    .map(|b| parse::split_nul(&b));
    let image = section("image", r.readlink(&format!("{p}/exe")));
    let cwd = section("cwd", r.readlink(&format!("{p}/cwd")));
    let maps = section("modules", r.read(&format!("{p}/maps")).map(<[u8]>::to_vec))
        .map(|b| parse::parse_maps(&b));
    let io = section("io", r.read(&format!("{p}/io")).map(<[u8]>::to_vec)).map(|b| {
        let f = |k| {
            parse::status_field(&b, k)
                .and_then(parse::parse_int::<u64>)
                .unwrap_or(0)
        };
        IoCounters {
            read_chars: f("rchar"),
            write_chars: f("wchar"),
            read_calls: f("syscr"),
            write_calls: f("syscw"),
            read_bytes: f("read_bytes"),
            write_bytes: f("write_bytes"),
        }
    });
    let cgroup_text = section(
        "cgroups",
        r.read(&format!("{p}/cgroup")).map(<[u8]>::to_vec),
    )
    .map(|b| String::from_utf8_lossy(&b).into_owned());
    let lsm_label = r
        .read(&format!("{p}/attr/current"))
        .ok()
        .map(|b| {
            String::from_utf8_lossy(b)
                .trim_end_matches(['\n', '\0'])
                .to_owned()
        })
        .filter(|s| !s.is_empty());

    // Handles.
    let handles = match std::fs::read_dir(format!("/proc/{p}/fd")) {
        Ok(dir) => {
            let mut fds: Vec<i32> = dir
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect();
            fds.sort_unstable();
            Some(
                fds.into_iter()
                    .filter_map(|fd| {
                        let target = r.readlink(&format!("{p}/fd/{fd}")).ok()?;
                        let flags = r
                            .read(&format!("{p}/fdinfo/{fd}"))
                            .ok()
                            .and_then(parse::fdinfo_flags);
                        Some(Handle {
                            fd,
                            kind: handle_kind(&target),
                            target,
                            flags,
                            cloexec: flags.map(|f| f & libc::O_CLOEXEC as u32 != 0),
                        })
                    })
                    .collect(),
            )
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            denied.push("handles");
            None
        }
        Err(_) => None,
    };

    let mut basic = entry_from(stat.clone(), pid, uid);
    basic.cmdline = cmdline;
    basic.job = cgroup_text
        .as_deref()
        .and_then(crate::linux::job_name_seen_here);

    let (classification, classification_reason) = classify(&stat, status.as_ref(), uid, &mut r, &p);
    let token = status.as_ref().map(|s| Token {
        uid: s.uid,
        gid: s.gid,
        groups: s.groups.clone(),
        effective: parse::capability_names(s.cap_eff),
        permitted: parse::capability_names(s.cap_prm),
        inheritable: parse::capability_names(s.cap_inh),
        bounding: parse::capability_names(s.cap_bnd),
        ambient: parse::capability_names(s.cap_amb),
        no_new_privs: s.no_new_privs,
        seccomp: match s.seccomp {
            0 => "disabled",
            1 => "strict",
            _ => "filter",
        },
        lsm_label,
    });
    let stack_range = maps.as_ref().and_then(|m| {
        m.iter()
            .find(|x| x.path == b"[stack]")
            .map(|x| (x.start, x.end))
    });
    let thread_list = Some(threads_in(&mut r, pid, stack_range));
    Ok(ProcessInfo {
        image,
        cwd,
        environment,
        debugger: status.as_ref().map(|s| s.tracer_pid).filter(|&t| t != 0),
        memory: Some(Memory {
            virtual_bytes: stat.vsize,
            resident: basic.rss,
            peak_resident: status.as_ref().and_then(|s| s.vm_hwm),
            private: status.as_ref().and_then(|s| s.rss_anon),
        }),
        page_faults: (stat.minflt, stat.majflt),
        io,
        modules: maps.as_deref().map(|maps| {
            let mut mods = modules_from_maps(maps);
            for m in &mut mods {
                m.build_id = build_id(m);
            }
            mods
        }),
        handles,
        token,
        cgroups: cgroup_text.map(|t| t.lines().map(str::to_owned).collect()),
        classification,
        classification_reason,
        exit_code: if stat.state == 'Z' {
            stat.exit_code
        } else {
            None
        },
        thread_list,
        denied,
        basic,
    })
}

/// How Windows would classify process `pid` (minimal, protected, pico,
/// zombie or normal) and why, from its `stat`, `status` and `personality`
/// alone: the part of [`inspect`] a live view needs once per process.
pub fn classification(pid: i32) -> Result<(Classification, String)> {
    let mut r = ProcReader::new()?;
    let p = pid.to_string();
    let stat = read_stat(&mut r, &p, pid)?;
    let uid = r.owner(&p);
    let status = r.read(&format!("{p}/status")).ok().map(parse::parse_status);
    Ok(classify(&stat, status.as_ref(), uid, &mut r, &p))
}

fn classify(
    stat: &Stat,
    status: Option<&Status>,
    owner: Option<u32>,
    r: &mut ProcReader,
    p: &str,
) -> (Classification, String) {
    if stat.state == 'Z' {
        return (
            Classification::Zombie,
            "it has exited and its parent has not waited for it".into(),
        );
    }
    if stat.flags & PF_KTHREAD != 0 {
        return (
            Classification::Minimal,
            "kernel thread (PF_KTHREAD): no user address space".into(),
        );
    }
    if let Some(s) = status {
        if s.nspid.len() > 1 {
            return (
                Classification::Pico,
                format!(
                    "runs in a nested pid namespace (pids {:?}, outermost first)",
                    s.nspid
                ),
            );
        }
        if let Ok(b) = r.read(&format!("{p}/personality")) {
            let text = String::from_utf8_lossy(b).trim().to_owned();
            if let Ok(v) = u32::from_str_radix(&text, 16)
                && v & 0xff != 0
            {
                return (Classification::Pico, format!("foreign personality {v:#x}"));
            }
        }
        // /proc/<pid> belongs to root when the process is not dumpable.
        if owner == Some(0) && s.uid[1] != 0 {
            return (
                Classification::Protected,
                "not dumpable: its /proc files belong to root although it runs as another user"
                    .into(),
            );
        }
    }
    (Classification::Normal, "an ordinary user process".into())
}

fn threads_in(r: &mut ProcReader, pid: i32, main_stack: Option<(u64, u64)>) -> Vec<ThreadInfo> {
    let tids = r.numeric_entries(&format!("{pid}/task"));
    let mut out = Vec::new();
    for tid in tids {
        let base = format!("{pid}/task/{tid}");
        let Ok(stat) = r.read(&format!("{base}/stat")).map(parse::parse_stat) else {
            continue;
        };
        let Ok(stat) = stat else { continue };
        let status = r
            .read(&format!("{base}/status"))
            .ok()
            .map(parse::parse_status);
        let wait_channel = r
            .read(&format!("{base}/wchan"))
            .ok()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .filter(|s| !s.is_empty() && s != "0");
        let kernel_stack = r.read(&format!("{base}/stack")).ok().map(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .map(str::to_owned)
                .collect()
        });
        out.push(ThreadInfo {
            tid,
            state: stat.state,
            priority: stat.priority,
            nice: stat.nice,
            policy: policy_name(stat.policy),
            affinity: status
                .as_ref()
                .map(|s| s.cpus_allowed_list.clone())
                .unwrap_or_default(),
            last_cpu: stat.processor,
            user_time: ticks(stat.utime),
            kernel_time: ticks(stat.stime),
            voluntary_switches: status.as_ref().map_or(0, |s| s.voluntary_switches),
            involuntary_switches: status.as_ref().map_or(0, |s| s.involuntary_switches),
            wait_channel,
            kernel_stack,
            stack: if tid == pid { main_stack } else { None },
            name: stat.comm,
        });
    }
    out
}

/// The threads of one process (TEB view).
pub fn threads(pid: i32) -> Result<Vec<ThreadInfo>> {
    let mut r = ProcReader::new()?;
    if r.read(&format!("{pid}/stat")).is_err() {
        return Err(Error::NoSuchProcess { pid });
    }
    Ok(threads_in(&mut r, pid, None))
}
