//! Threads of other processes: `SuspendThread`, `ResumeThread`,
//! `GetThreadContext` and `SetThreadContext` through ptrace.
//!
//! ptrace binds a tracee to the *thread* that attached, while a Windows
//! handle may be used from any thread. So one taskloom thread, the tracer,
//! started on first use, makes every request; callers hand it their work
//! over a channel and wait for the answer. It keeps each held thread's
//! suspend count: the first suspension seizes and interrupts the thread
//! (it stops where it is, the rest of its process runs on), the last
//! resume detaches it. Between requests it reaps held threads that ended
//! (a traced thread's end waits for its tracer) and forgets them.
//!
//! Limits (Linux's): a thread is held only while this process lives (the
//! kernel detaches every tracee when its tracer exits, and the thread runs
//! on); a thread another debugger traces cannot be held; ptrace permission
//! is needed (same user and a permissive `kernel.yama.ptrace_scope`, or
//! `CAP_SYS_PTRACE`).

use std::collections::HashMap;
use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nix::sys::ptrace;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::ThreadContext;
use crate::error::{Error, OrLog, Result};

enum Request {
    Suspend,
    Resume,
    Context,
    SetContext(Box<ThreadContext>),
}

enum Reply {
    Count(u32),
    Context(Box<ThreadContext>),
    Done,
}

type Work = (i32, Request, mpsc::SyncSender<Result<Reply>>);

static TRACER: OnceLock<Mutex<Sender<Work>>> = OnceLock::new();

fn ask(tid: i32, request: Request) -> Result<Reply> {
    let sender = match TRACER.get() {
        Some(s) => s,
        None => {
            // Started once; a thread that cannot be made (EAGAIN at a process
            // limit) is an error for this call, and the next call tries again.
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("taskloom-tracer".into())
                .spawn(move || tracer(rx))
                .map_err(|e| Error::os("start the taskloom tracer thread", e))?;
            // Another thread may have started one meanwhile: its is kept, and
            // ours ends once its sender (dropped here) is gone.
            let _ = TRACER.set(Mutex::new(tx));
            TRACER.get().ok_or_else(tracer_gone)?
        }
    }
    .lock()
    .unwrap_or_else(|e| e.into_inner())
    .clone();
    let (reply, answer) = mpsc::sync_channel(1);
    sender
        .send((tid, request, reply))
        .map_err(|_| tracer_gone())?;
    answer.recv().map_err(|_| tracer_gone())?
}

fn tracer_gone() -> Error {
    Error::os(
        "reach the taskloom tracer thread",
        io::Error::from_raw_os_error(libc::EPIPE),
    )
}

/// `SuspendThread` on a thread of another process: its previous count.
pub(crate) fn suspend(tid: i32) -> Result<u32> {
    match ask(tid, Request::Suspend)? {
        Reply::Count(n) => Ok(n),
        _ => unreachable!("a suspend is answered with a count"),
    }
}

/// `ResumeThread` on a thread of another process: its previous count.
pub(crate) fn resume(tid: i32) -> Result<u32> {
    match ask(tid, Request::Resume)? {
        Reply::Count(n) => Ok(n),
        _ => unreachable!("a resume is answered with a count"),
    }
}

/// `GetThreadContext`: read while it is held, or with a brief stop.
pub(crate) fn context(tid: i32) -> Result<ThreadContext> {
    match ask(tid, Request::Context)? {
        Reply::Context(c) => Ok(*c),
        _ => unreachable!("a context request is answered with a context"),
    }
}

/// `SetThreadContext`: only while it is held (suspended through us).
pub(crate) fn set_context(tid: i32, context: &ThreadContext) -> Result<()> {
    ask(tid, Request::SetContext(Box::new(*context))).map(drop)
}

fn ptrace_error(tid: i32, what: &'static str, e: nix::Error) -> Error {
    match e {
        nix::Error::ESRCH => Error::NoSuchThread { tid },
        e => Error::os(format!("{what} on thread {tid}"), io::Error::from(e)),
    }
}

/// Seizes and interrupts `tid`, and waits until it has stopped.
fn hold(tid: i32) -> Result<()> {
    let pid = Pid::from_raw(tid);
    ptrace::seize(pid, ptrace::Options::empty())
        .map_err(|e| ptrace_error(tid, "ptrace(PTRACE_SEIZE)", e))?;
    if let Err(e) = ptrace::interrupt(pid) {
        ptrace::detach(pid, None).or_log(|| format!("detach thread {tid}"));
        return Err(ptrace_error(tid, "ptrace(PTRACE_INTERRUPT)", e));
    }
    loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::PtraceEvent(..)) | Ok(WaitStatus::Stopped(..)) => return Ok(()),
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => {
                return Err(Error::NoSuchThread { tid });
            }
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => {
                ptrace::detach(pid, None).or_log(|| format!("detach thread {tid}"));
                return Err(ptrace_error(tid, "waitpid", e));
            }
        }
    }
}

fn tracer(rx: Receiver<Work>) {
    let mut held: HashMap<i32, u32> = HashMap::new();
    loop {
        let (tid, request, reply) = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(work) => work,
            Err(RecvTimeoutError::Timeout) => {
                reap_ended(&mut held);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        reap_ended(&mut held);
        let count = held.get(&tid).copied().unwrap_or(0);
        let answer = match request {
            Request::Suspend if count > 0 => {
                held.insert(tid, count + 1);
                Ok(Reply::Count(count))
            }
            Request::Suspend => hold(tid).map(|()| {
                held.insert(tid, 1);
                Reply::Count(0)
            }),
            Request::Resume if count == 0 => Ok(Reply::Count(0)),
            Request::Resume => {
                if count == 1 {
                    held.remove(&tid);
                    // It runs again where it stopped (a pending signal included).
                    ptrace::detach(Pid::from_raw(tid), None)
                        .or_log(|| format!("let thread {tid} go"));
                } else {
                    held.insert(tid, count - 1);
                }
                Ok(Reply::Count(count))
            }
            Request::Context if count > 0 => crate::arch::read_regs(tid)
                .map(|c| Reply::Context(Box::new(c)))
                .map_err(|e| io_error(tid, "ptrace(PTRACE_GETREGS)", e)),
            Request::Context => hold(tid).and_then(|()| {
                let regs = crate::arch::read_regs(tid);
                ptrace::detach(Pid::from_raw(tid), None).or_log(|| format!("let thread {tid} go"));
                regs.map(|c| Reply::Context(Box::new(c)))
                    .map_err(|e| io_error(tid, "ptrace(PTRACE_GETREGS)", e))
            }),
            Request::SetContext(_) if count == 0 => Err(Error::InvalidInput {
                what: "thread context",
                reason: format!("thread {tid} is not suspended (SuspendThread it first)"),
            }),
            Request::SetContext(c) => crate::arch::write_regs(tid, &c)
                .map(|()| Reply::Done)
                .map_err(|e| io_error(tid, "ptrace(PTRACE_SETREGS)", e)),
        };
        // The asker stopped waiting (it panicked): nobody to tell.
        let _ = reply.send(answer);
    }
}

fn io_error(tid: i32, what: &'static str, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ESRCH) => Error::NoSuchThread { tid },
        _ => Error::os(format!("{what} on thread {tid}"), e),
    }
}

/// Reaps held threads that ended (their end waits for us) and forgets them.
fn reap_ended(held: &mut HashMap<i32, u32>) {
    held.retain(|&tid, _| {
        let flags = WaitPidFlag::__WALL | WaitPidFlag::WNOHANG;
        !matches!(
            waitpid(Pid::from_raw(tid), Some(flags)),
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) | Err(nix::Error::ECHILD)
        )
    });
}
