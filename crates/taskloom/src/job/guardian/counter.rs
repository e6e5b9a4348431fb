//! The job's process counter: `TotalProcesses` kept by the job itself.
//!
//! Linux keeps no count of the processes a cgroup ever had. Every
//! outermost cgroup job gets a counter: its guardian, which then polls the
//! holders' pipe and the events socket together ([`count_until`]), or,
//! for a job without one, a guardian that only counts
//! ([`start_counting`](super::start_counting)). The counter is a leaf: it
//! knows nothing of the guardian that runs it.
//! It listens to the kernel's process events ([`Connector`]: any user since
//! Linux 6.6, root before) and counts each process a member starts, in the
//! member's job and every enclosing job up to the top, as the extended
//! attribute `user.taskloom.forks` of each job's cgroup2 directory.
//! Processes a handle puts in (a spawn, an assignment) are counted by that
//! handle, under a lock, as `user.taskloom.entered` ([`count_entered`]):
//! the counter cannot tell them from the events alone. A job's total is the
//! sum of both; [`total`] answers it while the counter runs.
//!
//! How the counter decides: for each new process (not thread) it looks up
//! the parent in its table of members; a parent it does not know it looks
//! up once in `/proc/<pid>/cgroup` and remembers as member or outsider (an
//! assignment bumps `user.taskloom.assigning` before and after the move,
//! which makes it forget the outsiders and remember none for a second). A member's new process is counted in the jobs that hold
//! both the parent and the child (a member that spawns into a nested job
//! through a handle is counted there by the handle instead). Exits remove
//! processes from the tables. When events were lost (the socket's buffer
//! overflowed) the count is marked lost and no longer reported. The counter
//! ends when the job's directory is gone (checked twice a second).
//!
//! The counter is forked from a possibly multi-threaded process, so from
//! the fork on it only makes raw syscalls on memory prepared before the
//! fork, and never panics (every index is checked). One of taskloom's few
//! unsafe modules.
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, OrLog, Result};
use crate::job::connector::{self, Connector, ProcEvent};

/// Processes members started, per job (written by the counter only).
const FORKS: &str = "user.taskloom.forks";
/// Processes handles put in, per job (written under `flock` of the directory).
const ENTERED: &str = "user.taskloom.entered";
/// The counter of a top-level job: `<pid> <start time>`.
const COUNTER: &str = "user.taskloom.counter";
/// Bumped before each assignment into the job: the counter forgets outsiders.
const ASSIGNING: &str = "user.taskloom.assigning";
/// Set by the counter when events were lost.
const LOST: &str = "user.taskloom.count_lost";

/// Slots of each pid table (a power of two): members and outsiders.
const TABLE: usize = 1 << 16;
const EMPTY: i32 = 0;
const GONE: i32 = -1;

/// What a counter needs, made before the fork of the process that runs it
/// (this module's own, or a job's guardian): the subscribed socket and the
/// tables. `None` where this process gets no process events.
#[derive(Debug)]
pub(crate) struct Prepared {
    sock: OwnedFd,
    state: State,
}

pub(crate) fn prepare() -> Option<Prepared> {
    let sock = Connector::open().ok()?.into_fd();
    Some(Prepared {
        sock,
        state: State {
            top_dir: vec![0u8; PATH_BUF],
            top_dir_len: 0,
            top_shown: vec![0u8; PATH_BUF],
            top_shown_len: 0,
            members: Table::new(),
            outsiders: Table::new(),
            scratch: vec![EMPTY; TABLE],
            path: vec![0u8; 2 * PATH_BUF],
            fresh_until: 0,
        },
    })
}

impl Prepared {
    /// The socket, for a forked process to keep open.
    pub(crate) fn raw_sock(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Names the job to count: [`State::set_paths`].
    pub(crate) fn set_paths(&mut self, dir: &std::ffi::CStr, shown: &[u8]) -> bool {
        self.state.set_paths(dir, shown)
    }
}

/// Records on the top job's directory that process `pid` counts for it.
pub(crate) fn record(dir: &Path, pid: i32) -> Result<()> {
    let record = format!("{pid} {}", start_time(pid).unwrap_or(0));
    rustix::fs::setxattr(
        dir,
        COUNTER,
        record.as_bytes(),
        rustix::fs::XattrFlags::empty(),
    )
    .map_err(|e| {
        Error::os(
            format!("record the process counter on {}", dir.display()),
            e.into(),
        )
    })
}

/// How [`count_until`] ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Every write end of the holder pipe is closed (kill-on-close is due).
    HolderClosed,
    /// The job's directory is gone: nothing is left to count.
    JobGone,
}

/// Counts for the job whose paths `p` holds (set with
/// [`State::set_paths`]) until its directory is gone or, with a `holder`
/// read end (not -1), until every write end of it is closed.
///
/// # Safety
/// Raw syscalls only, on memory prepared before the fork; callable in a
/// forked child.
pub(crate) unsafe fn count_until(p: &mut Prepared, holder: RawFd) -> Ended {
    let sock = p.sock.as_raw_fd();
    let st = &mut p.state;
    let top = st.top_dir.as_ptr().cast::<libc::c_char>();
    // SAFETY: raw syscalls on the prepared buffers (NUL-terminated paths).
    unsafe {
        let mut generation = get_xattr_u64(top, b"user.taskloom.assigning\0");
        let mut checked = now_ms();
        let mut buf = [0u8; 32 * 1024];
        loop {
            let mut pfds = [
                libc::pollfd {
                    fd: sock,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: holder,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let nfds = if holder >= 0 { 2 } else { 1 };
            let ready = libc::poll(pfds.as_mut_ptr(), nfds, 500);
            let now = now_ms();
            if ready == 0 || now.wrapping_sub(checked) >= 500 {
                checked = now;
                let mut s = std::mem::MaybeUninit::<libc::stat>::uninit();
                if libc::stat(top, s.as_mut_ptr()) != 0 {
                    return Ended::JobGone;
                }
            }
            if ready <= 0 {
                continue;
            }
            if holder >= 0 && pfds[1].revents != 0 {
                let mut byte = [0u8; 64];
                let n = libc::read(holder, byte.as_mut_ptr().cast(), byte.len());
                if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                    return Ended::HolderClosed;
                }
            }
            if pfds[0].revents == 0 {
                continue;
            }
            loop {
                let n = libc::recv(sock, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT);
                if n < 0 {
                    match *libc::__errno_location() {
                        libc::EINTR => continue,
                        libc::ENOBUFS => {
                            set_xattr_u64(top, b"user.taskloom.count_lost\0", 1);
                            continue;
                        }
                        _ => break,
                    }
                }
                // An assignment may have moved an outsider in: forget them.
                let g = get_xattr_u64(top, b"user.taskloom.assigning\0");
                if g != generation {
                    generation = g;
                    st.outsiders.clear();
                    st.fresh_until = now_ms().wrapping_add(1000);
                }
                handle_messages(st, buf.get(..n as usize).unwrap_or(&[]));
            }
        }
    }
}

/// Whether this process may receive process events here (what a counter
/// needs): `Err` says why not.
pub(crate) fn available() -> io::Result<()> {
    Connector::open().map(drop)
}

/// The total processes the job whose job directories are `chain`
/// (outermost first, the job's own last) has had: `None` when no counter
/// runs for it (none could start, it ended, or it lost events).
pub(crate) fn total(chain: &[PathBuf]) -> Option<u64> {
    let (top, own) = (chain.first()?, chain.last()?);
    let record = xattr(top, COUNTER)?;
    let mut parts = record.split_whitespace();
    let pid: i32 = parts.next()?.parse().ok()?;
    let started: u64 = parts.next()?.parse().ok()?;
    if start_time(pid) != Some(started) || xattr(top, LOST).is_some() {
        return None;
    }
    let n = |name| xattr(own, name).and_then(|v| v.trim().parse::<u64>().ok());
    Some(n(FORKS).unwrap_or(0) + n(ENTERED).unwrap_or(0))
}

/// Counts a process a handle put in (spawned or assigned) in every job of
/// `chain` that did not hold it already: those that do not contain
/// `came_from()`, the cgroup2 directory the process (or, for a spawn, its
/// spawner) was in. Only where the top job has a counter (one attribute
/// read otherwise).
pub(crate) fn count_entered(chain: &[PathBuf], came_from: impl FnOnce() -> Option<PathBuf>) {
    let Some(top) = chain.first() else { return };
    if xattr(top, COUNTER).is_none() {
        return;
    }
    let came_from = came_from();
    let came_from = came_from.as_deref();
    for dir in chain {
        if came_from.is_some_and(|from| from.starts_with(dir)) {
            continue;
        }
        bump(dir, ENTERED).or_log(|| format!("count a process entering {}", dir.display()));
    }
}

/// A job moved (nested on assignment) from directory `from` to the fresh
/// directory `to`: the processes counted at its old place go with it.
pub(crate) fn carry_over(from: &Path, to: &Path) {
    let n = |name| xattr(from, name).and_then(|v| v.trim().parse::<u64>().ok());
    let had = n(FORKS).unwrap_or(0) + n(ENTERED).unwrap_or(0);
    if had > 0 {
        rustix::fs::setxattr(
            to,
            ENTERED,
            had.to_string().as_bytes(),
            rustix::fs::XattrFlags::empty(),
        )
        .or_log(|| format!("carry the process count over to {}", to.display()));
    }
}

/// Moves a process into the job whose directories are `chain` (`move_in`)
/// and counts it in each of them that did not hold it (`came_from`: where
/// it was). The job's counter is told before the move and again after it:
/// it forgets the processes it knows to be outside, and for a second after
/// each remembers none (the process may be looked up between the
/// announcement and the move).
pub(crate) fn counted_move(
    chain: &[PathBuf],
    came_from: Option<PathBuf>,
    move_in: impl FnOnce() -> Result<()>,
) -> Result<()> {
    assigning(chain);
    let moved = move_in();
    assigning(chain);
    moved?;
    count_entered(chain, || came_from);
    Ok(())
}

fn assigning(chain: &[PathBuf]) {
    let Some(top) = chain.first() else { return };
    if xattr(top, COUNTER).is_some() {
        bump(top, ASSIGNING).or_log(|| format!("tell the counter of {}", top.display()));
    }
}

/// Adds one to the number in attribute `name` of `dir`, under an exclusive
/// `flock` of the directory (other handles in other processes do the same).
fn bump(dir: &Path, name: &str) -> io::Result<()> {
    use rustix::fs::{FlockOperation, Mode, OFlags, XattrFlags};
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::fs::flock(&fd, FlockOperation::LockExclusive)?;
    let mut buf = [0u8; 24];
    let now = match rustix::fs::fgetxattr(&fd, name, &mut buf) {
        Ok(n) => std::str::from_utf8(&buf[..n])
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0),
        Err(_) => 0,
    };
    rustix::fs::fsetxattr(
        &fd,
        name,
        (now + 1).to_string().as_bytes(),
        XattrFlags::empty(),
    )?;
    Ok(())
}

fn xattr(dir: &Path, name: &str) -> Option<String> {
    let mut buf = [0u8; 64];
    let n = rustix::fs::getxattr(dir, name, &mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// A process's start time (clock ticks after boot), to tell it from a later
/// process with its number.
fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read(format!("/proc/{pid}/stat")).ok()?;
    crate::linux::parse::parse_stat(&stat)
        .ok()
        .map(|s| s.starttime)
}

/// A set of pids, open addressing with linear probing, that never allocates.
struct Table {
    slots: Vec<i32>,
    /// Slots not `EMPTY` (members and `GONE` marks).
    used: usize,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("used", &self.used).finish()
    }
}

impl Table {
    fn new() -> Table {
        Table {
            slots: vec![EMPTY; TABLE],
            used: 0,
        }
    }

    fn home(pid: i32) -> usize {
        (pid as u32).wrapping_mul(0x9E37_79B9) as usize & (TABLE - 1)
    }

    fn contains(&self, pid: i32) -> bool {
        let mut at = Table::home(pid);
        for _ in 0..TABLE {
            match self.slots.get(at).copied() {
                Some(EMPTY) | None => return false,
                Some(p) if p == pid => return true,
                _ => at = (at + 1) & (TABLE - 1),
            }
        }
        false
    }

    /// Adds `pid`; `false` when the table is full (the caller then counts less exactly).
    fn insert(&mut self, pid: i32, scratch: &mut [i32]) -> bool {
        if pid <= 0 || self.contains(pid) {
            return pid > 0;
        }
        if self.used >= TABLE / 4 * 3 {
            self.rebuild(scratch);
            if self.used >= TABLE / 4 * 3 {
                return false;
            }
        }
        let mut at = Table::home(pid);
        for _ in 0..TABLE {
            match self.slots.get_mut(at) {
                Some(slot) if *slot == EMPTY => {
                    *slot = pid;
                    self.used += 1;
                    return true;
                }
                Some(slot) if *slot == GONE => {
                    *slot = pid;
                    return true;
                }
                _ => at = (at + 1) & (TABLE - 1),
            }
        }
        false
    }

    fn remove(&mut self, pid: i32) {
        let mut at = Table::home(pid);
        for _ in 0..TABLE {
            match self.slots.get_mut(at) {
                Some(slot) if *slot == EMPTY => return,
                Some(slot) if *slot == pid => {
                    *slot = GONE;
                    return;
                }
                None => return,
                _ => at = (at + 1) & (TABLE - 1),
            }
        }
    }

    fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.used = 0;
    }

    /// Drops the `GONE` marks: the live pids go through `scratch` and back.
    fn rebuild(&mut self, scratch: &mut [i32]) {
        let mut n = 0;
        for &p in self.slots.iter() {
            if p > 0
                && let Some(s) = scratch.get_mut(n)
            {
                *s = p;
                n += 1;
            }
        }
        self.clear();
        for i in 0..n {
            if let Some(&p) = scratch.get(i) {
                let mut at = Table::home(p);
                while let Some(slot) = self.slots.get_mut(at) {
                    if *slot == EMPTY {
                        *slot = p;
                        self.used += 1;
                        break;
                    }
                    at = (at + 1) & (TABLE - 1);
                }
            }
        }
    }
}

/// The longest path a counter takes (longer job paths are not counted).
const PATH_BUF: usize = 4096;

/// Everything the counter works on, prepared before the fork.
#[derive(Debug)]
pub(crate) struct State {
    /// The top job's cgroup2 directory, NUL-terminated.
    top_dir: Vec<u8>,
    top_dir_len: usize,
    /// The top job's cgroup path as `/proc/<pid>/cgroup` shows it here.
    top_shown: Vec<u8>,
    top_shown_len: usize,
    members: Table,
    outsiders: Table,
    scratch: Vec<i32>,
    /// Where job directory paths are put together.
    path: Vec<u8>,
    /// Until when (monotonic ms) no outsider is remembered: an assignment
    /// announced itself and its process may not have moved yet.
    fresh_until: u64,
}

impl State {
    /// Sets the top job's directory and its path as `/proc` shows it,
    /// copying into the prepared buffers (no allocation: callable in a
    /// forked child). `false` when they do not fit.
    pub(crate) fn set_paths(&mut self, dir: &std::ffi::CStr, shown: &[u8]) -> bool {
        let dir = dir.to_bytes();
        let mut shown = shown;
        if shown.len() > 1 && shown.ends_with(b"/") {
            shown = shown.get(..shown.len() - 1).unwrap_or(shown);
        }
        let (Some(d), Some(s)) = (
            self.top_dir.get_mut(..dir.len() + 1),
            self.top_shown.get_mut(..shown.len()),
        ) else {
            return false;
        };
        if let Some((nul, body)) = d.split_last_mut() {
            body.copy_from_slice(dir);
            *nul = 0;
        }
        s.copy_from_slice(shown);
        self.top_dir_len = dir.len();
        self.top_shown_len = shown.len();
        true
    }
}

/// Whether `path` (a cgroup path from `/proc`) is `top` or below it.
fn below(path: &[u8], top: &[u8]) -> bool {
    path.starts_with(top)
        && (path.len() == top.len() || path.get(top.len()) == Some(&b'/') || top == b"/")
}

/// The longest common prefix of two cgroup paths, by whole components.
fn common<'a>(a: &'a [u8], b: &[u8]) -> &'a [u8] {
    let mut end = 0;
    let mut i = 0;
    while i < a.len() && i < b.len() && a.get(i) == b.get(i) {
        i += 1;
        if a.get(i).is_none_or(|&c| c == b'/') && b.get(i).is_none_or(|&c| c == b'/') {
            end = i;
        }
    }
    a.get(..end).unwrap_or(a)
}

/// Writes `n` in decimal into `out`; returns the length.
fn itoa(mut n: u64, out: &mut [u8; 24]) -> usize {
    let mut tmp = [0u8; 24];
    let mut len = 0;
    loop {
        if let Some(t) = tmp.get_mut(len) {
            *t = b'0' + (n % 10) as u8;
        }
        len += 1;
        n /= 10;
        if n == 0 || len >= tmp.len() {
            break;
        }
    }
    for i in 0..len {
        if let (Some(o), Some(&t)) = (out.get_mut(i), tmp.get(len - 1 - i)) {
            *o = t;
        }
    }
    len
}

fn parse_u64(b: &[u8]) -> u64 {
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            break;
        }
        v = v.wrapping_mul(10).wrapping_add((c - b'0') as u64);
    }
    v
}

/// # Safety
/// Raw syscalls only; callable from the counter.
unsafe fn get_xattr_u64(path: *const libc::c_char, name: &[u8]) -> u64 {
    let mut buf = [0u8; 24];
    // SAFETY: NUL-terminated strings and a stack buffer of the given size.
    let n = unsafe {
        libc::getxattr(
            path,
            name.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n <= 0 {
        return 0;
    }
    parse_u64(buf.get(..n as usize).unwrap_or(&[]))
}

/// # Safety
/// Raw syscalls only; callable from the counter.
unsafe fn set_xattr_u64(path: *const libc::c_char, name: &[u8], v: u64) {
    let mut buf = [0u8; 24];
    let n = itoa(v, &mut buf);
    // SAFETY: NUL-terminated strings and a stack buffer of `n` bytes.
    unsafe { libc::setxattr(path, name.as_ptr().cast(), buf.as_ptr().cast(), n, 0) };
}

/// Reads the cgroup2 path of `pid` from `/proc/<pid>/cgroup` into `out`;
/// returns its length, or `None` when the process is gone.
///
/// # Safety
/// Raw syscalls only; callable from the counter.
unsafe fn cgroup_of(pid: i32, out: &mut [u8; 4096]) -> Option<usize> {
    let mut name = [0u8; 40];
    let mut num = [0u8; 24];
    let n = itoa(pid as u64, &mut num);
    let mut at = 0;
    for part in [b"/proc/".as_slice(), num.get(..n)?, b"/cgroup\0"] {
        for &c in part {
            *name.get_mut(at)? = c;
            at += 1;
        }
    }
    let mut text = [0u8; 4096];
    // SAFETY: a NUL-terminated path on the stack; read into a stack buffer.
    let len = unsafe {
        let fd = libc::open(name.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let len = libc::read(fd, text.as_mut_ptr().cast(), text.len());
        libc::close(fd);
        len
    };
    if len <= 0 {
        return None;
    }
    let text = text.get(..len as usize)?;
    for line in text.split(|&c| c == b'\n') {
        if let Some(path) = line.strip_prefix(b"0::") {
            out.get_mut(..path.len())?.copy_from_slice(path);
            return Some(path.len());
        }
    }
    None
}

fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1000) + (ts.tv_nsec as u64) / 1_000_000
}

/// Handles one buffer of netlink messages carrying `proc_event`s.
fn handle_messages(st: &mut State, b: &[u8]) {
    connector::for_each_event(b, |event| match event {
        // SAFETY: called in the counter, as `on_fork` requires.
        ProcEvent::Fork { parent, child } => unsafe { on_fork(st, parent, child) },
        ProcEvent::Exit { pid, .. } => {
            st.members.remove(pid);
            st.outsiders.remove(pid);
        }
    });
}

/// A new process `child` of `parent`.
///
/// # Safety
/// Raw syscalls only; callable from the counter.
unsafe fn on_fork(st: &mut State, parent: i32, child: i32) {
    if st.outsiders.contains(parent) {
        return;
    }
    let known = st.members.contains(parent);
    let (mut pbuf, mut cbuf) = ([0u8; 4096], [0u8; 4096]);
    // SAFETY: raw reads of /proc into stack buffers.
    let (pp, cp) = unsafe { (cgroup_of(parent, &mut pbuf), cgroup_of(child, &mut cbuf)) };
    let pp = pp.and_then(|n| pbuf.get(..n));
    let cp = cp.and_then(|n| cbuf.get(..n));
    let top_len = st.top_shown_len;
    let top = st.top_shown.get(..top_len).unwrap_or(&[]);
    let parent_in = match pp {
        Some(p) => below(p, top),
        None => known,
    };
    if !parent_in {
        if pp.is_some() {
            if now_ms() >= st.fresh_until {
                st.outsiders.insert(parent, &mut st.scratch);
            }
        } else if let Some(c) = cp
            && below(c, top)
        {
            // The parent is gone and was unknown; its child is in the job:
            // counted as a member's (a spawner rarely ends that fast).
            st.members.insert(child, &mut st.scratch);
            // SAFETY: as above.
            unsafe { count(&st.top_dir, st.top_dir_len, top_len, &mut st.path, c) };
        }
        return;
    }
    st.members.insert(parent, &mut st.scratch);
    st.members.insert(child, &mut st.scratch);
    // Counted in the jobs that hold both (the child's own, usually).
    let path = match (pp, cp) {
        (Some(p), Some(c)) => common(p, c),
        (Some(p), None) => p,
        (None, Some(c)) => c,
        (None, None) => top,
    };
    if below(path, top) {
        // SAFETY: as above.
        unsafe { count(&st.top_dir, st.top_dir_len, top_len, &mut st.path, path) };
    }
}

/// Adds one to `user.taskloom.forks` of every job directory from the top
/// down to the job of cgroup path `path` (below the top).
///
/// # Safety
/// Raw syscalls only; callable from the counter.
unsafe fn count(top_dir: &[u8], dir_len: usize, top_len: usize, buf: &mut [u8], path: &[u8]) {
    // Each job's directory is put together in `buf`, NUL-terminated.
    let bump = |buf: &mut [u8], len: usize| {
        if let Some(nul) = buf.get_mut(len) {
            *nul = 0;
            let p = buf.as_ptr().cast::<libc::c_char>();
            // SAFETY: `buf` holds a NUL-terminated path.
            unsafe {
                let v = get_xattr_u64(p, b"user.taskloom.forks\0");
                set_xattr_u64(p, b"user.taskloom.forks\0", v + 1);
            }
        }
    };
    let (Some(top), Some(suffix)) = (top_dir.get(..dir_len), path.get(top_len..)) else {
        return;
    };
    let Some(start) = buf.get_mut(..dir_len) else {
        return;
    };
    start.copy_from_slice(top);
    let mut len = dir_len;
    bump(buf, len);
    // Each component below the top that is a job (not a leaf `@N`, not a
    // member's own `taskloom` root) is one more job the process is in.
    for comp in suffix.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
        let Some((slash, name)) = buf
            .get_mut(len..len + 1 + comp.len())
            .and_then(|slot| slot.split_first_mut())
        else {
            return;
        };
        *slash = b'/';
        name.copy_from_slice(comp);
        len += 1 + comp.len();
        if !comp.starts_with(b"@") && comp != b"taskloom" {
            bump(buf, len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_compared_by_whole_components() {
        assert!(below(b"/t/j", b"/t/j"));
        assert!(below(b"/t/j/@0", b"/t/j"));
        assert!(!below(b"/t/jk/@0", b"/t/j"));
        assert!(below(b"/anything", b"/"));
        assert_eq!(common(b"/t/j/@0", b"/t/j/k/@0"), b"/t/j");
        assert_eq!(common(b"/t/j/@0", b"/t/j/@0"), b"/t/j/@0");
        assert_eq!(common(b"/t/ja/@0", b"/t/jb/@0"), b"/t");
    }

    #[test]
    fn the_pid_tables_keep_members_through_removals_and_rebuilds() {
        let mut t = Table::new();
        let mut scratch = vec![EMPTY; TABLE];
        for p in 1..=40_000 {
            assert!(t.insert(p, &mut scratch));
        }
        for p in 1..=39_000 {
            t.remove(p);
        }
        // Past three quarters used (marks included): rebuilt, nothing lost.
        for p in 100_000..110_000 {
            assert!(t.insert(p, &mut scratch));
        }
        assert!((39_001..=40_000).all(|p| t.contains(p)));
        assert!((100_000..110_000).all(|p| t.contains(p)));
        assert!(!t.contains(5));
        assert!(t.used < TABLE / 4 * 3);
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut out = [0u8; 24];
        let n = itoa(0, &mut out);
        assert_eq!(&out[..n], b"0");
        let n = itoa(18_446_744_073_709_551_615, &mut out);
        assert_eq!(&out[..n], b"18446744073709551615");
        assert_eq!(parse_u64(b"1234\n"), 1234);
    }
}
