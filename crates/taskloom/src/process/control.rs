//! Control events for a supervisor: the signals a terminal, a service
//! manager or a user sends to a program that starts and watches another
//! (`SetConsoleCtrlHandler` and `WaitForMultipleObjects` on the process
//! and the event, on Windows).
//!
//! [`ControlEvents::catch`] blocks the signals it is given in the calling
//! thread (threads started after inherit the block) and reads them from a
//! signalfd, so they are handled in the supervisor's own loop, at a known
//! point, instead of in a handler. A child started with
//! [`ProcessBuilder`](super::ProcessBuilder) gets an empty signal mask
//! before `execve`, so it receives them as usual.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use taskloom::process::{ControlEvents, ProcessBuilder, signals};
//! let events = ControlEvents::catch(&[signals::INT, signals::TERM])?;
//! let mut child = ProcessBuilder::new("sleep").arg("5").spawn()?;
//! loop {
//!     events.wait(Some(&child), Some(Instant::now() + Duration::from_secs(1)))?;
//!     while let Some(e) = events.next()? {
//!         child.signal(e.signal)?; // pass it on
//!     }
//!     if let Some(status) = child.try_wait()? {
//!         println!("{status:?}");
//!         break;
//!     }
//! }
//! # Ok::<(), taskloom::Error>(())
//! ```

use std::time::Instant;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::{PollFd, PollFlags, Timespec};

use super::Process;
use crate::error::{Error, Result};

/// `si_code` of a signal the kernel itself sent (a terminal's Ctrl-C among them).
const SI_KERNEL: i32 = 0x80;

/// Signal numbers by their short names, for [`ControlEvents::catch`] and
/// [`Process::signal`].
pub mod signals {
    /// Hang-up: the terminal closed.
    pub const HUP: i32 = libc::SIGHUP;
    /// Interrupt: Ctrl-C (`CTRL_C_EVENT`).
    pub const INT: i32 = libc::SIGINT;
    /// Quit: Ctrl-\ (`CTRL_BREAK_EVENT`).
    pub const QUIT: i32 = libc::SIGQUIT;
    /// Terminate, as a service manager or `kill` asks.
    pub const TERM: i32 = libc::SIGTERM;
    /// Kill: cannot be caught.
    pub const KILL: i32 = libc::SIGKILL;
    /// User-defined 1.
    pub const USR1: i32 = libc::SIGUSR1;
    /// User-defined 2.
    pub const USR2: i32 = libc::SIGUSR2;
    /// CPU time limit exceeded (`RLIMIT_CPU`'s soft limit).
    pub const XCPU: i32 = libc::SIGXCPU;
    /// Invalid memory reference.
    pub const SEGV: i32 = libc::SIGSEGV;
    /// Bus error.
    pub const BUS: i32 = libc::SIGBUS;
    /// Abort (`abort()`, a failed allocation's usual end).
    pub const ABRT: i32 = libc::SIGABRT;
}

/// One control event: a signal that reached the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlEvent {
    /// The signal's number.
    pub signal: i32,
    /// Sent by the kernel itself: a terminal's Ctrl-C, Ctrl-\ or hang-up,
    /// which reach the whole foreground process group at once (so a child
    /// in the supervisor's group has it already).
    pub from_terminal: bool,
    /// The process that sent it (0 for the kernel).
    pub sender: i32,
}

/// Control events caught for the calling thread's loop.
#[derive(Debug)]
pub struct ControlEvents {
    fd: SignalFd,
}

impl ControlEvents {
    /// Takes `signals` from now on instead of acting on them (blocked in
    /// the calling thread and the threads it starts later; call it before
    /// starting any). Fails on a number that is not a signal, or on
    /// SIGKILL and SIGSTOP, which cannot be caught.
    pub fn catch(signals: &[i32]) -> Result<ControlEvents> {
        let mut mask = SigSet::empty();
        for &s in signals {
            let sig = Signal::try_from(s)
                .ok()
                .filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP))
                .ok_or_else(|| Error::InvalidInput {
                    what: "control events",
                    reason: format!("{} cannot be caught", super::signal_name(s)),
                })?;
            mask.add(sig);
        }
        mask.thread_block()
            .map_err(|e| Error::os("block the control signals", e.into()))?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| Error::os("create a signalfd for the control signals", e.into()))?;
        Ok(ControlEvents { fd })
    }

    /// The next event waiting, if any (never blocks).
    pub fn next(&self) -> Result<Option<ControlEvent>> {
        let info = self
            .fd
            .read_signal()
            .map_err(|e| Error::os("read the control signals", e.into()))?;
        Ok(info.map(|i| ControlEvent {
            signal: i.ssi_signo as i32,
            from_terminal: i.ssi_code == SI_KERNEL,
            sender: i.ssi_pid as i32,
        }))
    }

    /// Sleeps until an event is waiting, `process` (when given) has ended,
    /// or `until` (when given) has come; whichever is first. An interrupted
    /// sleep returns early; the caller looks at all three again.
    pub fn wait(&self, process: Option<&Process>, until: Option<Instant>) -> Result<()> {
        let mut fds = vec![PollFd::new(&self.fd, PollFlags::IN)];
        if let Some(p) = process {
            fds.push(PollFd::from_borrowed_fd(p.pidfd(), PollFlags::IN));
        }
        let timeout = until.map(|t| {
            let pause = t.saturating_duration_since(Instant::now());
            Timespec {
                tv_sec: pause.as_secs() as i64,
                tv_nsec: pause.subsec_nanos() as i64,
            }
        });
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(Error::os("wait for control events", e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn what_cannot_be_caught_is_refused_by_name() {
        for s in [signals::KILL, libc::SIGSTOP, 0, 4096] {
            let e = ControlEvents::catch(&[s]).unwrap_err();
            assert!(matches!(e, Error::InvalidInput { .. }), "{s}: {e}");
        }
    }

    /// In a thread of its own, so that the block and the signal stay there.
    #[test]
    fn a_caught_signal_wakes_the_wait_and_is_read_once() {
        std::thread::spawn(|| {
            let events = ControlEvents::catch(&[signals::USR2]).unwrap();
            // Nothing waiting: the wait ends at its deadline, nothing to read.
            let t = Instant::now();
            events
                .wait(None, Some(t + Duration::from_millis(30)))
                .unwrap();
            assert!(t.elapsed() >= Duration::from_millis(25));
            assert_eq!(events.next().unwrap(), None);
            // raise(3) sends to the calling thread.
            nix::sys::signal::raise(Signal::SIGUSR2).unwrap();
            let t = Instant::now();
            events
                .wait(None, Some(t + Duration::from_secs(10)))
                .unwrap();
            assert!(t.elapsed() < Duration::from_secs(5), "woken by the signal");
            let e = events.next().unwrap().expect("the signal");
            assert_eq!(e.signal, signals::USR2);
            assert!(!e.from_terminal);
            assert_eq!(e.sender, std::process::id() as i32);
            assert_eq!(events.next().unwrap(), None);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_end_of_the_process_wakes_the_wait() {
        std::thread::spawn(|| {
            let events = ControlEvents::catch(&[signals::USR1]).unwrap();
            let mut child = super::super::ProcessBuilder::new("sleep")
                .arg("0.05")
                .spawn()
                .unwrap();
            let t = Instant::now();
            events
                .wait(Some(&child), Some(t + Duration::from_secs(10)))
                .unwrap();
            assert!(t.elapsed() < Duration::from_secs(5), "woken by the exit");
            assert!(child.try_wait().unwrap().is_some());
        })
        .join()
        .unwrap();
    }
}
