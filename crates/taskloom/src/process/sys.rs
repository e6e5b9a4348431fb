//! The child's half of a spawn and the raw syscalls around it.
//!
//! This is one of taskloom's few unsafe modules. The child is created with
//! `clone3(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)`: it shares the parent's
//! memory and the parent thread sleeps until the child calls `execve` or
//! exits. So the child:
//!
//! - runs on a stack carved out of the parent's frame (`ChildStack`), never
//!   on the parent's live stack;
//! - only reads the `ChildPlan` that the parent built, allocates nothing,
//!   takes no lock, and calls only async-signal-safe functions or raw
//!   syscalls (`setresuid` and friends go through `syscall(2)` so that
//!   glibc's set*id broadcast never signals the parent's threads);
//! - reports a failure by writing `(stage, errno)` into the plan's shared
//!   `ChildReport` and exiting with 127; the parent reads the report when
//!   `clone3` returns, so an exec failure is a typed error, not an exit code.
//!
//! Every signal is blocked in the parent around `clone3`, so no handler of
//! the parent can run in the child; caught signals are reset to their
//! defaults before the child unblocks them, just before `execve`: by the
//! kernel (`CLONE_CLEAR_SIGHAND`) on x86_64, else by a `sigaction` query of
//! every signal in the child (64 syscalls, ~15 µs here: 3% of a spawn).
//! `SIGPIPE`, which Rust programs ignore, goes back to its default too.
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use std::ffi::{CStr, CString, c_void};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use super::{Credentials, ProcessGroup};
use crate::cpuset::CpuSet;
use crate::error::{Error, OrLog, Result};

/// A step of the child's set-up, reported when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Stage {
    NotStarted = 0,
    Started,
    Signals,
    Cgroup,
    Session,
    Priority,
    Affinity,
    Fds,
    Credentials,
    Cwd,
    Trace,
    Exec,
    Rlimit,
    Namespace,
}

impl Stage {
    fn from_u32(v: u32) -> Stage {
        const ALL: [Stage; 14] = [
            Stage::NotStarted,
            Stage::Started,
            Stage::Signals,
            Stage::Cgroup,
            Stage::Session,
            Stage::Priority,
            Stage::Affinity,
            Stage::Fds,
            Stage::Credentials,
            Stage::Cwd,
            Stage::Trace,
            Stage::Exec,
            Stage::Rlimit,
            Stage::Namespace,
        ];
        ALL.get(v as usize).copied().unwrap_or(Stage::Exec)
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Stage::NotStarted | Stage::Started => "start",
            Stage::Signals => "reset signal dispositions",
            Stage::Namespace => "join the job's cgroup namespace",
            Stage::Cgroup => "join the job's cgroup",
            Stage::Session => "create the process group or session",
            Stage::Priority => "set the priority class",
            Stage::Affinity => "set the CPU affinity",
            Stage::Fds => "set up inherited descriptors",
            Stage::Credentials => "switch user and groups",
            Stage::Cwd => "change directory",
            Stage::Trace => "arrange the suspended start",
            Stage::Exec => "execute the program",
            Stage::Rlimit => "set a resource limit",
        }
    }
}

/// One descriptor the child gets: `src` (in the parent's table) lands at `target`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FdMove {
    pub src: RawFd,
    pub target: RawFd,
    /// An inherited standard stream that may be closed in the parent.
    pub optional: bool,
}

/// A NULL-terminated array of C string pointers (argv, envp).
pub(crate) struct NullTerminated<'a> {
    ptrs: Vec<*const libc::c_char>,
    _owner: std::marker::PhantomData<&'a [CString]>,
}

unsafe extern "C" {
    /// The C library's environment block.
    static environ: *const *const libc::c_char;
}

/// The current environment block of this process, as `execve` takes it.
///
/// Reading it is as safe as `getenv`: Rust 2024 makes `set_var` unsafe
/// precisely because no other thread may use the environment meanwhile.
pub(crate) fn inherited_environ() -> *const *const libc::c_char {
    // SAFETY: reading the pointer value of a C global (see above).
    unsafe { environ }
}

impl<'a> NullTerminated<'a> {
    pub fn new(strings: &'a [CString]) -> Self {
        let mut ptrs: Vec<_> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(ptr::null());
        NullTerminated {
            ptrs,
            _owner: std::marker::PhantomData,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }
}

/// Everything the child needs, built by the parent.
pub(crate) struct ChildPlan<'a> {
    pub path: &'a CStr,
    pub argv: NullTerminated<'a>,
    /// The environment block: built by the parent, or the parent's own `environ`.
    pub envp: *const *const libc::c_char,
    pub cwd: Option<&'a CStr>,
    pub moves: &'a [FdMove],
    pub tmp_base: RawFd,
    pub group: ProcessGroup,
    pub nice: Option<i32>,
    pub realtime: bool,
    pub affinity: Option<&'a CpuSet>,
    pub creds: Option<(u32, u32, &'a [libc::gid_t])>,
    pub procs_files: &'a [CString],
    pub extra_procs_file: Option<&'a CStr>,
    /// A user namespace and a cgroup namespace to join once placed (-1: none).
    pub userns: RawFd,
    pub cgroupns: RawFd,
    pub traceme: bool,
    pub rlimits: &'a [(i32, libc::rlimit64)],
}

/// Written by the child, read by the parent after `clone3` returns.
struct ChildReport {
    stage: AtomicU32,
    errno: AtomicI32,
}

struct ChildArg<'a> {
    plan: &'a ChildPlan<'a>,
    report: &'a ChildReport,
}

/// Why a spawn failed at the syscall level.
#[derive(Debug)]
pub(crate) enum SpawnError {
    /// `clone3` or a parent-side call failed.
    Os(&'static str, io::Error),
    /// The child reported a failed stage.
    Child { stage: Stage, errno: i32 },
    /// The child died before running any of its steps (CLONE_INTO_CGROUP bug).
    KilledBeforeStart,
}

const CHILD_STACK_SIZE: usize = 32 * 1024;

/// Most descriptors (standard streams included) a child can be given.
pub(crate) const MAX_FD_MOVES: usize = 64;

#[repr(C, align(64))]
struct ChildStack([u8; CHILD_STACK_SIZE]);

/// `struct clone_args` of `clone3(2)`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// Resets every caught signal to `SIG_DFL` in the child (Linux 5.5).
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
/// Whether the kernel resets the child's caught signals: only the raw
/// `clone3` path (x86_64) can pass `CLONE_CLEAR_SIGHAND`; glibc's `clone`
/// cannot, so there the child asks about every signal itself.
const KERNEL_CLEARS_HANDLERS: bool = cfg!(target_arch = "x86_64");

/// Starts the child described by `plan`; returns its pid and pidfd.
pub(crate) fn spawn(
    plan: &ChildPlan<'_>,
    v2_cgroup: Option<&OwnedFd>,
) -> Result<(i32, OwnedFd), SpawnError> {
    let report = ChildReport {
        stage: AtomicU32::new(Stage::NotStarted as u32),
        errno: AtomicI32::new(0),
    };
    let arg = ChildArg {
        plan,
        report: &report,
    };
    let mut stack = MaybeUninit::<ChildStack>::uninit();
    // SAFETY: the stack lives in this frame for as long as the child uses it
    // (CLONE_VFORK keeps us here until it execs or exits); `child_main`
    // never returns and touches only `arg`, which outlives the call.
    let (pid, pidfd) = unsafe {
        clone_child(
            libc::CLONE_VFORK as u64,
            v2_cgroup.map(|cg| cg.as_raw_fd()),
            &mut stack,
            child_main,
            &arg as *const ChildArg as *mut c_void,
        )
    }
    .map_err(|e| SpawnError::Os("clone3", e))?;
    let stage = Stage::from_u32(report.stage.load(Ordering::Acquire));
    let errno = report.errno.load(Ordering::Acquire);
    if errno == 0 && stage != Stage::NotStarted {
        return Ok((pid, pidfd));
    }
    // The child failed (or never ran): reap it so nothing is left behind.
    reap_blocking(&pidfd);
    if stage == Stage::NotStarted {
        return Err(SpawnError::KilledBeforeStart);
    }
    Err(SpawnError::Child { stage, errno })
}

/// Starts a child sharing our memory (`CLONE_VM` and `extra` flags, a
/// pidfd, SIGCHLD at its end, caught signals reset), running `entry(arg)` on
/// `stack`, placed in the cgroup `cgroup` when given; its pid and pidfd.
/// Every signal is blocked around the clone, so no handler of ours ever
/// runs on the child's stack (it keeps the full mask until it sets its own).
///
/// # Safety
/// As for [`clone_raw`]: `stack` and what `arg` points to stay valid, and
/// the caller does not return, until the child has exec'd or exited, and
/// `entry` never returns and makes raw syscalls only.
unsafe fn clone_child(
    extra: u64,
    cgroup: Option<RawFd>,
    stack: &mut MaybeUninit<ChildStack>,
    entry: extern "C" fn(*mut c_void) -> !,
    arg: *mut c_void,
) -> io::Result<(i32, OwnedFd)> {
    let mut pidfd: RawFd = -1;
    let all: libc::sigset_t = sigset_full();
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: both pointers are valid sigset_t storage.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, old.as_mut_ptr()) };
    let mut args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_PIDFD) as u64
            | extra
            | if KERNEL_CLEARS_HANDLERS {
                CLONE_CLEAR_SIGHAND
            } else {
                0
            },
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.as_mut_ptr() as u64,
        stack_size: CHILD_STACK_SIZE as u64,
        ..Default::default()
    };
    if let Some(cg) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = cg as u64;
    }
    // SAFETY: the caller upholds clone_raw's contract.
    let ret = unsafe { clone_raw(&mut args, entry, arg) };
    // SAFETY: `old` was filled by the pthread_sigmask call above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), ptr::null_mut()) };
    if ret < 0 {
        return Err(io::Error::from_raw_os_error((-ret) as i32));
    }
    // SAFETY: CLONE_PIDFD stored a fresh descriptor that nothing else owns.
    Ok((ret as i32, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

fn sigset_full() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises the set it is given.
    unsafe {
        libc::sigfillset(set.as_mut_ptr());
        set.assume_init()
    }
}

/// Reaps a child through its pidfd, retrying on EINTR.
pub(crate) fn reap_blocking(pidfd: &OwnedFd) {
    loop {
        let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
        // SAFETY: `info` is valid siginfo storage; P_PIDFD takes the descriptor as id.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                info.as_mut_ptr(),
                libc::WEXITED,
            )
        };
        if r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Waits for the exec-stop of a child that called `PTRACE_TRACEME`, then
/// detaches it into a group-stop so it stays stopped before its first
/// instruction until SIGCONT.
pub(crate) fn hand_over_exec_stop(pid: i32, pidfd: BorrowedFd<'_>) -> Result<()> {
    // The exec SIGTRAP stop: execve is still loading the image, so sleep.
    wait_stopped(pidfd, 0)?;
    // SAFETY: plain ptrace request on our own tracee; no pointers passed.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_DETACH,
            pid,
            ptr::null_mut::<c_void>(),
            libc::SIGSTOP as usize as *mut c_void,
        )
    };
    if r < 0 {
        return Err(Error::last_os(format!(
            "let process {pid} go into its stop before its first instruction (ptrace detach)"
        )));
    }
    // The group-stop that SIGSTOP starts: once reported, /proc shows state T.
    // The child only has to take the signal, so poll a little first.
    wait_stopped(pidfd, 32)
}

/// Waits for the next stop (or the end) of a child. `polls` non-blocking
/// tries come first, each yielding the CPU, for a stop known to be
/// microseconds away: that spares the sleep and cross-CPU wake-up.
fn wait_stopped(pidfd: BorrowedFd<'_>, mut polls: u32) -> Result<()> {
    loop {
        let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
        let nohang = if polls > 0 { libc::WNOHANG } else { 0 };
        // SAFETY: `info` is valid siginfo storage.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                info.as_mut_ptr(),
                libc::WSTOPPED | libc::WEXITED | nohang,
            )
        };
        if r < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::last_os("waitid(WSTOPPED)"));
        }
        // SAFETY: waitid filled `info` (zeroed when WNOHANG found nothing).
        let info = unsafe { info.assume_init() };
        // SAFETY: reading the pid member of a filled (or zeroed) siginfo.
        if nohang != 0 && unsafe { info.si_pid() } == 0 {
            polls -= 1;
            std::thread::yield_now();
            continue;
        }
        if info.si_code == libc::CLD_TRAPPED || info.si_code == libc::CLD_STOPPED {
            return Ok(());
        }
        // It ended (killed from outside before it could stop); it is reaped now.
        return Err(Error::ChildSetup {
            what: "stop before the first instruction (it was killed)",
            source: io::Error::from_raw_os_error(libc::ESRCH),
        });
    }
}

/// `clone3` into `entry` on the stack that `args` describes.
///
/// # Safety
/// `args.stack`/`args.stack_size` must describe writable memory that stays
/// valid until the child execs or exits, `args.flags` must include
/// `CLONE_VM`, `entry` must never return and touch only what `arg` points
/// to (through raw syscalls: it shares this process's memory), and `arg`
/// must stay valid until the child execs or exits.
#[cfg(target_arch = "x86_64")]
unsafe fn clone_raw(
    args: &mut CloneArgs,
    entry: extern "C" fn(*mut c_void) -> !,
    arg: *mut c_void,
) -> isize {
    let ret: isize;
    // SAFETY: the caller upholds the contract above. In the child, rax is 0 and
    // rsp is the top of the new stack (16-byte aligned, so `call` leaves the
    // ABI's alignment); r12/r13 survive the syscall and carry the argument and
    // entry point. `entry` never returns (`ud2` guards it).
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") args as *mut CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Portable fallback: glibc's `clone` (no CLONE_INTO_CGROUP there).
///
/// # Safety
/// As for the x86_64 version.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn clone_raw(
    args: &mut CloneArgs,
    entry: extern "C" fn(*mut c_void) -> !,
    arg: *mut c_void,
) -> isize {
    struct Start {
        entry: extern "C" fn(*mut c_void) -> !,
        arg: *mut c_void,
    }
    extern "C" fn trampoline(start: *mut c_void) -> libc::c_int {
        // SAFETY: `start` is the `Start` below, alive until the child execs or exits.
        let start = unsafe { &*(start as *const Start) };
        (start.entry)(start.arg)
    }
    if args.flags & CLONE_INTO_CGROUP != 0 {
        return -(libc::ENOSYS as isize);
    }
    let mut start = Start { entry, arg };
    let top = (args.stack + args.stack_size) as *mut c_void;
    // SAFETY: per the caller's contract; CLONE_PIDFD stores the pidfd through
    // parent_tid. `start` lives in this frame, and the caller keeps us here
    // (vfork, or a wait) until the child is done with it.
    let r = unsafe {
        libc::clone(
            trampoline,
            top,
            args.flags as libc::c_int | args.exit_signal as libc::c_int,
            &mut start as *mut Start as *mut c_void,
            args.pidfd as *mut libc::c_int,
        )
    };
    if r < 0 {
        -(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL) as isize)
    } else {
        r as isize
    }
}

/// The child: replays the plan, then `execve`. Never returns.
extern "C" fn child_main(arg: *mut c_void) -> ! {
    // SAFETY: `arg` is the `ChildArg` the parent passed; the parent is
    // suspended (CLONE_VFORK) so it stays alive and unchanged.
    let ChildArg { plan, report } = unsafe { &*(arg as *const ChildArg) };
    report.stage.store(Stage::Started as u32, Ordering::Relaxed);
    let fail = |stage: Stage| -> ! {
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL);
        report.stage.store(stage as u32, Ordering::Relaxed);
        report.errno.store(
            if errno == 0 { libc::EINVAL } else { errno },
            Ordering::Release,
        );
        // SAFETY: _exit is async-signal-safe and ends only this child.
        unsafe { libc::_exit(127) }
    };
    // SAFETY: every call below is a raw syscall or an async-signal-safe libc
    // function on memory the plan owns; see the module docs.
    unsafe {
        // Signals: SIGPIPE back to default because Rust programs ignore it;
        // caught ones back to default (their handlers live in the parent's
        // memory): the kernel did that (CLONE_CLEAR_SIGHAND) on the raw
        // clone3 path; elsewhere, ask about every signal.
        let mut dfl = MaybeUninit::<libc::sigaction>::zeroed().assume_init();
        dfl.sa_sigaction = libc::SIG_DFL;
        if libc::sigaction(libc::SIGPIPE, &dfl, ptr::null_mut()) != 0 {
            fail(Stage::Signals);
        }
        if !KERNEL_CLEARS_HANDLERS {
            for sig in 1..libc::SIGRTMAX() {
                if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                    continue;
                }
                let mut old = MaybeUninit::<libc::sigaction>::zeroed();
                if libc::sigaction(sig, ptr::null(), old.as_mut_ptr()) != 0 {
                    continue; // glibc-reserved signals
                }
                let handler = old.assume_init().sa_sigaction;
                if handler != libc::SIG_DFL
                    && handler != libc::SIG_IGN
                    && libc::sigaction(sig, &dfl, ptr::null_mut()) != 0
                {
                    fail(Stage::Signals);
                }
            }
        }
        for file in plan
            .procs_files
            .iter()
            .map(|c| c.as_c_str())
            .chain(plan.extra_procs_file)
        {
            let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                fail(Stage::Cgroup);
            }
            libc::close(fd);
        }
        // A contained job's namespaces: the user namespace first, whose
        // capabilities the cgroup namespace's owner check then sees.
        if plan.userns >= 0 && libc::setns(plan.userns, libc::CLONE_NEWUSER) != 0 {
            fail(Stage::Namespace);
        }
        if plan.cgroupns >= 0 && libc::setns(plan.cgroupns, libc::CLONE_NEWCGROUP) != 0 {
            fail(Stage::Namespace);
        }
        match plan.group {
            ProcessGroup::Inherit => {}
            ProcessGroup::NewGroup => {
                if libc::setpgid(0, 0) != 0 {
                    fail(Stage::Session);
                }
            }
            ProcessGroup::Join(pgid) => {
                if libc::setpgid(0, pgid) != 0 {
                    fail(Stage::Session);
                }
            }
            ProcessGroup::NewSession => {
                if libc::setsid() < 0 {
                    fail(Stage::Session);
                }
            }
        }
        if plan.realtime {
            let param = libc::sched_param { sched_priority: 1 };
            if libc::sched_setscheduler(0, libc::SCHED_RR, &param) != 0 {
                fail(Stage::Priority);
            }
        } else if let Some(nice) = plan.nice
            && libc::setpriority(libc::PRIO_PROCESS, 0, nice) != 0
        {
            fail(Stage::Priority);
        }
        if let Some(cpus) = plan.affinity {
            let words = cpus.as_words();
            if libc::syscall(
                libc::SYS_sched_setaffinity,
                0,
                std::mem::size_of_val(words),
                words.as_ptr(),
            ) != 0
            {
                fail(Stage::Affinity);
            }
        }
        for (resource, limit) in plan.rlimits {
            if libc::syscall(
                libc::SYS_prlimit64,
                0,
                *resource,
                limit as *const libc::rlimit64,
                ptr::null_mut::<libc::rlimit64>(),
            ) != 0
            {
                fail(Stage::Rlimit);
            }
        }
        // Descriptors: copy every source above all numbers in play (close-on-exec),
        // mark the whole table close-on-exec, then dup2 each copy to its target
        // (dup2 clears the flag on the target only).
        let mut tmp = [0 as RawFd; MAX_FD_MOVES];
        if plan.moves.len() > tmp.len() {
            *libc::__errno_location() = libc::EMFILE;
            fail(Stage::Fds);
        }
        for (i, m) in plan.moves.iter().enumerate() {
            let fd = libc::fcntl(m.src, libc::F_DUPFD_CLOEXEC, plan.tmp_base);
            if fd < 0 {
                if m.optional && *libc::__errno_location() == libc::EBADF {
                    tmp[i] = -1;
                    continue;
                }
                fail(Stage::Fds);
            }
            tmp[i] = fd;
        }
        if libc::syscall(
            libc::SYS_close_range,
            0u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            fail(Stage::Fds);
        }
        for (i, m) in plan.moves.iter().enumerate() {
            if tmp[i] >= 0 && libc::dup2(tmp[i], m.target) < 0 {
                fail(Stage::Fds);
            }
        }
        if let Some((uid, gid, groups)) = plan.creds
            && (libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) != 0
                || libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0
                || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0)
        {
            fail(Stage::Credentials);
        }
        if let Some(cwd) = plan.cwd
            && libc::chdir(cwd.as_ptr()) != 0
        {
            fail(Stage::Cwd);
        }
        if plan.traceme
            && libc::ptrace(
                libc::PTRACE_TRACEME,
                0,
                ptr::null_mut::<c_void>(),
                ptr::null_mut::<c_void>(),
            ) != 0
        {
            fail(Stage::Trace);
        }
        let mut empty = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(empty.as_mut_ptr());
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            empty.as_ptr(),
            ptr::null_mut::<libc::sigset_t>(),
            8usize,
        );
        libc::execve(plan.path.as_ptr(), plan.argv.as_ptr(), plan.envp);
        fail(Stage::Exec)
    }
}

/// `getpwuid_r`: fills `pwd` (its strings in `buf`) and returns whether
/// user `uid` has an entry.
fn passwd_by_uid(uid: u32, pwd: &mut MaybeUninit<libc::passwd>, buf: &mut [u8]) -> bool {
    let mut result: *mut libc::passwd = ptr::null_mut();
    // SAFETY: all pointers are valid for the sizes given; `result` is set by the call.
    unsafe {
        libc::getpwuid_r(
            uid,
            pwd.as_mut_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    !result.is_null()
}

/// Resolves a user name or numeric uid with its groups (parent side, may allocate).
pub(crate) fn lookup_user(user: &str) -> Result<Credentials> {
    let name = CString::new(user).map_err(|_| Error::NulByte {
        what: "user name",
        value: user.into(),
    })?;
    let mut pwd = MaybeUninit::<libc::passwd>::zeroed();
    let mut buf = vec![0u8; 16 * 1024];
    let mut result: *mut libc::passwd = ptr::null_mut();
    // SAFETY: all pointers are valid for the sizes given; `result` is set by the call.
    let r = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            pwd.as_mut_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if result.is_null() {
        if let Ok(uid) = user.parse::<u32>() {
            if !passwd_by_uid(uid, &mut pwd, &mut buf) {
                // A bare uid without a passwd entry: its own group id, no supplementary groups.
                return Ok(Credentials {
                    uid,
                    gid: uid,
                    groups: Vec::new(),
                });
            }
        } else if r != 0 && r != libc::ENOENT {
            return Err(Error::os(
                format!("look up user {user} (getpwnam_r)"),
                io::Error::from_raw_os_error(r),
            ));
        } else {
            return Err(Error::NoSuchUser {
                kind: "user",
                name: user.into(),
            });
        }
    }
    // SAFETY: an entry was found (by name or by uid), so `pwd` was filled
    // and its strings point into `buf`.
    let pwd = unsafe { pwd.assume_init() };
    let mut groups = vec![0 as libc::gid_t; 256];
    let mut n = groups.len() as libc::c_int;
    // SAFETY: pw_name is valid while `buf` lives; `groups` has room for `n` entries.
    let r = unsafe { libc::getgrouplist(pwd.pw_name, pwd.pw_gid, groups.as_mut_ptr(), &mut n) };
    groups.truncate(if r < 0 { 0 } else { n as usize });
    if groups.is_empty() {
        groups.push(pwd.pw_gid);
    }
    Ok(Credentials {
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
        groups,
    })
}

/// What the namespace helper needs and reports, shared with it (`CLONE_VM`).
struct NsHelper {
    /// 0 while the parent places the helper, 1 to go on, 2 to give up.
    go: AtomicU32,
    new_user: bool,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    /// Descriptors the helper opened in the shared table (`CLONE_FILES`), or -1.
    user_fd: AtomicI32,
    cgroup_fd: AtomicI32,
    /// The errno of the step that failed, and which (1 user, 2 maps, 3 cgroup, 4 open).
    errno: AtomicI32,
    step: AtomicU32,
}

const GO_WAIT: u32 = 0;
const GO_ON: u32 = 1;

/// The helper: waits until the parent has placed it, unshares, opens the
/// namespaces into the descriptor table it shares with the parent, exits.
/// It shares the parent's memory while the parent's other threads run, so
/// it makes raw syscalls only (rustix's, which keep no `errno`), on memory
/// the parent prepared.
extern "C" fn ns_helper_main(arg: *mut c_void) -> ! {
    // SAFETY: `arg` is the parent's `NsHelper`, alive until this child has
    // exited (the parent waits for that before it returns).
    let h = unsafe { &*(arg as *const NsHelper) };
    use rustix::thread::futex;
    while h.go.load(Ordering::Acquire) == GO_WAIT {
        // Woken, interrupted or already changed: the loop looks again (the
        // helper may not log: it shares the parent's memory and allocator).
        let _ = futex::wait(&h.go, futex::Flags::PRIVATE, GO_WAIT, None);
    }
    let fail = |step: u32, e: rustix::io::Errno| -> ! {
        h.errno.store(e.raw_os_error(), Ordering::Relaxed);
        h.step.store(step, Ordering::Release);
        // SAFETY: ends this child only (it is its own thread group).
        unsafe { libc::syscall(libc::SYS_exit_group, 1) };
        unreachable!()
    };
    if h.go.load(Ordering::Acquire) == GO_ON {
        use rustix::fs::{Mode, OFlags, open};
        use rustix::thread::{UnshareFlags, unshare_unsafe};
        let write_file = |path: &CStr, data: &[u8]| -> rustix::io::Result<()> {
            let fd = open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
            rustix::io::write(&fd, data).map(drop)
        };
        if h.new_user {
            // SAFETY: no descriptor-table or fs flag is unshared, so no
            // descriptor this process holds changes owner.
            if let Err(e) = unsafe { unshare_unsafe(UnshareFlags::NEWUSER) } {
                fail(1, e);
            }
            if let Err(e) = write_file(c"/proc/self/setgroups", b"deny")
                .and_then(|()| write_file(c"/proc/self/uid_map", &h.uid_map))
                .and_then(|()| write_file(c"/proc/self/gid_map", &h.gid_map))
            {
                fail(2, e);
            }
        }
        // SAFETY: as above.
        if let Err(e) = unsafe { unshare_unsafe(UnshareFlags::NEWCGROUP) } {
            fail(3, e);
        }
        let open_ns = |path: &CStr| open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty());
        match open_ns(c"/proc/self/ns/cgroup") {
            Ok(fd) => h.cgroup_fd.store(fd.into_raw_fd(), Ordering::Relaxed),
            Err(e) => fail(4, e),
        }
        if h.new_user {
            match open_ns(c"/proc/self/ns/user") {
                Ok(fd) => h.user_fd.store(fd.into_raw_fd(), Ordering::Relaxed),
                Err(e) => fail(4, e),
            }
        }
        h.step.store(0, Ordering::Release);
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_exit_group, 0) };
    unreachable!()
}

/// A cgroup namespace rooted at the cgroup `place` puts a helper process in
/// (and, with `new_user`, the user namespace that owns it, mapping only this
/// process's user and group). Returns `(user, cgroup)` namespace descriptors.
///
/// The helper shares this process's memory and descriptor table, waits on a
/// futex until `place(pid)` has moved it, unshares, opens both namespaces
/// into the shared table and exits; this thread waits for its end.
pub(crate) fn make_namespaces(
    new_user: bool,
    place: &dyn Fn(i32) -> Result<()>,
) -> Result<(Option<OwnedFd>, OwnedFd)> {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let helper = NsHelper {
        go: AtomicU32::new(GO_WAIT),
        new_user,
        uid_map: format!("{uid} {uid} 1\n").into_bytes(),
        gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        user_fd: AtomicI32::new(-1),
        cgroup_fd: AtomicI32::new(-1),
        errno: AtomicI32::new(0),
        step: AtomicU32::new(u32::MAX),
    };
    let mut stack = MaybeUninit::<ChildStack>::uninit();
    // SAFETY: the stack and `helper` live in this frame, and this function
    // does not return before the helper has exited (the wait below);
    // `ns_helper_main` never returns and uses raw syscalls only.
    let (pid, pidfd) = unsafe {
        clone_child(
            libc::CLONE_FILES as u64,
            None,
            &mut stack,
            ns_helper_main,
            &helper as *const NsHelper as *mut c_void,
        )
    }
    .map_err(|e| Error::os("clone3 (cgroup namespace helper)", e))?;
    // A panic in `place` must not leave the helper waiting on memory this
    // frame is about to give back: it is told to stop and reaped first.
    let placed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| place(pid)));
    helper.go.store(
        if matches!(placed, Ok(Ok(()))) {
            GO_ON
        } else {
            GO_ON + 1
        },
        Ordering::Release,
    );
    rustix::thread::futex::wake(&helper.go, rustix::thread::futex::Flags::PRIVATE, 1)
        .or_log(|| "wake the namespace helper".into());
    // The helper is gone (reaped here, or by an application's own wait) once this returns.
    reap_blocking(&pidfd);
    // SAFETY: the helper opened these in our shared table and handed them
    // over; nothing else owns them.
    let take = |fd: i32| (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) });
    let user = take(helper.user_fd.load(Ordering::Acquire));
    let cgroup = take(helper.cgroup_fd.load(Ordering::Acquire));
    let placed = placed.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    placed?;
    let step = helper.step.load(Ordering::Acquire);
    match cgroup {
        Some(cgroup) if step == 0 => Ok((user, cgroup)),
        _ => {
            let what = match step {
                1 => "make a user namespace for the job",
                2 => "map this user into the job's user namespace",
                3 => "make a cgroup namespace for the job",
                4 => "open the job's namespaces",
                _ => "make the job's namespaces (the helper ended early)",
            };
            Err(Error::os(
                what,
                io::Error::from_raw_os_error(helper.errno.load(Ordering::Acquire)),
            ))
        }
    }
}

/// `NS_GET_USERNS`, `NS_GET_PARENT`, `NS_GET_OWNER_UID` (linux/nsfs.h): `_IO(0xb7, n)`.
const NS_GET_USERNS: libc::c_ulong = 0xb701;
const NS_GET_PARENT: libc::c_ulong = 0xb702;
const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;

/// The user namespace that owns namespace `ns` (`NS_GET_USERNS`), or the
/// parent of user namespace `ns` (`NS_GET_PARENT`): a new descriptor.
pub(crate) fn namespace_relative(ns: BorrowedFd<'_>, parent: bool) -> io::Result<OwnedFd> {
    let request = if parent { NS_GET_PARENT } else { NS_GET_USERNS };
    // SAFETY: both requests take no argument and return a new descriptor
    // (or -1), which nothing else owns.
    let fd = unsafe { libc::ioctl(ns.as_raw_fd(), request as _) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor the kernel just returned.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The uid that owns user namespace `ns` (`NS_GET_OWNER_UID`).
pub(crate) fn namespace_owner(ns: BorrowedFd<'_>) -> io::Result<u32> {
    let mut uid: libc::uid_t = 0;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t to the pointer, which points
    // at a live local.
    if unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_OWNER_UID as _, &mut uid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(uid)
}
