//! Processes: the `CreateProcess` family and the process handle.
//!
//! [`ProcessBuilder`] offers every `CreateProcess` choice that has a Linux
//! meaning; [`ProcessBuilder::spawn`] starts the process with a vfork-style
//! `clone3(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)`, so the cost of a spawn does
//! not grow with the size of the parent, and every setting is applied in the
//! child before `execve`, that is before the program's first instruction.
//! A failure in the child (bad directory, exec error, refused user switch)
//! comes back as a typed [`Error`], never as exit code 127.
//!
//! ```no_run
//! use taskloom::process::{ProcessBuilder, Stdio};
//! let mut child = ProcessBuilder::new("echo")
//!     .arg("hello")
//!     .stdout(Stdio::Piped)
//!     .spawn()?;
//! let status = child.wait()?;
//! assert!(status.success());
//! # Ok::<(), taskloom::Error>(())
//! ```
//!
//! # Program search
//! A program name that holds a `/` is used as a path; a relative path is taken
//! relative to the *parent's* current directory (as Windows does), not the
//! child's. A name without `/` is searched in the `PATH` the child will get
//! (the parent's when the builder leaves `PATH` alone; `/usr/local/bin:/usr/bin:/bin`
//! when the child has none); the first regular file that the caller may
//! execute wins, an empty entry means the current directory.

#[cfg(all(target_os = "linux", feature = "tokio"))]
mod aio;
#[cfg(target_os = "linux")]
mod cmdline;
#[cfg(target_os = "linux")]
mod control;
#[cfg(target_os = "linux")]
mod handle;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(all(target_os = "linux", feature = "logon"))]
pub mod logon;
#[cfg(target_os = "linux")]
pub mod pico;
#[cfg(target_os = "linux")]
mod spawn;
mod status;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(windows)]
mod windows;

#[cfg(target_os = "linux")]
pub use linux::{CgroupPlacement, Credentials, Namespaces, ResourceLimit};
#[cfg(target_os = "linux")]
pub(crate) use linux::{Placement, Placer};
#[cfg(target_os = "linux")]
pub(crate) use spawn::find_executable;
#[cfg(target_os = "linux")]
pub(crate) use sys::Isolation;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
#[cfg(target_os = "linux")]
use std::os::fd::OwnedFd;
#[cfg(windows)]
use std::os::windows::io::OwnedHandle;
use std::path::{Path, PathBuf};

#[cfg(all(target_os = "linux", feature = "tokio"))]
pub use aio::AsyncProcess;
#[cfg(target_os = "linux")]
pub use cmdline::split as split_command_line;
#[cfg(target_os = "linux")]
pub use control::{ControlEvent, ControlEvents, signals};
#[cfg(target_os = "linux")]
pub use handle::{Process, ResourceUsage, signal_name, signal_number, wait_all, wait_any};
pub use status::{ExitStatus, ProcessAccess, ProcessTimes};
#[cfg(windows)]
pub use windows::split as split_command_line;
#[cfg(windows)]
pub use windows::{ControlEvent, ControlEvents, Process, signals, wait_all, wait_any};
#[cfg(windows)]
pub(crate) use windows::{priority_flag, spawn_then};

#[cfg(target_os = "linux")]
pub use crate::linux::clock_ticks_per_second;

use crate::cpuset::CpuSet;
use crate::error::{Error, Result};
use crate::priority::PriorityClass;

/// Where one of the child's standard streams comes from.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The parent's own stream (the default).
    #[default]
    Inherit,
    /// `/dev/null` (`NUL` on Windows).
    Null,
    /// A new pipe; the parent's end is on the [`Process`] handle.
    Piped,
    /// Any open descriptor (a file, a socket, one end of a pipe, ...).
    #[cfg(target_os = "linux")]
    Fd(OwnedFd),
    /// Any open handle (a file, a pipe, a console, ...), made inheritable
    /// for the child only.
    #[cfg(windows)]
    Handle(OwnedHandle),
}

#[cfg(target_os = "linux")]
impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Self {
        Stdio::Fd(fd)
    }
}

#[cfg(windows)]
impl From<OwnedHandle> for Stdio {
    fn from(handle: OwnedHandle) -> Self {
        Stdio::Handle(handle)
    }
}

impl From<std::fs::File> for Stdio {
    fn from(file: std::fs::File) -> Self {
        #[cfg(target_os = "linux")]
        return Stdio::Fd(file.into());
        #[cfg(windows)]
        return Stdio::Handle(file.into());
    }
}

/// Process group and session placement (`CREATE_NEW_PROCESS_GROUP`, `DETACHED_PROCESS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessGroup {
    /// Stay in the parent's process group.
    #[default]
    Inherit,
    /// Lead a new process group (`setpgid(0, 0)`): Ctrl-C at the terminal no longer reaches it.
    NewGroup,
    /// Lead a new session with no controlling terminal (`setsid`): detached.
    NewSession,
    /// Join the existing process group with this id (same session only;
    /// Linux only, Windows has no such choice).
    Join(i32),
}

/// Builds and starts a process: the options of `CreateProcess` that have a Linux meaning.
#[derive(Debug)]
pub struct ProcessBuilder {
    program: OsString,
    arg0: Option<OsString>,
    args: Vec<OsString>,
    env_clear: bool,
    env: BTreeMap<OsString, Option<OsString>>,
    cwd: Option<PathBuf>,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    suspended: bool,
    #[cfg(target_os = "linux")]
    protected: bool,
    group: ProcessGroup,
    priority: Option<PriorityClass>,
    affinity: Option<CpuSet>,
    #[cfg(target_os = "linux")]
    inherit: Vec<(OwnedFd, i32)>,
    /// Started under the calling thread's ptrace (the debug module): left
    /// in its exec stop, traced, for the debugger to take over.
    #[cfg(target_os = "linux")]
    pub(crate) debugged: bool,
    #[cfg(target_os = "linux")]
    credentials: Option<Credentials>,
    #[cfg(target_os = "linux")]
    placement: Option<CgroupPlacement>,
    #[cfg(target_os = "linux")]
    rlimits: Vec<(ResourceLimit, u64, u64)>,
    #[cfg(target_os = "linux")]
    pico: Option<pico::PicoSpec>,
    #[cfg(target_os = "linux")]
    placer: Option<Placer>,
    /// `CREATE_BREAKAWAY_FROM_JOB`, set by the job layer.
    #[cfg(windows)]
    pub(crate) breakaway: bool,
}

/// What a `std::process::Command` says of itself: its program, arguments,
/// environment changes (removals included) and directory. Standard
/// streams and `env_clear` cannot be read back from a `Command`, so they
/// start as the builder's defaults (inherited); set them on the builder.
impl From<&std::process::Command> for ProcessBuilder {
    fn from(c: &std::process::Command) -> Self {
        let mut b = ProcessBuilder::new(c.get_program()).args(c.get_args());
        for (k, v) in c.get_envs() {
            b = match v {
                Some(v) => b.env(k, v),
                None => b.env_remove(k),
            };
        }
        if let Some(dir) = c.get_current_dir() {
            b = b.current_dir(dir);
        }
        b
    }
}

impl From<std::process::Command> for ProcessBuilder {
    fn from(c: std::process::Command) -> Self {
        ProcessBuilder::from(&c)
    }
}

impl ProcessBuilder {
    /// A builder for `program` with no arguments; `argv[0]` is `program`.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        ProcessBuilder {
            program: program.as_ref().to_owned(),
            arg0: None,
            args: Vec::new(),
            env_clear: false,
            env: BTreeMap::new(),
            cwd: None,
            stdin: Stdio::Inherit,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
            suspended: false,
            #[cfg(target_os = "linux")]
            protected: false,
            group: ProcessGroup::Inherit,
            priority: None,
            affinity: None,
            #[cfg(target_os = "linux")]
            inherit: Vec::new(),
            #[cfg(target_os = "linux")]
            debugged: false,
            #[cfg(target_os = "linux")]
            credentials: None,
            #[cfg(target_os = "linux")]
            placement: None,
            #[cfg(target_os = "linux")]
            rlimits: Vec::new(),
            #[cfg(target_os = "linux")]
            pico: None,
            #[cfg(target_os = "linux")]
            placer: None,
            #[cfg(windows)]
            breakaway: false,
        }
    }

    /// A builder from one command line string, split by the system's
    /// rules with no expansion (see [`split_command_line`]): POSIX shell
    /// quoting on Linux, the C runtime's on Windows.
    pub fn from_command_line(line: &str) -> Result<Self> {
        let mut words = split_command_line(line)?.into_iter();
        let program = words
            .next()
            .ok_or_else(|| Error::CommandLine("empty command line".into()))?;
        Ok(ProcessBuilder::new(program).args(words))
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets `argv[0]` to something other than the program name.
    pub fn arg0(mut self, arg0: impl AsRef<OsStr>) -> Self {
        self.arg0 = Some(arg0.as_ref().to_owned());
        self
    }

    /// Starts the child with an empty environment (then add to it with [`env`](Self::env)).
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// Sets one environment variable in the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .insert(key.as_ref().to_owned(), Some(value.as_ref().to_owned()));
        self
    }

    /// Removes one environment variable from the child's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.insert(key.as_ref().to_owned(), None);
        self
    }

    /// The child's current directory.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// The child's standard input.
    pub fn stdin(mut self, stdio: impl Into<Stdio>) -> Self {
        self.stdin = stdio.into();
        self
    }

    /// The child's standard output.
    pub fn stdout(mut self, stdio: impl Into<Stdio>) -> Self {
        self.stdout = stdio.into();
        self
    }

    /// The child's standard error.
    pub fn stderr(mut self, stdio: impl Into<Stdio>) -> Self {
        self.stderr = stdio.into();
        self
    }

    #[cfg(target_os = "linux")]
    /// Passes `fd` to the child as descriptor number `target` (the explicit
    /// handle list of `PROC_THREAD_ATTRIBUTE_HANDLE_LIST`). Nothing but the
    /// three standard streams and the descriptors given here reaches the
    /// child, whatever their close-on-exec flags in the parent. Up to 61
    /// descriptors can be listed (64 with the standard streams); `target`
    /// must be below the child's `RLIMIT_NOFILE`.
    pub fn inherit_fd(mut self, fd: impl Into<OwnedFd>, target: i32) -> Self {
        self.inherit.push((fd.into(), target));
        self
    }

    /// `CREATE_SUSPENDED`: the program is loaded (its image mapped, `/proc`
    /// shows it) but stopped before its first instruction until
    /// [`Process::resume`]. Implemented with a ptrace exec-stop handed over to
    /// a group-stop, so a set-user-ID program runs without its privileges.
    pub fn suspended(mut self, yes: bool) -> Self {
        self.suspended = yes;
        self
    }

    #[cfg(target_os = "linux")]
    /// A protected process (`CREATE_PROTECTED_PROCESS`): from its first
    /// instruction to its end, no other process of the same user may read
    /// or write its memory, read its environment or descriptors, or trace it
    /// (`/proc/<pid>/mem`, `environ`, `maps`, `ptrace`, `process_vm_readv`
    /// are refused), and it writes no core. Root still can: Linux has no
    /// protection from root short of a security module. Windows' signer
    /// levels (PPL) have no Linux meaning: every protected process is
    /// protected alike.
    ///
    /// How: the kernel makes a process non-dumpable when it executes a file
    /// it may not read, so the program is executed from a private
    /// execute-only copy (removed once it runs), and the child is traced by
    /// this process until its `execve` completes, so no one else can attach
    /// before it is protected. The program must be an ELF executable (a
    /// script's interpreter would have to read it), and the machine must not
    /// make such processes dumpable (`fs.suid_dumpable` = 1): both are typed
    /// errors.
    pub fn protected(mut self, yes: bool) -> Self {
        self.protected = yes;
        self
    }

    /// Process group or session placement.
    pub fn process_group(mut self, group: ProcessGroup) -> Self {
        self.group = group;
        self
    }

    /// Priority class, applied before the first instruction.
    pub fn priority(mut self, class: PriorityClass) -> Self {
        self.priority = Some(class);
        self
    }

    /// CPU affinity, applied before the first instruction.
    pub fn affinity(mut self, cpus: CpuSet) -> Self {
        self.affinity = Some(cpus);
        self
    }

    #[cfg(target_os = "linux")]
    /// Runs the child as another user (`CreateProcessAsUser`); needs `CAP_SETUID`/`CAP_SETGID`.
    pub fn credentials(mut self, creds: Credentials) -> Self {
        self.credentials = Some(creds);
        self
    }

    #[cfg(target_os = "linux")]
    /// Sets a resource limit (soft, hard) before the first instruction. Lowering
    /// is always allowed; raising a hard limit needs `CAP_SYS_RESOURCE`.
    pub fn rlimit(mut self, resource: ResourceLimit, soft: u64, hard: u64) -> Self {
        self.rlimits.retain(|(r, _, _)| *r != resource);
        self.rlimits.push((resource, soft, hard));
        self
    }

    #[cfg(target_os = "linux")]
    /// Makes the process a pico process: the calls in `syscalls` go to
    /// `provider` instead of straight to the kernel, in it and every process
    /// it starts (see [`pico`]). The spawned [`Process`] reports what the
    /// provider did ([`Process::pico_stats`]).
    pub fn pico(mut self, provider: impl pico::Provider, syscalls: pico::SyscallSet) -> Self {
        self.pico = Some(pico::PicoSpec {
            provider: Box::new(provider),
            set: syscalls,
        });
        self
    }

    #[cfg(target_os = "linux")]
    /// Sets (or with `None` clears) the placement hook, which decides
    /// where the child starts when it is spawned (see [`Placer`]).
    pub(crate) fn place_with(mut self, placer: Option<Placer>) -> Self {
        self.placer = placer;
        self
    }

    #[cfg(target_os = "linux")]
    /// Places the child in cgroups before its first instruction (the job hook).
    pub fn cgroup_placement(mut self, placement: CgroupPlacement) -> Self {
        self.placement = Some(placement);
        self
    }

    /// Whether the builder starts the process suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspended
    }

    /// Starts the process.
    pub fn spawn(self) -> Result<Process> {
        #[cfg(target_os = "linux")]
        return spawn::spawn(self);
        #[cfg(windows)]
        return windows::spawn(self);
    }
}
