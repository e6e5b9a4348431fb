//! The process handle: a pidfd, so it never names a recycled pid.
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, Result};
use crate::linux::{self as inspect, parse::parse_stat};
use crate::priority::PriorityClass;

use super::{ExitStatus, ProcessAccess, ProcessTimes};

/// `SIGKILL` for 9, and so on; `signal N` for the ones without a name.
pub fn signal_name(signal: i32) -> String {
    match SIGNAL_NAMES.get(signal as usize) {
        Some(name) if signal > 0 => (*name).to_string(),
        _ => format!("signal {signal}"),
    }
}

/// The signal a name or number stands for, as `kill -s` takes it: `TERM`,
/// `SIGTERM`, `sigterm` and `15` are all 15. `None` for anything else.
pub fn signal_number(name: &str) -> Option<i32> {
    if let Ok(n) = name.parse::<i32>() {
        let max = libc::SIGRTMAX();
        return (1..=max).contains(&n).then_some(n);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNAL_NAMES
        .iter()
        .position(|n| n.strip_prefix("SIG") == Some(bare))
        .map(|i| i as i32)
}

const SIGNAL_NAMES: [&str; 32] = [
    "0",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// What an ended child used, from `wait4`'s `rusage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ResourceUsage {
    /// User CPU time.
    pub user: Duration,
    /// Kernel CPU time.
    pub kernel: Duration,
    /// Peak resident set size in bytes.
    pub peak_rss: u64,
    /// Major page faults.
    pub major_faults: u64,
    /// Minor page faults.
    pub minor_faults: u64,
    /// Voluntary context switches.
    pub voluntary_switches: u64,
    /// Involuntary context switches.
    pub involuntary_switches: u64,
}

/// A handle to a process, holding a pidfd (immune to pid reuse).
///
/// Dropping the handle neither kills nor waits for the process (as closing
/// a Windows handle does neither); an unwaited child stays a zombie until
/// this process waits for it or exits, as with `std::process::Child`.
#[derive(Debug)]
pub struct Process {
    pid: i32,
    pidfd: OwnedFd,
    is_child: bool,
    created: SystemTime,
    ended: Option<(ExitStatus, ResourceUsage, SystemTime)>,
    /// The parent's end of the child's stdin, when piped.
    pub stdin: Option<File>,
    /// The parent's end of the child's stdout, when piped.
    pub stdout: Option<File>,
    /// The parent's end of the child's stderr, when piped.
    pub stderr: Option<File>,
    /// What a SIGKILL of this child reports instead, when its killer left an
    /// exit code (`TerminateJobObject(job, code)`): set by the job that spawned it.
    kill_code: Option<KillCodeSource>,
    /// What this handle may do, checked at each use (a spawned child's
    /// handle may do everything; an opened one what it was opened for).
    access: ProcessAccess,
    /// What its system call provider did, for a pico process.
    pico: Option<std::sync::Arc<super::pico::PicoStats>>,
}

/// Where a killed child's exit code is looked up (see `Process::report_kills_as`).
pub(crate) struct KillCodeSource(Box<dyn Fn() -> Option<i32> + Send + Sync>);

/// How `waitid` reports a child's end (`CLD_EXITED`, `CLD_DUMPED`, or a signal).
fn status_from_siginfo(code: i32, status: i32) -> ExitStatus {
    match code {
        libc::CLD_EXITED => ExitStatus::Exited { code: status },
        libc::CLD_DUMPED => ExitStatus::Signaled {
            signal: status,
            core_dumped: true,
        },
        _ => ExitStatus::Signaled {
            signal: status,
            core_dumped: false,
        },
    }
}

impl std::fmt::Debug for KillCodeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KillCodeSource")
    }
}

impl Process {
    /// A SIGKILL of this child reports the exit code `source` gives, when it
    /// gives one (a job terminated with a code), as Windows reports the code
    /// given to `TerminateJobObject`.
    pub(crate) fn report_kills_as(
        &mut self,
        source: impl Fn() -> Option<i32> + Send + Sync + 'static,
    ) {
        self.kill_code = Some(KillCodeSource(Box::new(source)));
    }

    pub(super) fn from_spawn(
        pid: i32,
        pidfd: OwnedFd,
        created: SystemTime,
        ends: [Option<OwnedFd>; 3],
    ) -> Self {
        let [stdin, stdout, stderr] = ends.map(|e| e.map(File::from));
        Process {
            pid,
            pidfd,
            is_child: true,
            created,
            ended: None,
            stdin,
            stdout,
            stderr,
            kill_code: None,
            access: ProcessAccess::all(),
            pico: None,
        }
    }

    /// What the system call provider of this pico process has done so far
    /// (`None` for a process spawned without one).
    pub fn pico_stats(&self) -> Option<&super::pico::PicoStats> {
        self.pico.as_deref()
    }

    pub(super) fn set_pico(&mut self, stats: std::sync::Arc<super::pico::PicoStats>) {
        self.pico = Some(stats);
    }

    /// `OpenProcess(SYNCHRONIZE)`: a handle to an existing process by pid,
    /// to wait for it (and reap it, when it is our child). Terminating,
    /// suspending or reading its times take [`Process::open_with_access`].
    pub fn open(pid: i32) -> Result<Self> {
        Self::open_with_access(pid, ProcessAccess::SYNCHRONIZE)
    }

    /// `OpenProcess` with access rights: each right asked for is checked now
    /// and refused with the kernel's own error (EPERM or EACCES) if this
    /// process may not use it; each use of the handle is then checked
    /// against the rights it was given (a handle opened to wait cannot
    /// terminate), as on Windows.
    pub fn open_with_access(pid: i32, access: ProcessAccess) -> Result<Self> {
        if pid <= 0 {
            return Err(Error::NoSuchProcess { pid });
        }
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).ok_or(Error::NoSuchProcess { pid })?,
            rustix::process::PidfdFlags::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::SRCH => Error::NoSuchProcess { pid },
            e => Error::os(format!("pidfd_open of process {pid}"), e.into()),
        })?;
        if access.intersects(ProcessAccess::TERMINATE | ProcessAccess::SUSPEND_RESUME) {
            send_signal(pidfd.as_fd(), 0).map_err(|e| match e {
                Error::PermissionDenied { source, .. } => Error::PermissionDenied {
                    what: format!("signal process {pid}"),
                    source,
                },
                e => e,
            })?;
        }
        if access.contains(ProcessAccess::QUERY_INFORMATION) {
            std::fs::read(format!("/proc/{pid}/environ")).map_err(|source| {
                Error::PermissionDenied {
                    what: format!("query process {pid}"),
                    source,
                }
            })?;
        }
        let stat = std::fs::read(format!("/proc/{pid}/stat")).unwrap_or_default();
        let (ppid, start_ticks) = parse_stat(&stat)
            .map(|s| (s.ppid, s.starttime))
            .unwrap_or((0, 0));
        let is_child = ppid == std::process::id() as i32;
        let created = inspect::boot_time() + inspect::ticks(start_ticks);
        Ok(Process {
            pid,
            pidfd,
            is_child,
            created,
            ended: None,
            stdin: None,
            stdout: None,
            stderr: None,
            kill_code: None,
            access: access | ProcessAccess::SYNCHRONIZE,
            pico: None,
        })
    }

    /// The rights this handle was given (`GetHandleInformation`'s access mask).
    pub fn access(&self) -> ProcessAccess {
        self.access
    }

    /// Refuses a use this handle was not opened for, as Windows does when
    /// the handle lacks the right (ERROR_ACCESS_DENIED), whatever the
    /// kernel would allow.
    fn require(&self, right: ProcessAccess, what: &str) -> Result<()> {
        if self.access.contains(right) {
            return Ok(());
        }
        let name = right.iter_names().next().map_or("", |(n, _)| n);
        Err(Error::not_granted(
            format!("{what} process {}", self.pid),
            "PROCESS",
            name,
        ))
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pidfd behind the handle.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Whether the process is in the caller's process group: a terminal's
    /// Ctrl-C, Ctrl-\ and hang-up then reach it together with the caller
    /// (`false` once it is gone).
    pub fn shares_callers_group(&self) -> bool {
        // A process started by a bare init, or whose group leader is outside
        // the caller's pid namespace, is in group 0: compare, never assume
        // (rustix's getpgid asserts a positive group, so nix's here).
        use nix::unistd::{Pid, getpgid, getpgrp};
        getpgid(Some(Pid::from_raw(self.pid))).is_ok_and(|g| g == getpgrp())
    }

    /// Resumes a process that was started suspended or suspended with
    /// [`suspend`](Self::suspend) (SIGCONT).
    pub fn resume(&self) -> Result<()> {
        self.require(ProcessAccess::SUSPEND_RESUME, "resume")?;
        self.signal(libc::SIGCONT)
    }

    /// Suspends every thread of the process (SIGSTOP; `NtSuspendProcess`).
    pub fn suspend(&self) -> Result<()> {
        self.require(ProcessAccess::SUSPEND_RESUME, "suspend")?;
        self.signal(libc::SIGSTOP)
    }

    /// `TerminateProcess`: SIGKILL. The exit status then reads "killed by SIGKILL";
    /// Linux has no way to impose an exit code from outside.
    pub fn terminate(&self) -> Result<()> {
        self.require(ProcessAccess::TERMINATE, "terminate")?;
        if self.ended.is_some() {
            return Ok(());
        }
        match self.signal(libc::SIGKILL) {
            Err(Error::NoSuchProcess { .. }) => Ok(()),
            r => r,
        }
    }

    /// The process's threads now (`/proc/<pid>/task`), checked to be its
    /// own: the pidfd still names a live process after the listing.
    fn threads(&self) -> Result<Vec<rustix::process::Pid>> {
        let gone = || Error::NoSuchProcess { pid: self.pid };
        let tids: Vec<_> = std::fs::read_dir(format!("/proc/{}/task", self.pid))
            .map_err(|_| gone())?
            .flatten()
            .filter_map(|t| t.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(rustix::process::Pid::from_raw)
            .collect();
        send_signal(self.pidfd.as_fd(), 0).map_err(|_| gone())?;
        Ok(tids)
    }

    /// Applies `set` to every thread of the process as it is now; a
    /// thread that ended meanwhile needs nothing.
    fn each_thread(
        &self,
        what: &str,
        set: impl Fn(rustix::process::Pid) -> rustix::io::Result<()>,
    ) -> Result<()> {
        for tid in self.threads()? {
            match set(tid) {
                Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                Err(e) if e == rustix::io::Errno::PERM || e == rustix::io::Errno::ACCESS => {
                    return Err(Error::PermissionDenied {
                        what: format!(
                            "{what} of process {} (thread {})",
                            self.pid,
                            tid.as_raw_nonzero()
                        ),
                        source: e.into(),
                    });
                }
                Err(e) => {
                    return Err(Error::os(
                        format!(
                            "{what} of process {} (thread {})",
                            self.pid,
                            tid.as_raw_nonzero()
                        ),
                        e.into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `GetProcessAffinityMask`: the CPUs the process (its main thread) may
    /// run on.
    pub fn affinity(&self) -> Result<crate::cpuset::CpuSet> {
        self.require(ProcessAccess::QUERY_INFORMATION, "read the affinity of")
            .or_else(|_| self.require(ProcessAccess::SET_INFORMATION, "read the affinity of"))?;
        let pid = rustix::process::Pid::from_raw(self.pid)
            .ok_or(Error::NoSuchProcess { pid: self.pid })?;
        let set = rustix::thread::sched_getaffinity(Some(pid))
            .map_err(|_| Error::NoSuchProcess { pid: self.pid })?;
        let mut out = crate::cpuset::CpuSet::new();
        for cpu in 0..rustix::thread::CpuSet::MAX_CPU {
            if set.is_set(cpu) {
                out.insert(cpu);
            }
        }
        Ok(out)
    }

    /// `SetProcessAffinityMask`: every thread of the process, as it is now,
    /// may run only on `cpus`.
    pub fn set_affinity(&self, cpus: &crate::cpuset::CpuSet) -> Result<()> {
        self.require(ProcessAccess::SET_INFORMATION, "set the affinity of")?;
        let mut set = rustix::thread::CpuSet::new();
        for cpu in cpus.iter() {
            if cpu >= rustix::thread::CpuSet::MAX_CPU {
                return Err(Error::InvalidInput {
                    what: "affinity",
                    reason: format!("CPU {cpu} is beyond what the kernel's affinity mask holds"),
                });
            }
            set.set(cpu);
        }
        self.each_thread("set the affinity", |tid| {
            rustix::thread::sched_setaffinity(Some(tid), &set)
        })
    }

    /// The process's nice value (its main thread's; -20 highest, 19 lowest).
    pub fn nice(&self) -> Result<i32> {
        self.require(ProcessAccess::QUERY_INFORMATION, "read the priority of")
            .or_else(|_| self.require(ProcessAccess::SET_INFORMATION, "read the priority of"))?;
        let pid = rustix::process::Pid::from_raw(self.pid)
            .ok_or(Error::NoSuchProcess { pid: self.pid })?;
        rustix::process::getpriority_process(Some(pid))
            .map_err(|_| Error::NoSuchProcess { pid: self.pid })
    }

    /// Sets the nice value of every thread of the process (clamped to
    /// -20..=19; raising priority needs `CAP_SYS_NICE` or `RLIMIT_NICE`).
    pub fn set_nice(&self, nice: i32) -> Result<()> {
        self.require(ProcessAccess::SET_INFORMATION, "set the priority of")?;
        let nice = nice.clamp(-20, 19);
        self.each_thread("set the priority", |tid| {
            rustix::process::setpriority_process(Some(tid), nice)
        })
    }

    /// `SetPriorityClass` for the classes that are nice values (every one
    /// but `Realtime`, which takes a real-time policy: start the process
    /// with it, [`super::ProcessBuilder::priority`]).
    pub fn set_priority_class(&self, class: PriorityClass) -> Result<()> {
        if class.is_realtime() {
            return Err(Error::InvalidInput {
                what: "priority class",
                reason: "realtime is a scheduling policy set when the process starts (ProcessBuilder::priority), not afterwards".into(),
            });
        }
        self.set_nice(class.nice())
    }

    /// Sends any signal through the pidfd. Signal 0 (is it alive?) needs no
    /// right; SIGSTOP and SIGCONT need `SUSPEND_RESUME`, every other
    /// signal `TERMINATE`.
    pub fn signal(&self, signal: i32) -> Result<()> {
        match signal {
            0 => {}
            libc::SIGSTOP | libc::SIGCONT => {
                self.require(ProcessAccess::SUSPEND_RESUME, "signal")?
            }
            _ => self.require(ProcessAccess::TERMINATE, "signal")?,
        }
        if self.ended.is_some() {
            return Err(Error::NoSuchProcess { pid: self.pid });
        }
        send_signal(self.pidfd.as_fd(), signal).map_err(|e| match e {
            Error::Os { source, .. } if source.raw_os_error() == Some(libc::ESRCH) => {
                Error::NoSuchProcess { pid: self.pid }
            }
            Error::Os { source, .. } => Error::Os {
                op: format!("send signal {signal} to process {}", self.pid),
                source,
            },
            Error::PermissionDenied { source, .. } => Error::PermissionDenied {
                what: format!("send signal {signal} to process {}", self.pid),
                source,
            },
            e => e,
        })
    }

    /// Whether it has ended (readable pidfd), without reaping.
    fn has_ended(&self, timeout: Option<Duration>) -> Result<bool> {
        if self.ended.is_some() {
            return Ok(true);
        }
        poll_readable(&[self.pidfd.as_fd()], timeout)
            .map(|ready| ready.first().copied().unwrap_or(false))
    }

    /// `GetExitCodeProcess`: `None` while it runs (`STILL_ACTIVE`).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.has_ended(Some(Duration::ZERO))? {
            return self.collect().map(Some);
        }
        Ok(None)
    }

    /// Waits until it ends.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        // A child is reaped by a blocking wait4 straight away (one sleep, not poll + wait4).
        if !self.is_child {
            self.has_ended(None)?;
        }
        self.collect()
    }

    /// Waits at most `timeout`; `None` if it still runs.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        if self.has_ended(Some(timeout))? {
            return self.collect().map(Some);
        }
        Ok(None)
    }

    /// The exit status, once known.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.ended.map(|(s, _, _)| s)
    }

    /// Records how the process ended, when something else reaped it for this
    /// handle (the debugger's wait loop).
    pub(crate) fn record_exit(&mut self, status: ExitStatus) {
        if self.ended.is_none() {
            self.ended = Some((status, ResourceUsage::default(), SystemTime::now()));
        }
    }

    /// What it used (only for a child, once it has been waited for).
    pub fn resource_usage(&self) -> Option<ResourceUsage> {
        self.ended.filter(|_| self.is_child).map(|(_, u, _)| u)
    }

    /// `GetProcessTimes`: from `wait4` once it ended, from `/proc/<pid>/stat` while it runs.
    pub fn times(&self) -> Result<ProcessTimes> {
        self.require(ProcessAccess::QUERY_INFORMATION, "query the times of")?;
        if let Some((_, usage, exit)) = self.ended {
            return Ok(ProcessTimes {
                creation: self.created,
                exit: Some(exit),
                user: usage.user,
                kernel: usage.kernel,
            });
        }
        let stat = std::fs::read(format!("/proc/{}/stat", self.pid))
            .map_err(|e| Error::os(format!("read /proc/{}/stat", self.pid), e))?;
        // The pid may have been recycled between our last look and the read:
        // the pidfd still polls unreadable only while our process lives.
        if self.has_ended(Some(Duration::ZERO))? && !self.is_child {
            return Err(Error::NoSuchProcess { pid: self.pid });
        }
        let s = parse_stat(&stat).map_err(|e| Error::InvalidInput {
            what: "/proc/<pid>/stat",
            reason: e.to_string(),
        })?;
        Ok(ProcessTimes {
            creation: self.created,
            exit: None,
            user: inspect::ticks(s.utime),
            kernel: inspect::ticks(s.stime),
        })
    }

    /// Reaps an ended process (child: `wait4` for status and rusage).
    fn collect(&mut self) -> Result<ExitStatus> {
        if let Some((status, _, _)) = self.ended {
            return Ok(status);
        }
        if !self.is_child {
            let status = ExitStatus::Unknown;
            self.ended = Some((status, ResourceUsage::default(), SystemTime::now()));
            return Ok(status);
        }
        // Waited for through the pidfd (`waitid(P_PIDFD)`), never by pid: if
        // another handle to the same child reaped it first, its pid may be a
        // new child's now, and waiting by number would reap that stranger.
        // The raw syscall also returns the child's rusage.
        const P_PIDFD: libc::idtype_t = 3;
        let mut usage = MaybeUninit::<libc::rusage>::zeroed();
        let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
        loop {
            // SAFETY: valid out-pointers for the siginfo and the rusage; the
            // pidfd is ours for the life of `self`.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_waitid,
                    P_PIDFD,
                    self.pidfd.as_raw_fd(),
                    info.as_mut_ptr(),
                    libc::WEXITED | libc::__WALL,
                    usage.as_mut_ptr(),
                )
            };
            if r == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            if err.raw_os_error() == Some(libc::ECHILD) {
                // Someone else reaped it (another handle, or SIGCHLD is ignored):
                // report what we can.
                self.ended = Some((
                    ExitStatus::Unknown,
                    ResourceUsage::default(),
                    SystemTime::now(),
                ));
                return Ok(ExitStatus::Unknown);
            }
            return Err(Error::os(format!("wait for process {}", self.pid), err));
        }
        // SAFETY: waitid succeeded and filled `usage` and `info`.
        let (ru, info) = unsafe { (usage.assume_init(), info.assume_init()) };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        let usage = ResourceUsage {
            user: tv(ru.ru_utime),
            kernel: tv(ru.ru_stime),
            peak_rss: ru.ru_maxrss as u64 * 1024,
            major_faults: ru.ru_majflt as u64,
            minor_faults: ru.ru_minflt as u64,
            voluntary_switches: ru.ru_nvcsw as u64,
            involuntary_switches: ru.ru_nivcsw as u64,
        };
        // SAFETY: for a CLD_* siginfo from waitid, si_status is the field filled.
        let mut status = status_from_siginfo(info.si_code, unsafe { info.si_status() });
        if status.signal() == Some(libc::SIGKILL)
            && let Some(code) = self.kill_code.as_ref().and_then(|k| (k.0)())
        {
            status = status_from_siginfo(libc::CLD_EXITED, code);
        }
        self.ended = Some((status, usage, SystemTime::now()));
        Ok(status)
    }
}

impl AsFd for Process {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }
}

/// `WaitForMultipleObjects(bWaitAll = FALSE)`: waits until one of `procs`
/// ends and returns its index, or `None` on timeout. The one that ended is
/// reaped; the others are untouched.
pub fn wait_any(procs: &mut [&mut Process], timeout: Option<Duration>) -> Result<Option<usize>> {
    if let Some(i) = procs.iter().position(|p| p.ended.is_some()) {
        return Ok(Some(i));
    }
    let fds: Vec<BorrowedFd<'_>> = procs.iter().map(|p| p.pidfd.as_fd()).collect();
    let ready = poll_readable(&fds, timeout)?;
    drop(fds);
    match ready.iter().position(|&r| r) {
        Some(i) => {
            procs[i].collect()?;
            Ok(Some(i))
        }
        None => Ok(None),
    }
}

/// `WaitForMultipleObjects(bWaitAll = TRUE)`: waits until every process has
/// ended (reaping each); `false` on timeout.
pub fn wait_all(procs: &mut [&mut Process], timeout: Option<Duration>) -> Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let mut pending: Vec<usize> = Vec::new();
        for (i, p) in procs.iter_mut().enumerate() {
            if p.ended.is_none() {
                if p.has_ended(Some(Duration::ZERO))? {
                    p.collect()?;
                } else {
                    pending.push(i);
                }
            }
        }
        if pending.is_empty() {
            return Ok(true);
        }
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Ok(false),
            },
            None => None,
        };
        let fds: Vec<BorrowedFd<'_>> = pending.iter().map(|&i| procs[i].pidfd.as_fd()).collect();
        poll_readable(&fds, left)?;
    }
}

fn send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> Result<()> {
    // SAFETY: raw syscall with a valid descriptor and no info pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if r != 0 {
        return Err(Error::last_os("pidfd_send_signal"));
    }
    Ok(())
}

/// Polls descriptors for readability; returns which are ready (all false on timeout).
pub(crate) fn poll_readable(
    fds: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> Result<Vec<bool>> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let mut pfds: Vec<PollFd<'_>> = fds
            .iter()
            .map(|fd| PollFd::new(fd, PollFlags::IN))
            .collect();
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let ts = left.map(|l| Timespec {
            tv_sec: l.as_secs() as i64,
            tv_nsec: l.subsec_nanos() as i64,
        });
        match poll(&mut pfds, ts.as_ref()) {
            Ok(_) => return Ok(pfds.iter().map(|p| !p.revents().is_empty()).collect()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::os("poll", e.into())),
        }
    }
}
