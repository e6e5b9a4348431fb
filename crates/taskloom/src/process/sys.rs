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

use super::ProcessGroup;
pub(crate) use crate::arch::CLONE_INTO_CGROUP_WORKS;
use crate::arch::{
    CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP, CloneArgs, KERNEL_CLEARS_HANDLERS, clone_raw,
};
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
    Seccomp,
}

impl Stage {
    fn from_u32(v: u32) -> Stage {
        const ALL: [Stage; 15] = [
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
            Stage::Seccomp,
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
            Stage::Seccomp => "install the system call provider's filter",
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
    /// A contained job's pid and mount namespaces (-1: none). A pid namespace
    /// holds only processes forked after joining it, so a spawn with one goes
    /// through a relay (`relay_main`) that joins the user and pid namespaces
    /// and forks the child as a child of ours (`CLONE_PARENT`).
    pub pidns: RawFd,
    pub mntns: RawFd,
    /// Where the child starts when `cwd` is `None` and it joins a mount
    /// namespace (joining one moves it to that namespace's root): ours.
    pub ns_cwd: Option<&'a CStr>,
    pub traceme: bool,
    pub rlimits: &'a [(i32, libc::rlimit64)],
    /// A pico process's filter and the handshake with its server.
    pub pico: Option<&'a super::pico::Handoff>,
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
    let (pid, pidfd) = if plan.pidns >= 0 {
        spawn_through_relay(&arg, v2_cgroup)?
    } else {
        // SAFETY: the stack lives in this frame for as long as the child uses it
        // (CLONE_VFORK keeps us here until it execs or exits); `child_main`
        // never returns and touches only `arg`, which outlives the call.
        unsafe {
            clone_child(
                libc::CLONE_VFORK as u64,
                v2_cgroup.map(|cg| cg.as_raw_fd()),
                &mut stack,
                child_main,
                &arg as *const ChildArg as *mut c_void,
                plan.pico.map(|h| &h.pidfd),
            )
        }
        .map_err(|e| SpawnError::Os("clone3", e))?
    };
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

/// What the relay of a spawn into a pid namespace shares with us (`CLONE_VM`).
struct RelayArg<'a> {
    child: &'a ChildArg<'a>,
    /// The job's cgroup2 leaf for `CLONE_INTO_CGROUP` (-1: none).
    cgroup: RawFd,
    /// The child's stack (the relay runs on another).
    stack: *mut MaybeUninit<ChildStack>,
    /// The child's pid and pidfd (in our shared table), once forked.
    pid: AtomicI32,
    pidfd: AtomicI32,
}

/// A spawn into a contained job's pid namespace: a relay, sharing our
/// memory and descriptor table, joins the job's user and pid namespaces and
/// forks the child with `CLONE_PARENT`, so the child is in the namespace
/// and still ours (we wait for it, its exit status comes to us). The relay
/// is placed nowhere: only the child enters the job's cgroup, so it takes
/// no slot of the job's process limit. Returns the child's pid and pidfd.
fn spawn_through_relay(
    arg: &ChildArg<'_>,
    v2_cgroup: Option<&OwnedFd>,
) -> Result<(i32, OwnedFd), SpawnError> {
    let mut relay_stack = MaybeUninit::<ChildStack>::uninit();
    let mut child_stack = MaybeUninit::<ChildStack>::uninit();
    let relay = RelayArg {
        child: arg,
        cgroup: v2_cgroup.map_or(-1, |cg| cg.as_raw_fd()),
        stack: &mut child_stack,
        pid: AtomicI32::new(-1),
        pidfd: AtomicI32::new(-1),
    };
    // SAFETY: both stacks and `relay` live in this frame until the relay has
    // exited (CLONE_VFORK keeps us here until it does; it waits, by its own
    // CLONE_VFORK, until the child has exec'd or exited); `relay_main` never
    // returns and uses raw syscalls only.
    let (_, relay_pidfd) = unsafe {
        clone_child(
            (libc::CLONE_VFORK | libc::CLONE_FILES) as u64,
            None,
            &mut relay_stack,
            relay_main,
            &relay as *const RelayArg as *mut c_void,
            None,
        )
    }
    .map_err(|e| SpawnError::Os("clone3 (spawn relay)", e))?;
    reap_blocking(&relay_pidfd);
    let pid = relay.pid.load(Ordering::Acquire);
    let pidfd = relay.pidfd.load(Ordering::Acquire);
    if pid <= 0 || pidfd < 0 {
        let errno = arg.report.errno.load(Ordering::Acquire);
        return Err(SpawnError::Child {
            stage: Stage::Namespace,
            errno: if errno == 0 { libc::EINVAL } else { errno },
        });
    }
    // SAFETY: the relay's clone3 stored a fresh descriptor in our shared
    // table and handed it over; nothing else owns it.
    Ok((pid, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

/// The relay: joins the job's user and pid namespaces, forks the child
/// (ours, by `CLONE_PARENT`) into the job's cgroup and waits until it has
/// exec'd or exited (`CLONE_VFORK`), then exits. Never returns.
extern "C" fn relay_main(arg: *mut c_void) -> ! {
    // SAFETY: `arg` is the parent's `RelayArg`; the parent is suspended
    // (CLONE_VFORK) until this relay exits, so it stays alive and unchanged.
    let r = unsafe { &*(arg as *const RelayArg) };
    let plan = r.child.plan;
    let fail = |errno: i32| -> ! {
        r.child.report.errno.store(errno, Ordering::Release);
        // SAFETY: ends this relay only (it is its own thread group).
        unsafe { libc::syscall(libc::SYS_exit_group, 1) };
        unreachable!()
    };
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    };
    // SAFETY: raw syscalls on descriptors the plan holds open.
    unsafe {
        // The user namespace first: its capabilities let the pid namespace in.
        if plan.userns >= 0 && libc::setns(plan.userns, libc::CLONE_NEWUSER) != 0 {
            fail(errno());
        }
        if libc::setns(plan.pidns, libc::CLONE_NEWPID) != 0 {
            fail(errno());
        }
    }
    // A pico spawn's server reads the pidfd in its handoff while the child runs.
    let local = AtomicI32::new(-1);
    let slot = plan.pico.map_or(&local, |h| &h.pidfd);
    let mut args = CloneArgs {
        // CLONE_PARENT takes no exit signal of its own: the child gets ours
        // (SIGCHLD), as any child of the parent does.
        flags: (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::CLONE_PARENT) as u64,
        pidfd: slot.as_ptr() as u64,
        exit_signal: 0,
        stack: r.stack as u64,
        stack_size: CHILD_STACK_SIZE as u64,
        ..Default::default()
    };
    if r.cgroup >= 0 {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = r.cgroup as u64;
    }
    // SAFETY: the child's stack and its `ChildArg` live in the parent's frame,
    // which waits for this relay, which waits (CLONE_VFORK) for the child.
    let ret = unsafe {
        clone_raw(
            &mut args,
            child_main,
            r.child as *const ChildArg as *mut c_void,
        )
    };
    if ret < 0 {
        fail((-ret) as i32);
    }
    r.pidfd
        .store(slot.load(Ordering::Acquire), Ordering::Relaxed);
    r.pid.store(ret as i32, Ordering::Release);
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_exit_group, 0) };
    unreachable!()
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
    pidfd_slot: Option<&AtomicI32>,
) -> io::Result<(i32, OwnedFd)> {
    // The pidfd lands in `pidfd_slot` when given (a pico spawn's server
    // reads it there while we wait for the child), else in a local.
    let local = AtomicI32::new(-1);
    let slot = pidfd_slot.unwrap_or(&local);
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
        pidfd: slot.as_ptr() as u64,
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
    Ok((ret as i32, unsafe {
        OwnedFd::from_raw_fd(slot.load(Ordering::Acquire))
    }))
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
/// detaches it: into a group-stop when `stay_stopped` (it stays stopped
/// before its first instruction until SIGCONT: a suspended start), else
/// running (a protected start, traced only so that no one else could
/// attach before its exec).
pub(crate) fn hand_over_exec_stop(
    pid: i32,
    pidfd: BorrowedFd<'_>,
    stay_stopped: bool,
) -> Result<()> {
    // The exec SIGTRAP stop: execve is still loading the image, so sleep.
    wait_stopped(pidfd, 0)?;
    let signal = if stay_stopped { libc::SIGSTOP } else { 0 };
    // SAFETY: plain ptrace request on our own tracee; no pointers passed.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_DETACH,
            pid,
            ptr::null_mut::<c_void>(),
            signal as usize as *mut c_void,
        )
    };
    if r < 0 {
        return Err(Error::last_os(format!(
            "let process {pid} go on from its exec stop (ptrace detach)"
        )));
    }
    if !stay_stopped {
        return Ok(());
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
        // capabilities the cgroup namespace's owner check then sees (with a
        // pid namespace, the relay joined it already).
        if plan.userns >= 0 && plan.pidns < 0 && libc::setns(plan.userns, libc::CLONE_NEWUSER) != 0
        {
            fail(Stage::Namespace);
        }
        if plan.cgroupns >= 0 && libc::setns(plan.cgroupns, libc::CLONE_NEWCGROUP) != 0 {
            fail(Stage::Namespace);
        }
        // The job's mount namespace (its own cgroup2 view and /proc) moves
        // the child to that namespace's root: back to where it starts.
        if plan.mntns >= 0 {
            if libc::setns(plan.mntns, libc::CLONE_NEWNS) != 0 {
                fail(Stage::Namespace);
            }
            if plan.cwd.is_none()
                && let Some(dir) = plan.ns_cwd
                && libc::chdir(dir.as_ptr()) != 0
            {
                fail(Stage::Cwd);
            }
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
        // A pico process: the filter goes in last, so that only the
        // program's own calls (and the two below) reach the provider. The
        // listener is close-on-exec: the child waits, without a system call
        // (any could be the provider's), until the server has its own copy.
        if let Some(h) = plan.pico {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                fail(Stage::Seccomp);
            }
            let prog = libc::sock_fprog {
                len: h.filter.len() as u16,
                filter: h.filter.as_ptr() as *mut libc::sock_filter,
            };
            let fd = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &prog as *const libc::sock_fprog,
            );
            if fd < 0 {
                fail(Stage::Seccomp);
            }
            h.listener.store(fd as i32, Ordering::Release);
            loop {
                match h.taken.load(Ordering::Acquire) {
                    0 => std::hint::spin_loop(),
                    1 => break,
                    _ => {
                        *libc::__errno_location() = h.errno.load(Ordering::Relaxed);
                        fail(Stage::Seccomp);
                    }
                }
            }
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

/// What a job's own mount and pid namespaces hold, prepared by the parent.
#[derive(Debug, Default)]
pub(crate) struct Isolation {
    /// Where cgroup2 is mounted here: each gets a fresh cgroup2 mount made
    /// inside the job's cgroup namespace, which shows only the job's subtree.
    pub cgroup2_mounts: Vec<CString>,
    /// Sockets (a file: `/dev/null` is bound over it) and directories (an
    /// empty read-only tmpfs over it) the members must not reach: the
    /// user's bus and service manager, when the job hides services.
    pub hide_files: Vec<CString>,
    pub hide_dirs: Vec<CString>,
}

/// What the namespace helper made.
#[derive(Debug)]
pub(crate) struct MadeNamespaces {
    pub user: Option<OwnedFd>,
    pub cgroup: OwnedFd,
    /// With an [`Isolation`]: the job's own mount and pid namespaces and
    /// their init.
    pub isolated: Option<Isolated>,
}

/// A contained job's mount and pid namespaces and the pid namespace's init.
#[derive(Debug)]
pub(crate) struct Isolated {
    pub mnt: OwnedFd,
    pub pid: OwnedFd,
    /// The init's pid (in our namespace) while it is still in the job's
    /// cgroup, where the helper was: the creator moves it out.
    pub init_pid: i32,
    /// Our end of the init's control socket (see [`arm_init`]).
    pub init_ctl: OwnedFd,
}

/// What the namespace helper needs and reports, shared with it (`CLONE_VM`).
struct NsHelper<'a> {
    /// 0 until the helper waits to be placed (its namespaces but the cgroup
    /// one made, the init forked), 1 then, 2 when it failed before.
    ready: AtomicU32,
    /// 0 while the parent places the helper, 1 to go on, 2 to give up.
    go: AtomicU32,
    new_user: bool,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    isolation: Option<&'a Isolation>,
    /// The init's end of its control socket (in the shared table), or -1.
    init_end: RawFd,
    /// Our end, on which the helper reads the init's first word.
    our_end: RawFd,
    /// Set once the helper closed `init_end` in the shared table (after
    /// the fork, so that a dead init's end-of-file reaches the read).
    init_end_closed: std::sync::atomic::AtomicBool,
    /// Descriptors the helper opened in the shared table (`CLONE_FILES`), or -1.
    user_fd: AtomicI32,
    cgroup_fd: AtomicI32,
    mnt_fd: AtomicI32,
    pid_fd: AtomicI32,
    init_pid: AtomicI32,
    /// The errno of the step that failed, and which (see `make_namespaces`).
    errno: AtomicI32,
    step: AtomicU32,
}

const GO_WAIT: u32 = 0;
const GO_ON: u32 = 1;

/// The helper: makes the user namespace and, with an isolation, the mount
/// and pid namespaces and forks their init, all while it is still in our
/// cgroup (so the init's fork is nobody's in the job: no job counts it);
/// then waits until the parent has placed it, unshares the cgroup
/// namespace there, makes the mounts, opens the namespaces into the
/// descriptor table it shares with the parent, exits. It shares the
/// parent's memory while the parent's other threads run, so it makes raw
/// syscalls only (rustix's, which keep no `errno`), on memory the parent
/// prepared.
extern "C" fn ns_helper_main(arg: *mut c_void) -> ! {
    // SAFETY: `arg` is the parent's `NsHelper`, alive until this child has
    // exited (the parent waits for that before it returns).
    let h = unsafe { &*(arg as *const NsHelper) };
    use rustix::fs::{Mode, OFlags, open, openat};
    use rustix::thread::{UnshareFlags, futex, unshare_unsafe};
    let fail = |step: u32, e: rustix::io::Errno| -> ! {
        h.errno.store(e.raw_os_error(), Ordering::Relaxed);
        h.step.store(step, Ordering::Release);
        if h.ready.load(Ordering::Acquire) == 0 {
            h.ready.store(2, Ordering::Release);
            futex::wake(&h.ready, futex::Flags::PRIVATE, 1).ok();
        }
        // SAFETY: ends this child only (it is its own thread group).
        unsafe { libc::syscall(libc::SYS_exit_group, 1) };
        unreachable!()
    };
    let errno = || rustix::io::Errno::from_raw_os_error(last_errno());
    // mount(2) with optional C strings; `errno` says why when it is false.
    let mount = |src: Option<&CStr>,
                 dst: &CStr,
                 fstype: Option<&CStr>,
                 flags: libc::c_ulong,
                 data: Option<&CStr>| {
        let p = |s: Option<&CStr>| s.map_or(ptr::null(), CStr::as_ptr);
        // SAFETY: every pointer is null or a NUL-terminated string that
        // outlives the call; mount(2) reads them only.
        unsafe { libc::mount(p(src), dst.as_ptr(), p(fstype), flags, p(data).cast()) == 0 }
    };
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
    // Our namespace directory, opened while /proc is still the machine's
    // (the init mounts its own over it): every namespace is opened there.
    let ns_dir = match open(
        c"/proc/self/ns",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => fail(4, e),
    };
    if h.isolation.is_some() {
        // SAFETY: as above (a mount namespace changes no descriptor).
        if let Err(e) = unsafe { unshare_unsafe(UnshareFlags::NEWNS) } {
            fail(5, e);
        }
        // Nothing mounted here propagates back to the machine.
        if !mount(None, c"/", None, libc::MS_REC | libc::MS_SLAVE, None) {
            fail(5, errno());
        }
        // SAFETY: as above.
        if let Err(e) = unsafe { unshare_unsafe(UnshareFlags::NEWPID) } {
            fail(8, e);
        }
        // The first process forked now is the pid namespace's init.
        // SAFETY: a fork (no CLONE_VM): the child runs on a copy of this
        // stack and memory, and only `init_main`'s raw syscalls.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid < 0 {
            fail(9, errno());
        }
        if pid == 0 {
            // SAFETY: freshly forked; `init_end` is open in its copy of the table.
            unsafe { init_main(h.init_end) }
        }
        h.init_pid.store(pid as i32, Ordering::Relaxed);
        // SAFETY: the init has its own copy; ours goes, and the parent is told.
        unsafe { libc::close(h.init_end) };
        h.init_end_closed.store(true, Ordering::Release);
        // Its first word: 0 once it mounted the namespace's /proc, else the errno.
        let mut word = [0u8; 4];
        // SAFETY: reading into a local buffer from a descriptor we share.
        let n = unsafe { libc::read(h.our_end, word.as_mut_ptr().cast(), 4) };
        let status = if n == 4 {
            i32::from_ne_bytes(word)
        } else {
            libc::EPROTO
        };
        if status != 0 {
            fail(10, rustix::io::Errno::from_raw_os_error(status));
        }
    }
    // Only now may the parent move us: the init was forked where we started.
    h.ready.store(1, Ordering::Release);
    futex::wake(&h.ready, futex::Flags::PRIVATE, 1).ok();
    while h.go.load(Ordering::Acquire) == GO_WAIT {
        // Woken, interrupted or already changed: the loop looks again (the
        // helper may not log: it shares the parent's memory and allocator).
        let _ = futex::wait(&h.go, futex::Flags::PRIVATE, GO_WAIT, None);
    }
    if h.go.load(Ordering::Acquire) == GO_ON {
        // SAFETY: as above.
        if let Err(e) = unsafe { unshare_unsafe(UnshareFlags::NEWCGROUP) } {
            fail(3, e);
        }
        if let Some(iso) = h.isolation {
            const HIDDEN: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            for dir in &iso.cgroup2_mounts {
                // The kernel refuses a superblock right on top of its own
                // mount's root (EBUSY): a tmpfs goes between them. The
                // cgroup2 mount, made inside the cgroup namespace, shows
                // the job as its root.
                if !mount(
                    Some(c"tmpfs"),
                    dir,
                    Some(c"tmpfs"),
                    HIDDEN,
                    Some(c"size=4k,mode=0755"),
                ) || !mount(
                    Some(c"cgroup2"),
                    dir,
                    Some(c"cgroup2"),
                    HIDDEN | libc::MS_RELATIME,
                    None,
                ) {
                    fail(6, errno());
                }
            }
            for file in &iso.hide_files {
                if !mount(Some(c"/dev/null"), file, None, libc::MS_BIND, None) {
                    fail(7, errno());
                }
            }
            for dir in &iso.hide_dirs {
                let ro = HIDDEN | libc::MS_RDONLY;
                if !mount(
                    Some(c"tmpfs"),
                    dir,
                    Some(c"tmpfs"),
                    ro,
                    Some(c"size=4k,mode=0555"),
                ) {
                    fail(7, errno());
                }
            }
        }
        let store = |name: &CStr, slot: &AtomicI32, step: u32| match openat(
            &ns_dir,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => slot.store(fd.into_raw_fd(), Ordering::Relaxed),
            Err(e) => fail(step, e),
        };
        store(c"cgroup", &h.cgroup_fd, 4);
        if h.new_user {
            store(c"user", &h.user_fd, 4);
        }
        if h.isolation.is_some() {
            store(c"mnt", &h.mnt_fd, 11);
            store(c"pid_for_children", &h.pid_fd, 12);
        }
        h.step.store(0, Ordering::Release);
    }
    drop(ns_dir);
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_exit_group, 0) };
    unreachable!()
}

fn last_errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

/// The init's control messages: arm kill-on-close with the holders' pipe
/// (its read end travels with the message), or keep the namespace until
/// the job is deleted.
const INIT_KILL_ON_CLOSE: u8 = b'K';
const INIT_PERSIST: u8 = b'P';

/// The init of a contained job's pid namespace. When it ends, the kernel
/// kills every process in the namespace, and no member can end it early or
/// hold it: from inside, signals to it are dropped unless it handles them
/// (SIGKILL and SIGSTOP always), it is not dumpable (no ptrace, no
/// `/proc/1/fd`), and its cgroup is outside the job's namespace. It mounts
/// the namespace's `/proc`, reaps orphans, and ends when the job's last
/// handle is gone (kill-on-close: end-of-file on the holders' pipe), when
/// its creator goes before arming it, or when it is killed with the job.
///
/// # Safety
/// Must only run in a freshly forked child; raw syscalls only.
unsafe fn init_main(ctl: RawFd) -> ! {
    // SAFETY: raw syscalls on stack memory.
    unsafe {
        if ctl > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, (ctl - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (ctl + 1) as u32, u32::MAX, 0u32);
        libc::prctl(
            libc::PR_SET_NAME,
            c"taskloom-init".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        let status = if libc::mount(
            c"proc".as_ptr(),
            c"/proc".as_ptr(),
            c"proc".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            ptr::null(),
        ) == 0
        {
            0
        } else {
            last_errno()
        };
        libc::write(ctl, status.to_ne_bytes().as_ptr().cast(), 4);
        if status != 0 {
            libc::syscall(libc::SYS_exit_group, 1);
        }
        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(all.as_mut_ptr());
        libc::sigprocmask(libc::SIG_SETMASK, all.as_ptr(), ptr::null_mut());
        let mut chld = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(chld.as_mut_ptr());
        libc::sigaddset(chld.as_mut_ptr(), libc::SIGCHLD);
        let sfd = libc::signalfd(-1, chld.as_ptr(), libc::SFD_CLOEXEC);
        let mut ctl = ctl;
        let mut holders: RawFd = -1;
        let mut armed = false;
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: ctl,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: sfd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: holders,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // Without a signalfd, reap at least once a second.
            let timeout = if sfd < 0 { 1000 } else { -1 };
            libc::poll(fds.as_mut_ptr(), 3, timeout);
            if fds[1].revents != 0 {
                let mut info = [0u8; 128];
                libc::read(sfd, info.as_mut_ptr().cast(), info.len());
            }
            while libc::waitpid(-1, ptr::null_mut(), libc::WNOHANG | libc::__WALL) > 0 {}
            if ctl >= 0 && fds[0].revents != 0 {
                let mut byte = [0u8; 1];
                let mut iov = libc::iovec {
                    iov_base: byte.as_mut_ptr().cast(),
                    iov_len: 1,
                };
                let mut space = [0u64; 8];
                let mut msg: libc::msghdr = MaybeUninit::zeroed().assume_init();
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = space.as_mut_ptr().cast();
                msg.msg_controllen = std::mem::size_of_val(&space) as _;
                let n = libc::recvmsg(ctl, &mut msg, libc::MSG_CMSG_CLOEXEC);
                if n < 0 && last_errno() == libc::EINTR {
                    continue;
                }
                if n == 1 && byte[0] == INIT_KILL_ON_CLOSE {
                    let cmsg = libc::CMSG_FIRSTHDR(&msg);
                    if !cmsg.is_null()
                        && (*cmsg).cmsg_level == libc::SOL_SOCKET
                        && (*cmsg).cmsg_type == libc::SCM_RIGHTS
                    {
                        holders = ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const RawFd);
                    }
                    armed = holders >= 0;
                } else if n == 1 && byte[0] == INIT_PERSIST {
                    armed = true;
                } else if n <= 0 {
                    if !armed {
                        // The creator went before arming: the job was not made.
                        libc::syscall(libc::SYS_exit_group, 0);
                    }
                    libc::close(ctl);
                    ctl = -1;
                }
            }
            if holders >= 0 && fds[2].revents != 0 {
                let mut buf = [0u8; 64];
                let n = libc::read(holders, buf.as_mut_ptr().cast(), buf.len());
                if n == 0 || (n < 0 && last_errno() != libc::EINTR && last_errno() != libc::EAGAIN)
                {
                    // Every holder is gone: kill-on-close, by the kernel.
                    libc::syscall(libc::SYS_exit_group, 0);
                }
            }
        }
    }
}

/// Tells a job's init how it ends: with the job's last handle (`holders`,
/// a read end of the holders' pipe, sent along) or with the job itself.
pub(crate) fn arm_init(ctl: BorrowedFd<'_>, holders: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let mut byte = [if holders.is_some() {
        INIT_KILL_ON_CLOSE
    } else {
        INIT_PERSIST
    }];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut space = [0u64; 8];
    // SAFETY: a zeroed msghdr is valid; every pointer set below points at
    // locals that outlive the sendmsg call, and the control buffer is
    // large and aligned enough for one descriptor (CMSG_SPACE(4) <= 64).
    unsafe {
        let mut msg: libc::msghdr = MaybeUninit::zeroed().assume_init();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if let Some(fd) = holders {
            msg.msg_control = space.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
            ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut RawFd, fd.as_raw_fd());
        }
        if libc::sendmsg(ctl.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A cgroup namespace rooted at the cgroup `place` puts a helper process in
/// (and, with `new_user`, the user namespace that owns it, mapping only this
/// process's user and group; with `isolation`, a mount namespace and a pid
/// namespace with its init, see [`Isolated`]).
///
/// The helper shares this process's memory and descriptor table, waits on a
/// futex until `place(pid)` has moved it, unshares, opens the namespaces
/// into the shared table and exits; this thread waits for its end.
pub(crate) fn make_namespaces(
    new_user: bool,
    isolation: Option<&Isolation>,
    place: &dyn Fn(i32) -> Result<()>,
) -> Result<MadeNamespaces> {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let (ours, init_end) = match isolation {
        Some(_) => {
            let mut pair = [-1; 2];
            // SAFETY: socketpair fills the two-element array.
            if unsafe {
                libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                    0,
                    pair.as_mut_ptr(),
                )
            } != 0
            {
                return Err(Error::last_os("socketpair (the job's init)"));
            }
            // SAFETY: fresh descriptors that nothing else owns.
            unsafe {
                (
                    Some(OwnedFd::from_raw_fd(pair[0])),
                    Some(OwnedFd::from_raw_fd(pair[1])),
                )
            }
        }
        None => (None, None),
    };
    let helper = NsHelper {
        ready: AtomicU32::new(0),
        go: AtomicU32::new(GO_WAIT),
        new_user,
        uid_map: format!("{uid} {uid} 1\n").into_bytes(),
        gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        isolation,
        init_end: init_end.as_ref().map_or(-1, |f| f.as_raw_fd()),
        our_end: ours.as_ref().map_or(-1, |f| f.as_raw_fd()),
        init_end_closed: std::sync::atomic::AtomicBool::new(false),
        user_fd: AtomicI32::new(-1),
        cgroup_fd: AtomicI32::new(-1),
        mnt_fd: AtomicI32::new(-1),
        pid_fd: AtomicI32::new(-1),
        init_pid: AtomicI32::new(-1),
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
            None,
        )
    }
    .map_err(|e| Error::os("clone3 (cgroup namespace helper)", e))?;
    // It is placed once it made what must not be in the job (the init's fork).
    while helper.ready.load(Ordering::Acquire) == 0 {
        let _ = rustix::thread::futex::wait(
            &helper.ready,
            rustix::thread::futex::Flags::PRIVATE,
            0,
            None,
        );
    }
    // A panic in `place` must not leave the helper waiting on memory this
    // frame is about to give back: it is told to stop and reaped first.
    let placed = if helper.ready.load(Ordering::Acquire) == 1 {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| place(pid)))
    } else {
        // It failed before (its step says where) and has exited.
        Ok(Ok(()))
    };
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
    if helper.init_end_closed.load(Ordering::Acquire) {
        // Closed by the helper already: only forgotten here.
        let _ = init_end.map(IntoRawFd::into_raw_fd);
    }
    // SAFETY: the helper opened these in our shared table and handed them
    // over; nothing else owns them.
    let take = |fd: i32| (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) });
    let user = take(helper.user_fd.load(Ordering::Acquire));
    let cgroup = take(helper.cgroup_fd.load(Ordering::Acquire));
    let mnt = take(helper.mnt_fd.load(Ordering::Acquire));
    let pidns = take(helper.pid_fd.load(Ordering::Acquire));
    let init_pid = helper.init_pid.load(Ordering::Acquire);
    let placed = placed.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    placed?;
    let step = helper.step.load(Ordering::Acquire);
    let isolated = match (mnt, pidns, ours) {
        (Some(mnt), Some(pid), Some(init_ctl)) if init_pid > 0 => Some(Isolated {
            mnt,
            pid,
            init_pid,
            init_ctl,
        }),
        // Our end closed: an init that started ends by itself.
        _ => None,
    };
    match cgroup {
        Some(cgroup) if step == 0 && isolation.is_some() == isolated.is_some() => {
            Ok(MadeNamespaces {
                user,
                cgroup,
                isolated,
            })
        }
        _ => {
            let what = match step {
                1 => "make a user namespace for the job",
                2 => "map this user into the job's user namespace",
                3 => "make a cgroup namespace for the job",
                4 => "open the job's namespaces",
                5 => "make a mount namespace for the job",
                6 => "mount the job's own cgroup2 view",
                7 => "hide the service sockets from the job",
                8 => "make a pid namespace for the job",
                9 => "fork the job's init",
                10 => "mount /proc for the job's pid namespace",
                11 => "open the job's mount namespace",
                12 => "open the job's pid namespace",
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
