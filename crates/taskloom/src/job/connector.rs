//! The kernel's process events connector (netlink `NETLINK_CONNECTOR`,
//! `CN_IDX_PROC`): every fork and exit on the machine, with exit statuses.
//! Listening needs `CAP_NET_ADMIN` (root) before Linux 6.6; since 6.6
//! ("connector/cn_proc: Allow non-root users access") any user may listen,
//! from the initial user and pid namespaces only (elsewhere the kernel
//! ignores the subscription without an error). Where it is not available
//! the job watcher falls back to scanning members and reports exits
//! without a status, and jobs keep no total process count.
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
const NLMSG_HDRLEN: usize = 16;
const CN_MSG_LEN: usize = 20;

/// One process event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcEvent {
    /// A new process (not thread): its parent's and its own pid.
    Fork { parent: i32, child: i32 },
    /// A process (not a thread) exited with a wait status.
    Exit { pid: i32, wait_status: u32 },
}

/// A subscribed connector socket.
#[derive(Debug)]
pub(crate) struct Connector {
    fd: OwnedFd,
}

impl Connector {
    /// Subscribes to process events: with `CAP_NET_ADMIN`, or on Linux 6.6
    /// and later as any user; in both cases only from the initial user and
    /// pid namespaces.
    ///
    /// Outside them the kernel ignores the subscription silently (the send
    /// succeeds, no event ever comes), so that is checked first; an older
    /// kernel refuses an unprivileged one at `bind` (EPERM).
    pub fn open() -> io::Result<Connector> {
        // PROC_USER_INIT_INO and PROC_PID_INIT_INO (include/linux/proc_ns.h).
        let ino = |ns: &str| std::fs::metadata(format!("/proc/self/ns/{ns}")).map(|m| m.ino());
        if ino("user")? != 0xEFFF_FFFD || ino("pid")? != 0xEFFF_FFFC {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        // SAFETY: creating a socket; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_CONNECTOR,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a zeroed sockaddr_nl with family and group set; bind copies it.
        unsafe {
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as u16;
            addr.nl_groups = CN_IDX_PROC;
            if libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        // nlmsghdr + cn_msg + u32 op.
        let total = NLMSG_HDRLEN + CN_MSG_LEN + 4;
        let mut msg = vec![0u8; total];
        msg[0..4].copy_from_slice(&(total as u32).to_ne_bytes());
        msg[4..6].copy_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
        msg[12..16].copy_from_slice(&std::process::id().to_ne_bytes());
        let cn = NLMSG_HDRLEN;
        msg[cn..cn + 4].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
        msg[cn + 4..cn + 8].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
        msg[cn + 16..cn + 18].copy_from_slice(&4u16.to_ne_bytes());
        msg[cn + CN_MSG_LEN..].copy_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
        // SAFETY: sending a buffer we own.
        let n = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Connector { fd })
    }

    /// The subscribed socket (for the job's process counter).
    /// A duplicate of the socket registered with the current tokio
    /// runtime's reactor, for readability (feature `tokio`).
    #[cfg(feature = "tokio")]
    pub fn register_async(&self) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
        let fd = self.fd.try_clone()?;
        // SAFETY: the AsyncFd owns the duplicate, which stays open and the
        // same descriptor until the AsyncFd is dropped (tokio's contract).
        unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }
        .map_err(|e| e.into())
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Every event received so far, without waiting. `Err` with ENOBUFS means
    /// events were lost (the caller must rescan).
    pub fn drain(&self, out: &mut Vec<ProcEvent>) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: receiving into a buffer we own.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(libc::EAGAIN) => Ok(()),
                    Some(libc::EINTR) => continue,
                    _ => Err(e),
                };
            }
            parse_messages(&buf[..n as usize], out);
        }
    }
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    b.get(o..o + 4)
        .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
}

/// Parses netlink messages carrying `proc_event`s (bytes only; tested on made-up input).
pub(crate) fn parse_messages(b: &[u8], out: &mut Vec<ProcEvent>) {
    for_each_event(b, |e| out.push(e));
}

/// Hands each process event in `b` to `f`, allocating nothing (the job's
/// counter calls it in a forked child).
pub(crate) fn for_each_event(mut b: &[u8], mut f: impl FnMut(ProcEvent)) {
    while b.len() >= NLMSG_HDRLEN {
        let len = u32_at(b, 0).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            return;
        }
        let ev = &b[NLMSG_HDRLEN..len];
        // cn_msg (20 bytes), then proc_event: what, cpu, timestamp (u64), data.
        let d = CN_MSG_LEN + 16;
        match u32_at(ev, CN_MSG_LEN) {
            Some(PROC_EVENT_FORK) => {
                if let (Some(ppid), Some(ptgid), Some(cpid), Some(ctgid)) = (
                    u32_at(ev, d),
                    u32_at(ev, d + 4),
                    u32_at(ev, d + 8),
                    u32_at(ev, d + 12),
                ) && cpid == ctgid
                {
                    // The parent thread's id is not needed: the parent process is.
                    let _ = ppid;
                    f(ProcEvent::Fork {
                        parent: ptgid as i32,
                        child: cpid as i32,
                    });
                }
            }
            Some(PROC_EVENT_EXIT) => {
                if let (Some(pid), Some(tgid), Some(code)) =
                    (u32_at(ev, d), u32_at(ev, d + 4), u32_at(ev, d + 8))
                    && pid == tgid
                {
                    f(ProcEvent::Exit {
                        pid: pid as i32,
                        wait_status: code,
                    });
                }
            }
            _ => {}
        }
        let aligned = len.div_ceil(4) * 4;
        b = &b[aligned.min(b.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(what: u32, data: &[u32]) -> Vec<u8> {
        let mut ev = vec![0u8; CN_MSG_LEN];
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&0u32.to_ne_bytes());
        ev.extend_from_slice(&0u64.to_ne_bytes());
        for w in data {
            ev.extend_from_slice(&w.to_ne_bytes());
        }
        let mut m = ((NLMSG_HDRLEN + ev.len()) as u32).to_ne_bytes().to_vec();
        m.extend_from_slice(&[0u8; 12]);
        m.extend_from_slice(&ev);
        m
    }

    #[test]
    fn forks_and_exits_of_processes_not_threads() {
        let mut buf = message(PROC_EVENT_FORK, &[10, 10, 11, 11]);
        buf.extend(message(PROC_EVENT_FORK, &[10, 10, 12, 10])); // a thread: ignored
        buf.extend(message(PROC_EVENT_EXIT, &[11, 11, 3 << 8, 17, 10, 10]));
        buf.extend(message(PROC_EVENT_EXIT, &[12, 10, 0, 17, 10, 10])); // thread exit: ignored
        buf.extend(message(0x2, &[11, 11])); // exec: ignored
        let mut out = Vec::new();
        parse_messages(&buf, &mut out);
        assert_eq!(
            out,
            [
                ProcEvent::Fork {
                    parent: 10,
                    child: 11
                },
                ProcEvent::Exit {
                    pid: 11,
                    wait_status: 3 << 8
                }
            ]
        );
        let mut none = Vec::new();
        parse_messages(&[1, 2, 3], &mut none);
        parse_messages(&message(PROC_EVENT_EXIT, &[1])[..20], &mut none);
        assert!(none.is_empty());
    }
}
