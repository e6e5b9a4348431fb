//! The kill-on-close guardian: a tiny process that outlives the job's owner.
//!
//! Linux has no "kill this cgroup when the last handle closes". taskloom's
//! job handle holds the write end of a pipe; a guardian process, forked
//! twice so that it belongs to no one's wait list, holds only the read end.
//! When every write end is closed (every handle dropped, also by a SIGKILL of
//! the owner, since the kernel closes a dead process's descriptors) the read
//! end reports end-of-file and the guardian kills the job's cgroups and
//! removes them.
//!
//! The guardian is forked from a possibly multi-threaded process, so from the
//! fork on it only makes raw syscalls on memory prepared before the fork.
//! This is one of taskloom's few unsafe modules.
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::ptr;

mod counter;

use crate::error::{Error, Result};
pub(crate) use counter::{
    available as counting_available, carry_over, count_entered, counted_move, record, total,
};

/// What the guardian does when the last handle is gone, prepared before the fork.
#[derive(Debug)]
pub(crate) struct Plan {
    /// `<job>/cgroup.kill` on cgroup2, when present.
    pub v2_kill: Option<CString>,
    /// `<job>/cgroup.events` on cgroup2, to wait until the job is empty.
    pub v2_events: Option<CString>,
    /// v1 fallback: `freezer.state` of the job (may be absent).
    pub v1_freezer: Option<CString>,
    /// v1 fallback: `cgroup.procs` files whose pids are killed until empty.
    pub v1_procs: Vec<CString>,
    /// Job directories to remove (with everything below them), after the kill.
    pub remove: Vec<CString>,
    /// The cgroup2 directories of the job's pid namespace init (beside the
    /// job, `@init.<name>`): killed (`cgroup.kill`, which ends the namespace
    /// and so every member left in it) and removed with the job.
    pub inits: Vec<CString>,
    /// Process-group backend: the file holding the job's group id.
    pub pg_file: Option<CString>,
    /// Files to unlink after the kill (the process-group backend's state).
    pub unlink: Vec<CString>,
    /// Directories removed after `remove` when they are empty then (the
    /// shared `taskloom` roots, which the last job takes with it); a busy one stays.
    pub remove_if_empty: Vec<CString>,
    /// For an outermost job: its cgroup2 directory and its path as `/proc`
    /// shows it, for the guardian to count its processes too
    /// (`counter.rs`), when it was started with a counter.
    pub count: Option<(CString, CString)>,
}

impl Plan {
    pub fn new(
        v2: Option<&PathBuf>,
        v1_freezer: Option<PathBuf>,
        v1_dirs: &[PathBuf],
        remove: &[PathBuf],
        remove_if_empty: &[PathBuf],
    ) -> Self {
        let c = |p: PathBuf| CString::new(p.as_os_str().as_bytes()).unwrap_or_default();
        Plan {
            v2_kill: v2.map(|d| c(d.join("cgroup.kill"))),
            v2_events: v2.map(|d| c(d.join("cgroup.events"))),
            v1_freezer: v1_freezer.map(|f| c(f.join("freezer.state"))),
            v1_procs: v1_dirs.iter().map(|d| c(d.join("cgroup.procs"))).collect(),
            remove: remove.iter().cloned().map(c).collect(),
            inits: Vec::new(),
            pg_file: None,
            unlink: Vec::new(),
            remove_if_empty: remove_if_empty.iter().cloned().map(c).collect(),
            count: None,
        }
    }

    /// The plan for a process-group job whose state lives in `dir`.
    pub fn for_process_group(dir: &std::path::Path) -> Self {
        let c = |p: PathBuf| CString::new(p.as_os_str().as_bytes()).unwrap_or_default();
        Plan {
            v2_kill: None,
            v2_events: None,
            v1_freezer: None,
            v1_procs: Vec::new(),
            remove: vec![c(dir.to_owned())],
            inits: Vec::new(),
            pg_file: Some(c(dir.join("pgid"))),
            // The kill-on-close mark goes last: a guardian killed half-way
            // leaves it, and the state is then known to be stale.
            unlink: [
                "pgid",
                "limits.json",
                "frozen",
                "terminated",
                "exit_code",
                "kill_on_close",
            ]
            .into_iter()
            .map(|f| c(dir.join(f)))
            .collect(),
            remove_if_empty: Vec::new(),
            count: None,
        }
    }

    /// Has the guardian count the processes of the outermost job whose
    /// cgroup2 directory is `dir` (shown by `/proc` as `shown`).
    pub fn count(&mut self, dir: &std::path::Path, shown: &std::path::Path) {
        let c = |p: &std::path::Path| CString::new(p.as_os_str().as_bytes()).ok();
        self.count = c(dir).zip(c(shown));
    }
}

impl Plan {
    /// The plan as the guardian reads it from its pipe: records of a tag
    /// byte and a NUL-terminated string.
    fn encode(&self, keep: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut put = |tag: u8, s: &CString| {
            out.push(tag);
            out.extend_from_slice(s.as_bytes_with_nul());
        };
        for (tag, one) in [
            (b'k', &self.v2_kill),
            (b'e', &self.v2_events),
            (b'f', &self.v1_freezer),
            (b'g', &self.pg_file),
        ] {
            if let Some(s) = one {
                put(tag, s);
            }
        }
        for (tag, list) in [
            (b'p', &self.v1_procs),
            (b'r', &self.remove),
            (b'i', &self.inits),
            (b'u', &self.unlink),
            (b'x', &self.remove_if_empty),
        ] {
            for s in list {
                put(tag, s);
            }
        }
        if let Some((dir, shown)) = &self.count {
            put(b'T', dir);
            put(b'S', shown);
        }
        if keep {
            put(b'K', &CString::default());
        }
        out
    }
}

/// The most entries of one list a guardian takes (more are ignored).
const MAX_LIST: usize = 32;
/// The largest plan a guardian reads.
const MAX_PLAN: usize = 32 * 1024;

/// A plan as the guardian holds it: pointers into its own read buffer.
struct Parsed {
    v2_kill: *const libc::c_char,
    v2_events: *const libc::c_char,
    v1_freezer: *const libc::c_char,
    pg_file: *const libc::c_char,
    v1_procs: List,
    remove: List,
    inits: List,
    unlink: List,
    remove_if_empty: List,
    count_top: *const libc::c_char,
    count_shown: *const libc::c_char,
    keep: bool,
}

#[derive(Clone, Copy)]
struct List {
    items: [*const libc::c_char; MAX_LIST],
    len: usize,
}

impl List {
    const EMPTY: List = List {
        items: [ptr::null(); MAX_LIST],
        len: 0,
    };

    fn push(&mut self, s: *const libc::c_char) {
        if self.len < MAX_LIST {
            self.items[self.len] = s;
            self.len += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = *const libc::c_char> + '_ {
        self.items[..self.len].iter().copied()
    }
}

/// Parses an encoded plan in place (no allocation: callable in the guardian).
fn parse_plan(buf: &[u8]) -> Parsed {
    let mut p = Parsed {
        v2_kill: ptr::null(),
        v2_events: ptr::null(),
        v1_freezer: ptr::null(),
        pg_file: ptr::null(),
        v1_procs: List::EMPTY,
        remove: List::EMPTY,
        inits: List::EMPTY,
        unlink: List::EMPTY,
        remove_if_empty: List::EMPTY,
        count_top: ptr::null(),
        count_shown: ptr::null(),
        keep: false,
    };
    let mut at = 0;
    while at < buf.len() {
        let tag = buf[at];
        let start = at + 1;
        let Some(len) = buf[start.min(buf.len())..].iter().position(|&b| b == 0) else {
            break;
        };
        let s = buf[start..].as_ptr().cast::<libc::c_char>();
        match tag {
            b'k' => p.v2_kill = s,
            b'e' => p.v2_events = s,
            b'f' => p.v1_freezer = s,
            b'g' => p.pg_file = s,
            b'p' => p.v1_procs.push(s),
            b'r' => p.remove.push(s),
            b'i' => p.inits.push(s),
            b'u' => p.unlink.push(s),
            b'x' => p.remove_if_empty.push(s),
            b'T' => p.count_top = s,
            b'S' => p.count_shown = s,
            b'K' => p.keep = true,
            _ => {}
        }
        at = start + len + 1;
    }
    p
}

/// A guardian that runs and waits for its plan: its pid can be handed to
/// systemd (a scope's first process) before the job's paths are known.
#[derive(Debug)]
pub(crate) struct Waiting {
    /// The guardian's pid (what a systemd scope is started with).
    pub pid: i32,
    /// The write end of its pipe (`None` when it watches an older guardian's pipe).
    holder: Option<OwnedFd>,
    /// A copy of the read end the guardian waits on.
    holder_rx: OwnedFd,
    plan_tx: OwnedFd,
    /// Whether it was started with a counter (process events are available).
    counting: bool,
}

/// A kill-on-close guardian's pipe as its job's handles keep it.
#[derive(Debug)]
pub(crate) struct Armed {
    /// The write end: when every copy of it is closed, the guardian acts.
    pub holder: OwnedFd,
    /// A copy of the read end the guardian waits on, so that another
    /// guardian can wait on the same write ends ([`watch_same`]).
    pub holder_rx: OwnedFd,
    /// The guardian's pid.
    pub pid: i32,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::last_os("pipe2"));
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Starts a guardian that waits for its plan ([`Waiting::arm`]). Should the
/// caller never arm it (it failed, or it died), the guardian reads
/// end-of-file, does nothing and exits.
///
/// With `counting` (and where this process gets process events) the
/// guardian also counts the job's processes once its plan names the job
/// (`Plan::count`): one process instead of two per job.
pub(crate) fn spawn(counting: bool) -> Result<Waiting> {
    spawn_with(if counting { counter::prepare() } else { None })
}

/// [`spawn`] with a counter already prepared (or none).
pub(crate) fn spawn_with(counter: Option<counter::Prepared>) -> Result<Waiting> {
    let (holder_rx, holder) = pipe()?;
    spawn_on(holder_rx, Some(holder), counter)
}

/// Starts a guardian that waits on the read end `holder_rx` (and for its plan).
fn spawn_on(
    holder_rx: OwnedFd,
    holder: Option<OwnedFd>,
    counter: Option<counter::Prepared>,
) -> Result<Waiting> {
    let counting = counter.is_some();
    let (plan_rx, plan_tx) = pipe()?;
    let (pid_rx, pid_tx) = pipe()?;
    // SAFETY: after fork the child runs only `guardian_main`/`_exit` and raw
    // writes, on memory prepared before the fork (see the module docs).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os("fork"));
    }
    if pid == 0 {
        // SAFETY: as above; the intermediate child forks the guardian, reports
        // its pid and exits at once, so the guardian is reparented and never
        // becomes our zombie.
        unsafe {
            let g = libc::fork();
            if g == 0 {
                guardian_main(holder_rx.as_raw_fd(), plan_rx.as_raw_fd(), counter);
            }
            let bytes = g.to_ne_bytes();
            libc::write(pid_tx.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
            libc::_exit(0);
        }
    }
    drop((plan_rx, pid_tx, counter));
    let mut status = 0;
    // SAFETY: waiting for the intermediate child we just forked.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(Error::last_os("waitpid(guardian)"));
        }
    }
    let mut bytes = [0u8; 4];
    let mut file = std::fs::File::from(pid_rx);
    io::Read::read_exact(&mut file, &mut bytes).map_err(|e| Error::os("start the guardian", e))?;
    let gpid = i32::from_ne_bytes(bytes);
    if gpid <= 0 {
        return Err(Error::os(
            "fork the guardian",
            io::Error::from_raw_os_error(libc::EAGAIN),
        ));
    }
    Ok(Waiting {
        pid: gpid,
        holder,
        holder_rx,
        plan_tx,
        counting,
    })
}

impl Waiting {
    /// Hands the guardian its plan. With `kill_on_close` it returns the
    /// holder end (close-on-exec): when every copy of it is closed, the
    /// guardian carries the plan out. Without, the guardian only stays (it
    /// keeps a systemd scope alive) until it is killed.
    pub fn arm(self, plan: &Plan, kill_on_close: bool) -> Result<Option<Armed>> {
        let bytes = plan.encode(!kill_on_close);
        if bytes.len() > MAX_PLAN {
            return Err(Error::InvalidInput {
                what: "kill-on-close",
                reason: "the job's paths are too long for its guardian".into(),
            });
        }
        let mut tx = std::fs::File::from(self.plan_tx);
        io::Write::write_all(&mut tx, &bytes).map_err(|e| Error::os("arm the guardian", e))?;
        drop(tx);
        Ok(match (kill_on_close, self.holder) {
            (true, Some(holder)) => Some(Armed {
                holder,
                holder_rx: self.holder_rx,
                pid: self.pid,
            }),
            _ => None,
        })
    }

    /// Whether the guardian counts processes once its plan names the job.
    pub fn counting(&self) -> bool {
        self.counting
    }
}

/// Starts a guardian for `plan`; returns its pipe (close-on-exec) and
/// whether it counts the job's processes (the plan asks, and this process
/// Starts the counter of the top-level job whose cgroup2 directory is
/// `dir` (which this process's `/proc` shows as `shown`), and records it on
/// the job. `Ok(false)` when this machine gives this process no process
/// events (see [`counter::available`]).
pub(crate) fn start_counting(dir: &std::path::Path, shown: &std::path::Path) -> Result<bool> {
    let Some(counter) = counter::prepare() else {
        return Ok(false);
    };
    // A guardian that only keeps count: no kill-on-close, and it ends once
    // the job's directory is gone.
    let waiting = spawn_with(Some(counter))?;
    let pid = waiting.pid;
    let mut plan = Plan::new(None, None, &[], &[], &[]);
    plan.count(dir, shown);
    waiting.arm(&plan, false)?;
    counter::record(dir, pid).inspect_err(|_| {
        // SAFETY: killing the process we just started, by pid.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    })?;
    Ok(true)
}

/// gets process events).
pub(crate) fn start(plan: &Plan) -> Result<(Armed, bool)> {
    let waiting = spawn(plan.count.is_some())?;
    let counting = waiting.counting();
    let armed = waiting.arm(plan, true)?;
    Ok((armed.expect("armed for kill-on-close"), counting))
}

/// Starts a second guardian for `plan` on the pipe of an armed one
/// (`holder_rx`, its read end): it acts when the same write ends are all
/// closed, whatever handles or children hold them. For a job that moved
/// (nested on assignment): the first guardian's plan names the old place.
pub(crate) fn watch_same(holder_rx: &OwnedFd, plan: &Plan) -> Result<()> {
    let rx = holder_rx
        .try_clone()
        .map_err(|e| Error::os("duplicate the guardian's pipe", e))?;
    // Kill-on-close: the plan is carried out on end-of-file (no write end
    // of its own: the old guardian's holders are its holders).
    spawn_on(rx, None, None)?.arm(plan, true)?;
    Ok(())
}

/// The guardian. Never returns.
///
/// # Safety
/// Must only run in a freshly forked child.
unsafe fn guardian_main(
    holder: RawFd,
    plan_fd: RawFd,
    mut counter: Option<counter::Prepared>,
) -> ! {
    // SAFETY: raw syscalls and async-signal-safe libc calls on stack memory
    // and memory prepared before the fork (the counter's).
    unsafe {
        libc::setsid();
        // Keep nothing but the two pipes and the counter's socket: above all
        // no write end of any job.
        let mut keep = [
            holder,
            plan_fd,
            counter.as_ref().map_or(-1, |c| c.raw_sock()),
        ];
        keep.sort_unstable();
        let mut from: RawFd = 0;
        for fd in keep {
            if fd < 0 {
                continue;
            }
            if fd > from {
                libc::syscall(libc::SYS_close_range, from as u32, (fd - 1) as u32, 0u32);
            }
            from = fd + 1;
        }
        libc::syscall(libc::SYS_close_range, from as u32, u32::MAX, 0u32);
        libc::prctl(
            libc::PR_SET_NAME,
            c"taskloom-guard".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
        // No same-uid process may read its memory or descriptors (through
        // /proc or ptrace) and so take a holder's pipe or rewrite its plan.
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        for sig in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGPIPE,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        let mut none = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(none.as_mut_ptr());
        libc::sigprocmask(libc::SIG_SETMASK, none.as_ptr(), ptr::null_mut());

        // The plan, until its writer closes the pipe.
        let mut buf = [0u8; MAX_PLAN];
        let mut len = 0usize;
        while len < buf.len() {
            let n = libc::read(plan_fd, buf[len..].as_mut_ptr().cast(), buf.len() - len);
            if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                break;
            }
            if n > 0 {
                len += n as usize;
            }
        }
        libc::close(plan_fd);
        if len == 0 {
            // Never armed: the job was not made.
            libc::_exit(0);
        }
        let plan = parse_plan(&buf[..len]);
        // A process-group job's state directory is locked (shared) for as
        // long as this guardian lives: with its creator's lock gone too, a
        // kill-on-close job whose state is still there is known to be stale.
        if !plan.pg_file.is_null()
            && let Some(dir) = plan.remove.iter().next()
        {
            let fd = libc::open(dir, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::flock(fd, libc::LOCK_SH);
            }
        }
        // Counting, where the plan names the job and a counter was prepared:
        // until the job is gone, or (kill-on-close) until the holders are.
        let mut holders_gone = false;
        if let Some(c) = counter.as_mut()
            && !plan.count_top.is_null()
            && !plan.count_shown.is_null()
            && c.set_paths(
                std::ffi::CStr::from_ptr(plan.count_top),
                std::ffi::CStr::from_ptr(plan.count_shown).to_bytes(),
            )
        {
            let ended = counter::count_until(c, if plan.keep { -1 } else { holder });
            if plan.keep {
                // A scope's keeper whose job is gone.
                libc::_exit(0);
            }
            holders_gone = ended == counter::Ended::HolderClosed;
        }
        if let Some(c) = &counter {
            libc::close(c.raw_sock());
        }
        if plan.keep {
            // Only keeps its scope alive; ends when the scope is stopped.
            loop {
                libc::pause();
            }
        }
        // Wait for end-of-file: every holder is gone.
        let mut byte = [0u8; 64];
        if !holders_gone {
            loop {
                let n = libc::read(holder, byte.as_mut_ptr().cast(), byte.len());
                if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                    break;
                }
            }
        }
        kill_job(&plan);
        for dir in plan.inits.iter() {
            kill_init(dir);
        }
        for dir in plan.remove.iter().chain(plan.inits.iter()) {
            remove_tree(dir);
        }
        for dir in plan.remove_if_empty.iter() {
            libc::rmdir(dir);
        }
        libc::_exit(0)
    }
}

/// Kills every process of the job and waits until it is empty.
///
/// # Safety
/// Raw syscalls only; callable from the guardian.
unsafe fn kill_job(plan: &Parsed) {
    // SAFETY: raw syscalls on the plan's C strings and stack buffers.
    unsafe {
        if !plan.pg_file.is_null() {
            let file = plan.pg_file;
            let mut buf = [0u8; 32];
            let n = read_file(file, &mut buf);
            let pgid = if n > 0 {
                parse_pids(&buf[..n as usize]).next().unwrap_or(0)
            } else {
                0
            };
            // Never kill(-1) (every process of the user) or our own group.
            if pgid > 1 {
                // Until the group is gone (kill fails with ESRCH), at most ~10 s.
                for _ in 0..10_000 {
                    if libc::kill(-pgid, libc::SIGKILL) != 0 {
                        break;
                    }
                    sleep_ms(1);
                }
            }
            for f in plan.unlink.iter() {
                libc::unlink(f);
            }
            return;
        }
        if !plan.v2_kill.is_null() && write_file(plan.v2_kill, b"1") {
            if !plan.v2_events.is_null() {
                let events = plan.v2_events;
                // Wait (at most ~10 s) for "populated 0".
                let mut buf = [0u8; 512];
                for _ in 0..10_000 {
                    let n = read_file(events, &mut buf);
                    if n <= 0 || contains(&buf[..n as usize], b"populated 0") {
                        break;
                    }
                    sleep_ms(1);
                }
            }
            return;
        }
        // cgroup v1 only: freeze so nothing forks, kill everything, thaw so SIGKILL lands.
        for _ in 0..1000 {
            if !plan.v1_freezer.is_null() {
                write_file(plan.v1_freezer, b"FROZEN");
            }
            let mut any = false;
            for procs in plan.v1_procs.iter() {
                let mut buf = [0u8; 16384];
                let n = read_file(procs, &mut buf);
                if n > 0 {
                    for pid in parse_pids(&buf[..n as usize]) {
                        any = true;
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
            if !plan.v1_freezer.is_null() {
                write_file(plan.v1_freezer, b"THAWED");
            }
            if !any {
                return;
            }
            sleep_ms(1);
        }
    }
}

/// Kills the init cgroup `dir` (`cgroup.kill`) and waits, at most ~2 s, until it is empty.
///
/// # Safety
/// `dir` must be a valid C string; raw syscalls only, callable from the guardian.
unsafe fn kill_init(dir: *const libc::c_char) {
    let mut buf = [0u8; 4096];
    // SAFETY: `dir` is a valid C string (the caller's contract).
    let bytes = unsafe { std::ffi::CStr::from_ptr(dir) }.to_bytes();
    let file = |name: &[u8], buf: &mut [u8; 4096]| -> bool {
        if bytes.len() + 1 + name.len() + 1 > buf.len() {
            return false;
        }
        buf[..bytes.len()].copy_from_slice(bytes);
        buf[bytes.len()] = b'/';
        buf[bytes.len() + 1..bytes.len() + 1 + name.len()].copy_from_slice(name);
        buf[bytes.len() + 1 + name.len()] = 0;
        true
    };
    // SAFETY: the buffers hold NUL-terminated paths built just above.
    unsafe {
        if !file(b"cgroup.kill", &mut buf) || !write_file(buf.as_ptr().cast(), b"1") {
            return;
        }
        let mut events = [0u8; 4096];
        if !file(b"cgroup.events", &mut events) {
            return;
        }
        let mut text = [0u8; 512];
        for _ in 0..2000 {
            let n = read_file(events.as_ptr().cast(), &mut text);
            if n <= 0 || contains(&text[..n as usize], b"populated 0") {
                break;
            }
            sleep_ms(1);
        }
    }
}

fn parse_pids(text: &[u8]) -> impl Iterator<Item = i32> + '_ {
    text.split(|&c| c == b'\n').filter_map(|line| {
        if line.is_empty() {
            return None;
        }
        let mut v: i32 = 0;
        for &c in line {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v.checked_mul(10)?.checked_add((c - b'0') as i32)?;
        }
        Some(v)
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// # Safety
/// `path` must be a valid C string.
unsafe fn write_file(path: *const libc::c_char, data: &[u8]) -> bool {
    // SAFETY: raw open/write/close on a valid path and buffer.
    unsafe {
        let fd = libc::open(path, libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let ok = libc::write(fd, data.as_ptr().cast(), data.len()) == data.len() as isize;
        libc::close(fd);
        ok
    }
}

/// # Safety
/// `path` must be a valid C string.
unsafe fn read_file(path: *const libc::c_char, buf: &mut [u8]) -> isize {
    // SAFETY: raw open/read/close on a valid path into `buf`.
    unsafe {
        let fd = libc::open(path, libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return -1;
        }
        let mut total = 0usize;
        while total < buf.len() {
            let n = libc::read(fd, buf[total..].as_mut_ptr().cast(), buf.len() - total);
            if n <= 0 {
                break;
            }
            total += n as usize;
        }
        libc::close(fd);
        total as isize
    }
}

fn sleep_ms(ms: u64) {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: (ms * 1_000_000) as libc::c_long,
    };
    // SAFETY: nanosleep with a valid timespec and no remainder pointer.
    unsafe { libc::nanosleep(&ts, ptr::null_mut()) };
}

/// Removes a cgroup directory and every cgroup below it (cgroupfs holds only
/// control files, which rmdir ignores), with a path buffer on the stack.
///
/// # Safety
/// `path` must be a valid C string.
unsafe fn remove_tree(path: *const libc::c_char) {
    let mut buf = [0u8; 4096];
    // SAFETY: `path` is a valid C string; strlen is async-signal-safe.
    let len = unsafe { libc::strlen(path) };
    if len + 1 >= buf.len() {
        return;
    }
    // SAFETY: copying `len` bytes from a valid C string into a larger buffer.
    unsafe { ptr::copy_nonoverlapping(path.cast::<u8>(), buf.as_mut_ptr(), len) };
    // SAFETY: `buf` holds a NUL-terminated path of `len` bytes.
    unsafe { remove_tree_in(&mut buf, len, 0) };
}

/// # Safety
/// `buf[..len]` is a path and `buf[len]` may be overwritten.
unsafe fn remove_tree_in(buf: &mut [u8; 4096], len: usize, depth: u32) {
    if depth > 32 {
        return;
    }
    buf[len] = 0;
    // SAFETY: raw directory syscalls on a NUL-terminated path in `buf`.
    unsafe {
        let fd = libc::open(
            buf.as_ptr().cast(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            let mut dents = [0u8; 4096];
            loop {
                let n = libc::syscall(libc::SYS_getdents64, fd, dents.as_mut_ptr(), dents.len());
                if n <= 0 {
                    break;
                }
                let mut off = 0usize;
                while off < n as usize {
                    // struct linux_dirent64 { u64 ino; i64 off; u16 reclen; u8 type; char name[]; }
                    let reclen = u16::from_ne_bytes([dents[off + 16], dents[off + 17]]) as usize;
                    let dtype = dents[off + 18];
                    let name = &dents[off + 19..off + reclen];
                    let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
                    if dtype == libc::DT_DIR
                        && name != b"."
                        && name != b".."
                        && len + 1 + name.len() + 1 < buf.len()
                    {
                        buf[len] = b'/';
                        buf[len + 1..len + 1 + name.len()].copy_from_slice(name);
                        remove_tree_in(buf, len + 1 + name.len(), depth + 1);
                        buf[len] = 0;
                    }
                    off += reclen;
                }
            }
            libc::close(fd);
        }
        for _ in 0..1000 {
            if libc::rmdir(buf.as_ptr().cast()) == 0 || *libc::__errno_location() != libc::EBUSY {
                break;
            }
            sleep_ms(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_survive_the_pipe() {
        let plan = Plan::new(
            Some(&PathBuf::from("/cg/taskloom/j")),
            Some(PathBuf::from("/fr/taskloom/j")),
            &[
                PathBuf::from("/pids/taskloom/j"),
                PathBuf::from("/mem/taskloom/j"),
            ],
            &[PathBuf::from("/cg/taskloom/j")],
            &[
                PathBuf::from("/cg/taskloom/@breakaway"),
                PathBuf::from("/cg/taskloom"),
            ],
        );
        let s = |p: *const libc::c_char| {
            // SAFETY: the parser points at NUL-terminated strings inside `bytes`.
            unsafe { std::ffi::CStr::from_ptr(p) }
                .to_str()
                .unwrap()
                .to_owned()
        };
        for keep in [false, true] {
            let bytes = plan.encode(keep);
            let p = parse_plan(&bytes);
            assert_eq!(p.keep, keep);
            assert_eq!(s(p.v2_kill), "/cg/taskloom/j/cgroup.kill");
            assert_eq!(s(p.v2_events), "/cg/taskloom/j/cgroup.events");
            assert_eq!(s(p.v1_freezer), "/fr/taskloom/j/freezer.state");
            assert!(p.pg_file.is_null());
            let procs: Vec<String> = p.v1_procs.iter().map(s).collect();
            assert_eq!(
                procs,
                [
                    "/pids/taskloom/j/cgroup.procs",
                    "/mem/taskloom/j/cgroup.procs"
                ]
            );
            let gone: Vec<String> = p.remove_if_empty.iter().map(s).collect();
            assert_eq!(gone, ["/cg/taskloom/@breakaway", "/cg/taskloom"]);
        }
    }

    #[test]
    fn pid_lists_parse() {
        let pids: Vec<i32> = parse_pids(b"12\n345\n\nx1\n99999999999\n7\n").collect();
        assert_eq!(pids, [12, 345, 7]);
    }
}
