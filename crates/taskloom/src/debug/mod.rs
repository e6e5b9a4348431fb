//! Debugging a process: `DEBUG_PROCESS`, `DEBUG_ONLY_THIS_PROCESS`,
//! `WaitForDebugEvent`, `ContinueDebugEvent`, `DebugActiveProcess` and
//! `DebugActiveProcessStop`, on ptrace (through nix's `ptrace` module).
//!
//! | Windows                                 | taskloom                              |
//! |-----------------------------------------|---------------------------------------|
//! | `CreateProcess(DEBUG_PROCESS)`          | [`Debugger::spawn`] with [`DebugMode::Process`] |
//! | `CreateProcess(DEBUG_ONLY_THIS_PROCESS)`| [`Debugger::spawn`] with [`DebugMode::OnlyThisProcess`] |
//! | `DebugActiveProcess`                    | [`Debugger::attach`]                  |
//! | `WaitForDebugEvent`                     | [`Debugger::wait_event`]              |
//! | `ContinueDebugEvent(DBG_CONTINUE)`      | [`Debugger::continue_event`]`(`[`Continue::Handled`]`)` |
//! | `ContinueDebugEvent(DBG_EXCEPTION_NOT_HANDLED)` | [`Continue::NotHandled`]      |
//! | `DebugActiveProcessStop`                | [`Debugger::detach`]                  |
//!
//! Events come one at a time, in order, and the process that caused one
//! stays stopped until it is continued. Each process starts with
//! [`DebugEvent::CreateProcess`] (its first thread) and ends with
//! [`DebugEvent::ExitProcess`]; threads are reported created and exited;
//! images are reported loaded and unloaded from the dynamic loader's own
//! list (`r_debug`/`link_map`, found through the auxiliary vector and
//! `DT_DEBUG`), with a breakpoint on the loader's `r_brk` hook so that each
//! `dlopen` and `dlclose` is reported when it happens; a signal is an
//! [`DebugEvent::Exception`] (number, code, faulting address, thread) that
//! the debugger passes on or swallows.
//!
//! Linux differences, as they are: there is no second-chance exception
//! (a signal the program does not handle ends it, and the
//! [`DebugEvent::ExitProcess`] says by which signal); `execve` is its own
//! event ([`DebugEvent::Exec`], followed by the new image's loads); ptrace
//! belongs to a thread, so a [`Debugger`] stays on the thread that made it
//! (it is not `Send`), and its waits take any child of that thread: do not
//! wait for other children from the debugger's thread meanwhile.
#![allow(unsafe_code)] // two blocks: a siginfo's fault address, and tgkill (see below)

mod loader;

use std::collections::{HashMap, HashSet, VecDeque};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::ptrace::{self, Event, Options};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::{Error, OrLog, Result};
use crate::process::{ExitStatus, Process, ProcessAccess, ProcessBuilder};

/// Which processes a debugger follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugMode {
    /// `DEBUG_PROCESS`: the process and every process it starts (fork,
    /// vfork, clone), with their threads.
    Process,
    /// `DEBUG_ONLY_THIS_PROCESS`: the process only; its children run untraced.
    OnlyThisProcess,
}

/// One debug event (`DEBUG_EVENT`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DebugEvent {
    /// `CREATE_PROCESS_DEBUG_EVENT`: a process and its first thread.
    CreateProcess {
        /// Its pid (and its first thread's id).
        pid: i32,
        /// The process that started it, when it was started by a traced one.
        parent: Option<i32>,
        /// How: `spawn`, `attach`, `fork`, `vfork` or `clone`.
        how: &'static str,
    },
    /// `CREATE_THREAD_DEBUG_EVENT`.
    CreateThread {
        /// The process.
        pid: i32,
        /// The new thread.
        tid: i32,
    },
    /// `EXIT_THREAD_DEBUG_EVENT`, with the thread's exit status.
    ExitThread {
        /// The process.
        pid: i32,
        /// The thread.
        tid: i32,
        /// The exit code, when it exited.
        code: Option<i32>,
        /// The signal, when one ended it.
        signal: Option<i32>,
    },
    /// `EXIT_PROCESS_DEBUG_EVENT`: the last event of a process.
    ExitProcess {
        /// The process.
        pid: i32,
        /// The exit code, when it exited.
        code: Option<i32>,
        /// The signal, when one ended it.
        signal: Option<i32>,
    },
    /// `LOAD_DLL_DEBUG_EVENT`: an image mapped (the main image, the dynamic
    /// loader, each shared library).
    LoadDll {
        /// The process.
        pid: i32,
        /// Where it is loaded (its load bias, as `link_map.l_addr`).
        base: u64,
        /// Its path, as the loader has it (bytes).
        #[serde(serialize_with = "crate::inspect::bytes::serialize")]
        path: Vec<u8>,
    },
    /// `UNLOAD_DLL_DEBUG_EVENT`: a library unmapped by `dlclose`.
    UnloadDll {
        /// The process.
        pid: i32,
        /// Where it was loaded.
        base: u64,
        /// Its path.
        #[serde(serialize_with = "crate::inspect::bytes::serialize")]
        path: Vec<u8>,
    },
    /// The process replaced its image (`execve`); loads of the new one follow.
    Exec {
        /// The process.
        pid: i32,
        /// The new image.
        #[serde(serialize_with = "crate::inspect::bytes::serialize")]
        image: Vec<u8>,
    },
    /// `EXCEPTION_DEBUG_EVENT`: a signal about to be delivered to a thread
    /// (first chance: Linux has no second).
    Exception {
        /// The process.
        pid: i32,
        /// The thread.
        tid: i32,
        /// The signal number.
        signal: i32,
        /// Its `si_code` (e.g. `SEGV_MAPERR` 1, `SI_USER` 0).
        code: i32,
        /// The faulting address, for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP.
        address: Option<u64>,
        /// Always true: the program's handler (if any) has not run yet.
        first_chance: bool,
    },
}

/// How [`Debugger::continue_event`] resumes the stopped thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continue {
    /// `DBG_CONTINUE`: an exception is handled by the debugger; the signal
    /// is swallowed and the program never sees it.
    Handled,
    /// `DBG_EXCEPTION_NOT_HANDLED`: the signal is delivered (the program's
    /// handler runs, or its default action).
    NotHandled,
}

/// What resumes the stop an event came from.
#[derive(Debug, Clone)]
enum Resume {
    /// One thread; `signal` is delivered with [`Continue::NotHandled`].
    Thread { tid: i32, signal: Option<Signal> },
    /// Every thread of an attach.
    Threads(Vec<i32>),
}

/// A debugging session (the debugger side of `DEBUG_PROCESS`).
#[derive(Debug)]
pub struct Debugger {
    /// The debuggee's handle (taken by `detach`).
    main: Option<Process>,
    mode: DebugMode,
    /// Every traced thread, by thread id: its process id.
    threads: HashMap<i32, i32>,
    /// Threads and processes announced by their creator whose first stop
    /// (the attach SIGSTOP) has not been seen yet.
    expected: HashSet<i32>,
    /// First stops seen before their creator's announcement.
    early: HashSet<i32>,
    /// The dynamic loader's state, per process.
    images: HashMap<i32, loader::Images>,
    queue: VecDeque<(DebugEvent, Option<Resume>)>,
    /// The stop the last returned event left, until it is continued.
    current: Option<Option<Resume>>,
    /// Threads in a ptrace stop that a queued or current event will resume.
    held: HashSet<i32>,
    /// Pinned to the thread that traces (ptrace is per thread).
    _thread: PhantomData<*const ()>,
}

fn pid(p: i32) -> Pid {
    Pid::from_raw(p)
}

fn ptrace_err(op: &'static str, e: Errno) -> Error {
    Error::os(op, std::io::Error::from_raw_os_error(e as i32))
}

/// The ptrace options of every tracee. Forks are traced in both modes: in
/// `OnlyThisProcess` the child is detached at once, after the loader's
/// breakpoints are taken out of its copy of the memory (else its first
/// dlopen would die on them).
fn options() -> Options {
    Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_TRACEEXIT
        | Options::PTRACE_O_EXITKILL
}

/// The exit code or the signal in a wait status word.
fn decode_status(status: i32) -> (Option<i32>, Option<i32>) {
    if status & 0x7f == 0 {
        (Some((status >> 8) & 0xff), None)
    } else {
        (None, Some(status & 0x7f))
    }
}

/// Whether task `tid` is a thread of process `tgid` (one `stat` of
/// `/proc/<tgid>/task/<tid>`), not a process of its own.
fn is_thread_of(tid: i32, tgid: i32) -> bool {
    tid != tgid && std::fs::symlink_metadata(format!("/proc/{tgid}/task/{tid}")).is_ok()
}

impl Debugger {
    /// `CreateProcess` with `DEBUG_PROCESS` or `DEBUG_ONLY_THIS_PROCESS`:
    /// starts `builder`'s program stopped at its first event
    /// ([`DebugEvent::CreateProcess`], before its first instruction). As on
    /// Windows, the debuggee is killed when the debugger goes away without
    /// detaching (`DebugSetProcessKillOnExit`'s default).
    pub fn spawn(mut builder: ProcessBuilder, mode: DebugMode) -> Result<Debugger> {
        builder.debugged = true;
        let main = builder.spawn()?;
        Debugger::take_over(main, mode)
    }

    /// As [`Debugger::spawn`], straight into `job` (a member before its
    /// first instruction, with the job's per-process limits).
    pub fn spawn_in(
        job: &crate::job::Job,
        mut builder: ProcessBuilder,
        mode: DebugMode,
    ) -> Result<Debugger> {
        builder.debugged = true;
        let main = job.spawn(builder)?;
        Debugger::take_over(main, mode)
    }

    /// Takes over a child started under this thread's ptrace (its exec stop
    /// not yet waited for): spawn, and a job's spawn.
    pub(crate) fn take_over(mut main: Process, mode: DebugMode) -> Result<Debugger> {
        let p = main.pid();
        let ready = (|| -> Result<()> {
            match waitpid(pid(p), Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => {}
                Ok(other) => {
                    return Err(Error::ChildSetup {
                        what: "stop at its exec for the debugger",
                        source: std::io::Error::other(format!("{other:?}")),
                    });
                }
                Err(e) => return Err(ptrace_err("waitpid", e)),
            }
            ptrace::setoptions(pid(p), options()).map_err(|e| ptrace_err("ptrace(SETOPTIONS)", e))
        })();
        if let Err(e) = ready {
            main.terminate()
                .or_log(|| format!("kill debuggee {}", main.pid()));
            main.wait()
                .or_log(|| format!("reap debuggee {}", main.pid()));
            return Err(e);
        }
        let mut d = Debugger::new(main, mode);
        d.threads.insert(p, p);
        let mut events = vec![DebugEvent::CreateProcess {
            pid: p,
            parent: None,
            how: "spawn",
        }];
        let mut images = loader::Images::default();
        events.extend(images.start(p, true));
        d.images.insert(p, images);
        d.push(
            events,
            Some(Resume::Thread {
                tid: p,
                signal: None,
            }),
        );
        Ok(d)
    }

    fn new(main: Process, mode: DebugMode) -> Debugger {
        Debugger {
            main: Some(main),
            mode,
            threads: HashMap::new(),
            expected: HashSet::new(),
            early: HashSet::new(),
            images: HashMap::new(),
            queue: VecDeque::new(),
            current: None,
            held: HashSet::new(),
            _thread: PhantomData,
        }
    }

    /// `DebugActiveProcess`: attaches to a running process (every thread),
    /// where ptrace permits (`ptrace_scope`, same user or CAP_SYS_PTRACE);
    /// the kernel's refusal is a typed error and nothing is left attached.
    /// The first events are the process, its other threads and the images
    /// it has loaded.
    pub fn attach(target: i32, mode: DebugMode) -> Result<Debugger> {
        let main = Process::open_with_access(
            target,
            ProcessAccess::TERMINATE | ProcessAccess::SUSPEND_RESUME,
        )?;
        let mut d = Debugger::new(main, mode);
        let mut attached = Vec::new();
        let result = (|| -> Result<()> {
            // Threads may start while we attach: list until no new one shows.
            loop {
                let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{target}/task"))
                    .map_err(|_| Error::NoSuchProcess { pid: target })?
                    .flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse().ok())
                    .filter(|t| !attached.contains(t))
                    .collect();
                if tids.is_empty() {
                    return Ok(());
                }
                for t in tids {
                    match ptrace::seize(pid(t), options()) {
                        Ok(()) => attached.push(t),
                        Err(Errno::ESRCH) => continue,
                        Err(e) => {
                            return Err(Error::PermissionDenied {
                                what: format!("debug process {target} (ptrace attach)"),
                                source: std::io::Error::from_raw_os_error(e as i32),
                            });
                        }
                    }
                    ptrace::interrupt(pid(t)).or_log(|| format!("interrupt thread {t}"));
                    // The interrupt's stop.
                    waitpid(pid(t), Some(WaitPidFlag::__WALL))
                        .or_log(|| format!("wait for thread {t} to stop"));
                }
            }
        })();
        if let Err(e) = result {
            for t in attached {
                ptrace::detach(pid(t), None).or_log(|| format!("detach thread {t}"));
            }
            return Err(e);
        }
        let mut events = vec![DebugEvent::CreateProcess {
            pid: target,
            parent: None,
            how: "attach",
        }];
        for &t in &attached {
            d.threads.insert(t, target);
            if t != target {
                events.push(DebugEvent::CreateThread {
                    pid: target,
                    tid: t,
                });
            }
        }
        let mut images = loader::Images::default();
        events.extend(images.start(target, false));
        d.images.insert(target, images);
        // Every thread is stopped: the last event resumes them all.
        d.push(events, Some(Resume::Threads(attached)));
        Ok(d)
    }

    /// Queues the events of one stop; the last one carries its resume.
    fn push(&mut self, events: Vec<DebugEvent>, resume: Option<Resume>) {
        let n = events.len();
        if n == 0 {
            // Nothing to report: go on at once.
            if let Some(r) = resume {
                self.resume(r, Continue::Handled);
            }
            return;
        }
        match &resume {
            Some(Resume::Thread { tid, .. }) => {
                self.held.insert(*tid);
            }
            Some(Resume::Threads(tids)) => self.held.extend(tids.iter().copied()),
            None => {}
        }
        for (i, e) in events.into_iter().enumerate() {
            let r = if i + 1 == n { resume.clone() } else { None };
            self.queue.push_back((e, r));
        }
    }

    /// The debuggee's pid (the process spawned or attached).
    pub fn pid(&self) -> i32 {
        self.process().pid()
    }

    /// The debuggee's handle: its exit status once its
    /// [`DebugEvent::ExitProcess`] was returned.
    pub fn process(&self) -> &Process {
        self.main
            .as_ref()
            .expect("the debuggee's handle until detach")
    }

    /// `WaitForDebugEvent`: the next event, `Ok(None)` when `timeout` passes
    /// first or when every traced process has ended. The thread it comes
    /// from stays stopped until [`Debugger::continue_event`], which must be
    /// called before the next wait.
    pub fn wait_event(&mut self, timeout: Option<Duration>) -> Result<Option<DebugEvent>> {
        if self.current.is_some() {
            return Err(Error::InvalidInput {
                what: "wait for a debug event",
                reason: "the last event was not continued (continue_event first)".into(),
            });
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        // With a time-out the wait polls: a few yields first (the next stop
        // is usually microseconds away), then sleeps growing to 1 ms.
        let mut idle = 0u32;
        loop {
            if let Some((event, resume)) = self.queue.pop_front() {
                self.current = Some(resume);
                return Ok(Some(event));
            }
            if self.threads.is_empty() {
                return Ok(None);
            }
            let flags = WaitPidFlag::__WALL
                | WaitPidFlag::__WNOTHREAD
                | if deadline.is_some() {
                    WaitPidFlag::WNOHANG
                } else {
                    WaitPidFlag::empty()
                };
            match waitpid(None, Some(flags)) {
                Ok(WaitStatus::StillAlive) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(None);
                    }
                    idle += 1;
                    if idle < 50 {
                        std::thread::yield_now();
                    } else {
                        let us = (10u64 << ((idle - 50) / 8).min(7)).min(1000);
                        std::thread::sleep(Duration::from_micros(us));
                    }
                }
                Ok(status) => {
                    idle = 0;
                    self.handle(status)
                }
                Err(Errno::EINTR) => {}
                Err(Errno::ECHILD) => {
                    self.threads.clear();
                }
                Err(e) => return Err(ptrace_err("waitpid", e)),
            }
        }
    }

    /// `ContinueDebugEvent`: resumes the thread the last event stopped.
    /// `how` matters for [`DebugEvent::Exception`]: [`Continue::Handled`]
    /// swallows the signal, [`Continue::NotHandled`] delivers it.
    pub fn continue_event(&mut self, how: Continue) -> Result<()> {
        let Some(resume) = self.current.take() else {
            return Err(Error::InvalidInput {
                what: "continue a debug event",
                reason: "no event is waiting to be continued".into(),
            });
        };
        if let Some(r) = resume {
            self.resume(r, how);
        }
        Ok(())
    }

    fn resume(&mut self, r: Resume, how: Continue) {
        match r {
            Resume::Thread { tid, signal } => {
                self.held.remove(&tid);
                let sig = if how == Continue::NotHandled {
                    signal
                } else {
                    None
                };
                // A thread killed meanwhile (SIGKILL) cannot be resumed: its
                // end is the next event.
                ptrace::cont(pid(tid), sig).or_log(|| format!("continue thread {tid}"));
            }
            Resume::Threads(tids) => {
                for t in tids {
                    self.held.remove(&t);
                    ptrace::cont(pid(t), None).or_log(|| format!("continue thread {t}"));
                }
            }
        }
    }

    /// Turns one wait status into events (or resumes at once what is no event).
    fn handle(&mut self, status: WaitStatus) {
        match status {
            WaitStatus::Exited(p, code) => self.ended(p.as_raw(), Some(code), None),
            WaitStatus::Signaled(p, sig, _) => self.ended(p.as_raw(), None, Some(sig as i32)),
            WaitStatus::PtraceEvent(p, _, ev) => self.event(p.as_raw(), ev),
            WaitStatus::Stopped(p, sig) => self.stopped(p.as_raw(), sig),
            WaitStatus::PtraceSyscall(p) => {
                ptrace::cont(p, None).or_log(|| format!("continue thread {p}"));
            }
            WaitStatus::Continued(_) | WaitStatus::StillAlive => {}
        }
    }

    fn ended(&mut self, tid: i32, code: Option<i32>, signal: Option<i32>) {
        let Some(tgid) = self.threads.remove(&tid) else {
            return;
        };
        if tid != tgid {
            // A thread's end was its ExitThread event (PTRACE_EVENT_EXIT).
            return;
        }
        self.threads.retain(|_, g| *g != tgid);
        self.images.remove(&tgid);
        if let Some(main) = self.main.as_mut().filter(|m| m.pid() == tgid) {
            let status = match (code, signal) {
                (Some(code), _) => ExitStatus::Exited { code },
                (None, Some(signal)) => ExitStatus::Signaled {
                    signal,
                    core_dumped: false,
                },
                (None, None) => ExitStatus::Unknown,
            };
            main.record_exit(status);
        }
        self.push(
            vec![DebugEvent::ExitProcess {
                pid: tgid,
                code,
                signal,
            }],
            None,
        );
    }

    fn event(&mut self, tid: i32, ev: i32) {
        let tgid = self.threads.get(&tid).copied().unwrap_or(tid);
        let msg = ptrace::getevent(pid(tid)).unwrap_or(0) as i32;
        let resume = Some(Resume::Thread { tid, signal: None });
        let mut events = Vec::new();
        if ev == Event::PTRACE_EVENT_CLONE as i32
            || ev == Event::PTRACE_EVENT_FORK as i32
            || ev == Event::PTRACE_EVENT_VFORK as i32
        {
            let new = msg;
            let is_thread = ev == Event::PTRACE_EVENT_CLONE as i32 && is_thread_of(new, tgid);
            if is_thread {
                self.threads.insert(new, tgid);
                events.push(DebugEvent::CreateThread {
                    pid: tgid,
                    tid: new,
                });
                self.expect_first_stop(new);
            } else if self.mode == DebugMode::OnlyThisProcess {
                self.let_go(new, tgid, ev == Event::PTRACE_EVENT_VFORK as i32);
            } else {
                self.threads.insert(new, new);
                // A fork copies the memory, breakpoints included.
                let images = self.images.get(&tgid).cloned().unwrap_or_default();
                self.images.insert(new, images);
                let how = match ev {
                    x if x == Event::PTRACE_EVENT_FORK as i32 => "fork",
                    x if x == Event::PTRACE_EVENT_VFORK as i32 => "vfork",
                    _ => "clone",
                };
                events.push(DebugEvent::CreateProcess {
                    pid: new,
                    parent: Some(tgid),
                    how,
                });
                self.expect_first_stop(new);
            }
        } else if ev == Event::PTRACE_EVENT_EXEC as i32 {
            // After execve the process's only thread has the process's id.
            let former = msg;
            if former != tid {
                self.threads.remove(&former);
            }
            self.threads.retain(|t, g| *g != tgid || *t == tid);
            self.threads.insert(tid, tid);
            let image = std::fs::read_link(format!("/proc/{tid}/exe"))
                .map(|p| p.into_os_string().into_encoded_bytes())
                .unwrap_or_default();
            events.push(DebugEvent::Exec { pid: tid, image });
            let mut images = loader::Images::default();
            events.extend(images.start(tid, true));
            self.images.insert(tid, images);
        } else if ev == Event::PTRACE_EVENT_EXIT as i32 {
            let (code, signal) = decode_status(msg);
            events.push(DebugEvent::ExitThread {
                pid: tgid,
                tid,
                code,
                signal,
            });
        }
        self.push(events, resume);
    }

    /// A new thread or process starts with a SIGSTOP stop; it may be seen
    /// before or after its creator's event.
    fn expect_first_stop(&mut self, new: i32) {
        if self.early.remove(&new) {
            ptrace::cont(pid(new), None).or_log(|| format!("continue new thread {new}"));
        } else {
            self.expected.insert(new);
        }
    }

    /// `DEBUG_ONLY_THIS_PROCESS`: a child is not followed. It is detached at
    /// its first stop, with the loader's breakpoints taken out of its copy
    /// of the memory (a vfork child shares its parent's, which keeps them).
    fn let_go(&mut self, child: i32, parent: i32, vfork: bool) {
        loop {
            match waitpid(pid(child), Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Stopped(_, _)) | Ok(WaitStatus::PtraceEvent(..)) => break,
                Err(Errno::EINTR) => continue,
                _ => return,
            }
        }
        if !vfork && let Some(images) = self.images.get(&parent) {
            images.remove_breakpoints(child);
        }
        ptrace::detach(pid(child), None).or_log(|| format!("let child {child} go"));
    }

    fn stopped(&mut self, tid: i32, sig: Signal) {
        if sig == Signal::SIGSTOP && self.expected.remove(&tid) {
            ptrace::cont(pid(tid), None).or_log(|| format!("continue thread {tid}"));
            return;
        }
        if sig == Signal::SIGSTOP && !self.threads.contains_key(&tid) {
            // A new task's first stop, before its creator's event.
            self.early.insert(tid);
            return;
        }
        let tgid = self.threads.get(&tid).copied().unwrap_or(tid);
        if sig == Signal::SIGTRAP
            && let Some(images) = self.images.get_mut(&tgid)
            && let Some(events) = images.on_trap(tgid, tid)
        {
            self.push(events, Some(Resume::Thread { tid, signal: None }));
            return;
        }
        let info = match ptrace::getsiginfo(pid(tid)) {
            Ok(info) => info,
            Err(_) => {
                // A group-stop (SIGSTOP and friends took effect): go on.
                ptrace::cont(pid(tid), None).or_log(|| format!("continue thread {tid}"));
                return;
            }
        };
        // Only a fault the kernel raised has an address (si_code > 0); a
        // signal sent by a process carries its sender there instead.
        let faults = info.si_code > 0
            && matches!(
                sig,
                Signal::SIGSEGV
                    | Signal::SIGBUS
                    | Signal::SIGILL
                    | Signal::SIGFPE
                    | Signal::SIGTRAP
            );
        // SAFETY: for these signals the kernel filled the fault fields of
        // the siginfo (`si_addr`); reading the union member is reading
        // plain bytes of a value we own.
        let address = faults.then(|| unsafe { info.si_addr() } as u64);
        self.push(
            vec![DebugEvent::Exception {
                pid: tgid,
                tid,
                signal: sig as i32,
                code: info.si_code,
                address,
                first_chance: true,
            }],
            Some(Resume::Thread {
                tid,
                signal: Some(sig),
            }),
        );
    }

    /// `DebugActiveProcessStop`: lets every traced process go on as if it
    /// had never been traced (breakpoints removed, no signal lost) and
    /// returns the debuggee's handle.
    pub fn detach(mut self) -> Result<Process> {
        // Every thread must be in a ptrace stop to be detached: those held
        // for an event are; the others are stopped here.
        let mut stopped: HashSet<i32> = self.held.clone();
        stopped.extend(self.early.iter().copied());
        // Exceptions reported (or queued) and not decided go to the program.
        let mut pending: HashMap<i32, Signal> = HashMap::new();
        let undecided = self
            .current
            .iter()
            .flatten()
            .chain(self.queue.iter().filter_map(|(_, r)| r.as_ref()));
        for r in undecided {
            if let Resume::Thread {
                tid,
                signal: Some(sig),
            } = r
            {
                pending.insert(*tid, *sig);
            }
        }
        let tids: Vec<(i32, i32)> = self.threads.iter().map(|(t, g)| (*t, *g)).collect();
        for &(tid, tgid) in &tids {
            if stopped.contains(&tid) {
                continue;
            }
            // SIGSTOP to this thread only, then its stop.
            // SAFETY: tgkill with plain integers; no memory is passed.
            let r = unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, libc::SIGSTOP) };
            if r != 0 {
                continue;
            }
            loop {
                match waitpid(pid(tid), Some(WaitPidFlag::__WALL)) {
                    Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => break,
                    Ok(WaitStatus::Stopped(_, other)) => {
                        pending.insert(tid, other);
                    }
                    Ok(WaitStatus::PtraceEvent(..)) => {
                        ptrace::cont(pid(tid), None).or_log(|| format!("continue thread {tid}"));
                    }
                    Err(Errno::EINTR) => {}
                    _ => break,
                }
            }
        }
        for (tgid, images) in &self.images {
            images.remove_breakpoints(*tgid);
        }
        for (tid, _) in tids {
            ptrace::detach(pid(tid), pending.get(&tid).copied())
                .or_log(|| format!("detach thread {tid}"));
        }
        self.threads.clear();
        self.current = None;
        Ok(self
            .main
            .take()
            .expect("the debuggee's handle until detach"))
    }
}

impl Drop for Debugger {
    /// A debugger that goes away without detaching takes its debuggees
    /// with it (`DebugSetProcessKillOnExit`'s default): every traced process
    /// is killed (by pid, safe while it is traced: no one else can reap it)
    /// and reaped.
    fn drop(&mut self) {
        let tgids: HashSet<i32> = self.threads.values().copied().collect();
        for &g in &tgids {
            nix::sys::signal::kill(pid(g), Signal::SIGKILL).or_log(|| format!("kill debuggee {g}"));
        }
        for tid in self.threads.keys().copied().collect::<Vec<_>>() {
            loop {
                match waitpid(pid(tid), Some(WaitPidFlag::__WALL)) {
                    Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => break,
                    Ok(_) => {
                        ptrace::cont(pid(tid), None).or_log(|| format!("continue thread {tid}"));
                    }
                    Err(Errno::EINTR) => {}
                    Err(_) => break,
                }
            }
        }
        if let Some(main) = &mut self.main {
            main.record_exit(ExitStatus::Signaled {
                signal: libc::SIGKILL,
                core_dumped: false,
            });
        }
    }
}
