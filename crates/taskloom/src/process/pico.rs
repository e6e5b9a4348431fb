//! Pico processes: a process whose system calls a **provider** handles.
//!
//! The reference document's pico process is one whose system calls go to a
//! provider instead of the kernel, without the process knowing. Linux has
//! that in seccomp user notification (`SECCOMP_RET_USER_NOTIF`, Linux 5.0;
//! `SECCOMP_USER_NOTIF_FLAG_CONTINUE`, 5.5): the child installs a filter just
//! before `execve` that sends the chosen system calls to a listener; the
//! kernel stops the calling thread and hands the call to this crate's
//! provider thread, which asks your [`Provider`] and answers: carry the call
//! out as asked ([`Reply::Continue`]), return a value without running it
//! ([`Reply::Return`]), or fail it with an errno ([`Reply::Fail`]).
//!
//! ```no_run
//! use taskloom::process::ProcessBuilder;
//! use taskloom::process::pico::{Provider, Reply, Syscall, SyscallSet};
//!
//! /// Fails the third `write` with ENOSPC.
//! struct ThirdWriteFails(u32);
//! impl Provider for ThirdWriteFails {
//!     fn on_syscall(&mut self, _call: &Syscall) -> Reply {
//!         self.0 += 1;
//!         if self.0 == 3 { Reply::Fail(libc::ENOSPC) } else { Reply::Continue }
//!     }
//! }
//! let set = SyscallSet::from_names(["write"])?;
//! let mut p = ProcessBuilder::new("sh")
//!     .args(["-c", "echo 1; echo 2; echo 3; echo 4"])
//!     .pico(ThirdWriteFails(0), set)
//!     .spawn()?;
//! p.wait()?;
//! # Ok::<(), taskloom::Error>(())
//! ```
//!
//! What holds, and what does not:
//! - **Inherited.** The filter is inherited by every child and thread the
//!   process makes and survives `execve`: they are pico processes of the same
//!   provider, served by the same thread.
//! - **No new privileges.** Installing a filter without `CAP_SYS_ADMIN`
//!   needs `no_new_privs`, so a pico process gains nothing from set-user-ID
//!   programs.
//! - **Not a security boundary when continuing.** A provider that decides
//!   from the process's memory (a path argument, say) and answers
//!   `Continue` races the process: another of its threads can change that
//!   memory between the check and the kernel's own read (the kernel's
//!   documentation says so). Answer `Return` or `Fail` when it matters.
//! - **Panics.** A provider that panics fails the call with `ENOSYS`; the
//!   panic is counted ([`PicoStats::panics`]) and logged, and the process
//!   goes on.
//! - Only the native system call table is matched (on x86_64, i386 and x32
//!   calls pass through unseen).
//!
//! One of the fenced unsafe modules: the `ioctl`s on the listener, the
//! memory reads of the process, and the filter's layout.
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};

/// A system call number (the native table of this architecture).
pub type Sysno = syscalls::Sysno;
/// An errno, by value (`Errno::ENOENT`), with its name.
pub use syscalls::Errno;

/// The errno named `name` (`ENOENT`), or given as a number.
pub fn errno_by_name(name: &str) -> Option<i32> {
    if let Ok(n) = name.parse::<i32>() {
        return (n > 0 && n < 4096).then_some(n);
    }
    (1..4096).find(|&n| Errno::new(n).name() == Some(name))
}

/// The name of errno `n` (`ENOENT`), or its number when it has none.
pub fn errno_name(n: i32) -> String {
    Errno::new(n)
        .name()
        .map_or_else(|| n.to_string(), str::to_owned)
}

/// The native audit architecture the filter matches.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: u32 = 0;

/// One system call a pico process made, as the provider sees it.
#[derive(Debug)]
pub struct Syscall {
    /// The calling thread (in this process's pid namespace).
    pub pid: i32,
    /// The call.
    pub sysno: Sysno,
    /// Its six arguments, raw.
    pub args: [u64; 6],
    /// Where it was made (the instruction after the `syscall`).
    pub instruction_pointer: u64,
    id: u64,
    listener: RawFd,
}

impl Syscall {
    /// The call's name (`openat`).
    pub fn name(&self) -> &'static str {
        self.sysno.name()
    }

    /// Reads the calling process's memory at `addr` into `buf` (for pointer
    /// arguments); how many bytes were read. Checked afterwards against the
    /// call still pending, so what was read belongs to this call.
    pub fn read_memory(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: one local iovec over `buf`; the remote one is only read by
        // the kernel, which checks it against the target's memory.
        let n = unsafe { libc::process_vm_readv(self.pid, &local, 1, &remote, 1, 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if !self.still_pending() {
            return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
        }
        Ok(n as usize)
    }

    /// A NUL-terminated string argument (a path), at most 4096 bytes.
    pub fn read_c_string(&self, addr: u64) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 256];
        let mut at = addr;
        while out.len() < 4096 {
            // Stop a read at a page end: the next page may not be mapped.
            let to_page_end = 4096 - (at % 4096) as usize;
            let want = chunk.len().min(to_page_end);
            let n = self.read_memory(at, &mut chunk[..want])?;
            if n == 0 {
                break;
            }
            if let Some(nul) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
            at += n as u64;
        }
        Ok(out)
    }

    /// Whether the call still waits for an answer (the thread was not killed).
    fn still_pending(&self) -> bool {
        let mut id = self.id;
        // SAFETY: the listener is open while the server runs; `id` is a u64.
        unsafe { libc::ioctl(self.listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &mut id) == 0 }
    }
}

/// The provider's answer to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Carry the call out as the process asked (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
    Continue,
    /// Do not run it; it returns this value.
    Return(i64),
    /// Do not run it; it fails with this errno (positive, as `libc::ENOENT`).
    Fail(i32),
}

/// Handles the system calls of a pico process (its provider).
pub trait Provider: Send + 'static {
    /// Called for each call in the process's [`SyscallSet`], by one thread
    /// (calls from several threads of the process come one at a time).
    fn on_syscall(&mut self, call: &Syscall) -> Reply;
}

impl<F: FnMut(&Syscall) -> Reply + Send + 'static> Provider for F {
    fn on_syscall(&mut self, call: &Syscall) -> Reply {
        self(call)
    }
}

/// The system calls a provider sees (all others run unseen, at no cost
/// beyond the filter's few instructions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyscallSet(Vec<Sysno>);

impl SyscallSet {
    /// The calls named (`openat`, `write`); an unknown name is an error that says which.
    pub fn from_names<I, S>(names: I) -> Result<SyscallSet>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = Vec::new();
        for n in names {
            let n = n.as_ref();
            let s: Sysno = n.parse().map_err(|_| Error::InvalidInput {
                what: "system call",
                reason: format!("{n:?} is not a system call of {}", std::env::consts::ARCH),
            })?;
            if !set.contains(&s) {
                set.push(s);
            }
        }
        Ok(SyscallSet(set))
    }

    /// These calls.
    pub fn from_sysnos(calls: impl IntoIterator<Item = Sysno>) -> SyscallSet {
        let mut set = Vec::new();
        for s in calls {
            if !set.contains(&s) {
                set.push(s);
            }
        }
        SyscallSet(set)
    }

    /// The calls in the set.
    pub fn sysnos(&self) -> &[Sysno] {
        &self.0
    }

    /// The classic BPF program: the native architecture's listed calls go
    /// to the listener, everything else is allowed.
    fn filter(&self) -> Vec<libc::sock_filter> {
        const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
        const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
        const RET_K: u16 = 0x06; // BPF_RET | BPF_K
        let stmt = |code, k| libc::sock_filter {
            code,
            jt: 0,
            jf: 0,
            k,
        };
        let n = self.0.len();
        let mut f = Vec::with_capacity(n + 5);
        // seccomp_data: nr at 0, arch at 4.
        f.push(stmt(LD_W_ABS, 4));
        // Another architecture: allow (jump over the list to ALLOW).
        f.push(libc::sock_filter {
            code: JEQ_K,
            jt: 0,
            jf: (n + 1) as u8,
            k: AUDIT_ARCH,
        });
        f.push(stmt(LD_W_ABS, 0));
        for (i, s) in self.0.iter().enumerate() {
            // A match jumps to NOTIFY, the last instruction.
            f.push(libc::sock_filter {
                code: JEQ_K,
                jt: (n - i) as u8,
                jf: 0,
                k: s.id() as u32,
            });
        }
        f.push(stmt(RET_K, libc::SECCOMP_RET_ALLOW));
        f.push(stmt(RET_K, libc::SECCOMP_RET_USER_NOTIF));
        f
    }
}

/// What a pico process's server has done, read while or after it runs.
#[derive(Debug, Default)]
pub struct PicoStats {
    calls: AtomicU64,
    panics: AtomicU64,
    done: AtomicBool,
}

impl PicoStats {
    /// Calls the provider answered.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Calls on which the provider panicked (each failed with `ENOSYS`).
    pub fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Whether the server has stopped (no process uses the filter any more).
    pub fn finished(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// A provider and its calls, as the builder holds them.
pub(crate) struct PicoSpec {
    pub provider: Box<dyn Provider>,
    pub set: SyscallSet,
}

impl std::fmt::Debug for PicoSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PicoSpec").field("set", &self.set).finish()
    }
}

/// What the child and the server share during a spawn (`CLONE_VM`): the
/// filter, and the handshake that gets its listener to the server before
/// the child may make a call the server must answer.
pub(crate) struct Handoff {
    pub filter: Vec<libc::sock_filter>,
    /// The listener's number in the child's table (-1 until installed).
    pub listener: AtomicI32,
    /// The child's pidfd in our table, written by `clone3` (-1 until then).
    pub pidfd: AtomicI32,
    /// 0 while the child waits; 1 once the server holds the listener; 2 if
    /// it could not take it (then `errno` says why and the child fails).
    pub taken: AtomicU32,
    pub errno: AtomicI32,
    /// Set by the parent when the spawn failed: the server stops waiting.
    pub abandoned: AtomicBool,
}

/// A pico spawn in progress: the handoff the child uses and the server
/// thread waiting on it.
pub(crate) struct Server {
    pub handoff: Arc<Handoff>,
    pub stats: Arc<PicoStats>,
}

impl Server {
    /// Starts the server thread for `spec`, which waits for the child's
    /// listener, then serves until no process uses the filter.
    pub fn start(spec: PicoSpec) -> Result<Server> {
        let handoff = Arc::new(Handoff {
            filter: spec.set.filter(),
            listener: AtomicI32::new(-1),
            pidfd: AtomicI32::new(-1),
            taken: AtomicU32::new(0),
            errno: AtomicI32::new(0),
            abandoned: AtomicBool::new(false),
        });
        let stats = Arc::new(PicoStats::default());
        let (h, s) = (handoff.clone(), stats.clone());
        let mut provider = spec.provider;
        std::thread::Builder::new()
            .name("taskloom-pico".into())
            .spawn(move || {
                if let Some(listener) = take_listener(&h) {
                    serve(&listener, provider.as_mut(), &s);
                }
                s.done.store(true, Ordering::Release);
            })
            .map_err(|e| Error::os("start the system call provider's thread", e))?;
        Ok(Server { handoff, stats })
    }

    /// The spawn failed: the server stops waiting for a listener.
    pub fn abandon(&self) {
        self.handoff.abandoned.store(true, Ordering::Release);
    }
}

/// Waits for the child's listener and copies it into our table
/// (`pidfd_getfd`); tells the child whether that worked.
fn take_listener(h: &Handoff) -> Option<OwnedFd> {
    let (listener, pidfd) = loop {
        if h.abandoned.load(Ordering::Acquire) {
            return None;
        }
        let (l, p) = (
            h.listener.load(Ordering::Acquire),
            h.pidfd.load(Ordering::Acquire),
        );
        if l >= 0 && p >= 0 {
            break (l, p);
        }
        std::thread::sleep(Duration::from_micros(20));
    };
    // SAFETY: `pidfd` is the child's pidfd in our table, open until the spawn
    // returns, which it does not before the child execs, which it does not
    // before `taken` is set below; `listener` is a number in its table.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, listener, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EPERM);
        h.errno.store(e, Ordering::Relaxed);
        h.taken.store(2, Ordering::Release);
        return None;
    }
    h.taken.store(1, Ordering::Release);
    // SAFETY: a fresh descriptor nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Answers calls until no process uses the filter (`POLLHUP`).
fn serve(listener: &OwnedFd, provider: &mut dyn Provider, stats: &PicoStats) {
    let fd = listener.as_raw_fd();
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, -1) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        if pfd.revents & libc::POLLIN == 0 {
            // POLLHUP: every process of the filter has ended.
            return;
        }
        // SAFETY: a zeroed seccomp_notif is what RECV wants.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: the listener and a seccomp_notif of the size the ioctl encodes.
        if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
            continue; // EINTR, or the caller was killed (ENOENT)
        }
        let call = Syscall {
            pid: req.pid as i32,
            sysno: Sysno::new(req.data.nr as usize).unwrap_or(Sysno::restart_syscall),
            args: req.data.args,
            instruction_pointer: req.data.instruction_pointer,
            id: req.id,
            listener: fd,
        };
        let reply = match catch_unwind(AssertUnwindSafe(|| provider.on_syscall(&call))) {
            Ok(r) => r,
            Err(p) => {
                stats.panics.fetch_add(1, Ordering::Relaxed);
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(
                    "the system call provider panicked on {} of pid {}: {msg}; the call fails with ENOSYS",
                    call.name(),
                    call.pid
                );
                Reply::Fail(libc::ENOSYS)
            }
        };
        stats.calls.fetch_add(1, Ordering::Relaxed);
        let mut resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: 0,
            flags: 0,
        };
        match reply {
            Reply::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
            Reply::Return(v) => resp.val = v,
            Reply::Fail(e) => resp.error = -e.abs(),
        }
        // SAFETY: the listener and a seccomp_notif_resp of the encoded size.
        // ENOENT (the caller was killed meanwhile) needs nothing.
        unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_architectures_and_unknown_ones_are_refused() {
        let set = SyscallSet::from_names(["openat", "write", "openat"]).unwrap();
        assert_eq!(set.sysnos().len(), 2);
        assert_eq!(set.sysnos()[0].name(), "openat");
        let e = SyscallSet::from_names(["opnat"]).unwrap_err();
        assert!(
            e.to_string().contains("\"opnat\" is not a system call"),
            "{e}"
        );
    }

    #[test]
    fn the_filter_sends_the_listed_calls_and_allows_the_rest() {
        let set = SyscallSet::from_names(["read", "write"]).unwrap();
        let f = set.filter();
        // load arch, check arch, load nr, two checks, allow, notify.
        assert_eq!(f.len(), 7);
        assert_eq!(f[1].jf, 3, "another arch jumps to ALLOW");
        assert_eq!((f[3].jt, f[4].jt), (2, 1), "each match jumps to NOTIFY");
        assert_eq!(f[5].k, libc::SECCOMP_RET_ALLOW);
        assert_eq!(f[6].k, libc::SECCOMP_RET_USER_NOTIF);
    }
}
