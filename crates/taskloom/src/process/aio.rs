//! Async process handles for tokio (feature `tokio`, Linux): a wait is the
//! process's pidfd becoming readable, registered with the runtime's
//! reactor, so a thousand children waited on concurrently take no thread,
//! no SIGCHLD handler and no reaper. It works alike for a child and for a
//! process opened by pid ([`Process::open`]). Piped streams become tokio's
//! pipe types.
//!
//! ```no_run
//! # async fn f() -> taskloom::Result<()> {
//! use taskloom::process::{ProcessBuilder, Stdio};
//! use tokio::io::AsyncReadExt;
//! let mut child = ProcessBuilder::new("echo").arg("hi").stdout(Stdio::Piped).spawn_async()?;
//! let mut out = String::new();
//! child.stdout.take().unwrap().read_to_string(&mut out).await.unwrap();
//! assert!(child.wait().await?.success());
//! # Ok(()) }
//! ```
//!
//! The runtime needs its IO driver (`tokio` with `net`, or `rt` with
//! `enable_io`). A handle dropped before its process ended terminates it
//! when it was made [`kill_on_drop`](AsyncProcess::kill_on_drop), and in
//! every case reaps a child once it ends (a task on the runtime), so a
//! long-running program gathers no zombies.
//!
//! Unsafe here: registering an `OwnedFd` with the reactor (tokio asks the
//! caller to promise the descriptor stays open and the same while
//! registered, which an `OwnedFd` owned by the registration does).
#![allow(unsafe_code)] // fenced: ARCHITECTURE.md, "Invariants"

use std::os::fd::{AsFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use super::{ExitStatus, Process, ProcessBuilder};
use crate::error::{Error, OrLog, Result};

/// A process handle whose waits are futures.
#[derive(Debug)]
pub struct AsyncProcess {
    /// `None` only after `into_inner` or during drop.
    inner: Option<Process>,
    ready: AsyncFd<OwnedFd>,
    kill_on_drop: bool,
    /// The parent's end of a piped stdin.
    pub stdin: Option<pipe::Sender>,
    /// The parent's end of a piped stdout.
    pub stdout: Option<pipe::Receiver>,
    /// The parent's end of a piped stderr.
    pub stderr: Option<pipe::Receiver>,
}

/// Registers a pidfd with the current runtime's reactor, for readability.
fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open and is the same
    // descriptor until the AsyncFd is dropped (tokio's contract).
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into())
}

fn no_runtime(what: &'static str) -> Error {
    Error::Unsupported {
        what,
        reason: "no tokio runtime with its IO driver is running on this thread".into(),
    }
}

impl Process {
    /// This handle as an [`AsyncProcess`]: its pidfd registered with the
    /// current tokio runtime, its piped streams as tokio pipes. Must be
    /// called inside a runtime with the IO driver (an error otherwise).
    pub fn into_async(mut self) -> Result<AsyncProcess> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(no_runtime("an async process handle"));
        }
        let pid = self.pid();
        let fd = self
            .pidfd()
            .try_clone_to_owned()
            .map_err(|e| Error::os(format!("duplicate the pidfd of process {pid}"), e))?;
        let ready = register(fd)
            .map_err(|e| Error::os(format!("register process {pid} with the runtime"), e))?;
        let pipe_err = |which: &str, e| Error::os(format!("make process {pid}'s {which} async"), e);
        let stdin = self
            .stdin
            .take()
            .map(|f| pipe::Sender::from_owned_fd(OwnedFd::from(f)))
            .transpose()
            .map_err(|e| pipe_err("stdin", e))?;
        let stdout = self
            .stdout
            .take()
            .map(|f| pipe::Receiver::from_owned_fd(OwnedFd::from(f)))
            .transpose()
            .map_err(|e| pipe_err("stdout", e))?;
        let stderr = self
            .stderr
            .take()
            .map(|f| pipe::Receiver::from_owned_fd(OwnedFd::from(f)))
            .transpose()
            .map_err(|e| pipe_err("stderr", e))?;
        Ok(AsyncProcess {
            inner: Some(self),
            ready,
            kill_on_drop: false,
            stdin,
            stdout,
            stderr,
        })
    }
}

impl ProcessBuilder {
    /// [`spawn`](ProcessBuilder::spawn), then [`Process::into_async`].
    pub fn spawn_async(self) -> Result<AsyncProcess> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(no_runtime("spawning an async process"));
        }
        self.spawn()?.into_async()
    }
}

impl AsyncProcess {
    fn process(&self) -> &Process {
        self.inner.as_ref().expect("present until dropped")
    }

    fn process_mut(&mut self) -> &mut Process {
        self.inner.as_mut().expect("present until dropped")
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.process().pid()
    }

    /// Terminates the process if this handle is dropped before it ended
    /// (as tokio's `Command::kill_on_drop`); off by default, as closing a
    /// Windows handle kills nothing.
    pub fn kill_on_drop(mut self, yes: bool) -> Self {
        self.kill_on_drop = yes;
        self
    }

    /// Waits for the process to end, without blocking a thread.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        loop {
            if let Some(status) = self.process_mut().try_wait()? {
                return Ok(status);
            }
            let pid = self.pid();
            let mut guard = self
                .ready
                .readable()
                .await
                .map_err(|e| Error::os(format!("wait for process {pid}"), e))?;
            // The pidfd stays readable once the process has ended: the loop
            // collects the status; a spurious wake-up waits again.
            guard.clear_ready();
        }
    }

    /// The exit status if the process has ended, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.process_mut().try_wait()
    }

    /// `TerminateProcess`.
    pub fn terminate(&self) -> Result<()> {
        self.process().terminate()
    }

    /// The blocking handle back (the pipes stay with this value's fields).
    pub fn into_inner(mut self) -> Process {
        self.inner.take().expect("present until dropped")
    }
}

impl Drop for AsyncProcess {
    fn drop(&mut self) {
        let Some(mut p) = self.inner.take() else {
            return;
        };
        if matches!(p.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = p.pid();
        if self.kill_on_drop {
            p.terminate()
                .or_log(|| format!("terminate process {pid} as its async handle is dropped"));
        }
        // Reap it once it ends, on the runtime, so no zombie stays behind.
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(fd) = p.pidfd().as_fd().try_clone_to_owned() else {
            return;
        };
        handle.spawn(async move {
            let Ok(ready) = register(fd) else {
                return;
            };
            loop {
                if matches!(p.try_wait(), Ok(Some(_)) | Err(_)) {
                    return;
                }
                match ready.readable().await {
                    Ok(mut guard) => guard.clear_ready(),
                    Err(_) => return,
                }
            }
        });
    }
}
