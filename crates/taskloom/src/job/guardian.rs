//! The kill-on-close guardian: a tiny process that outlives the job's owner.
//!
//! Linux has no "kill this cgroup when the last handle closes". taskloom's
//! job handle holds the write end of a pipe; a guardian process, forked
//! twice so that it belongs to no one's wait list, holds only the read end.
//! When every write end is closed (every handle dropped, also by a SIGKILL of
//! the owner, since the kernel closes a dead process's descriptors) the read
//! end reports end-of-file and the guardian kills the job's cgroups and
//! removes them.
//!
//! The guardian is forked from a possibly multi-threaded process, so from the
//! fork on it only makes raw syscalls on memory prepared before the fork.
//! This is one of taskloom's few unsafe modules.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::ptr;

use crate::error::{Error, Result};

/// What the guardian does when the last handle is gone, prepared before the fork.
#[derive(Debug)]
pub(crate) struct Plan {
    /// `<job>/cgroup.kill` on cgroup2, when present.
    pub v2_kill: Option<CString>,
    /// `<job>/cgroup.events` on cgroup2, to wait until the job is empty.
    pub v2_events: Option<CString>,
    /// v1 fallback: `freezer.state` of the job (may be absent).
    pub v1_freezer: Option<CString>,
    /// v1 fallback: `cgroup.procs` files whose pids are killed until empty.
    pub v1_procs: Vec<CString>,
    /// Job directories to remove (with everything below them), after the kill.
    pub remove: Vec<CString>,
    /// Process-group backend: the file holding the job's group id.
    pub pg_file: Option<CString>,
    /// Files to unlink after the kill (the process-group backend's state).
    pub unlink: Vec<CString>,
    /// Directories removed after `remove` when they are empty then (the
    /// shared `taskloom` roots, which the last job takes with it); a busy one stays.
    pub remove_if_empty: Vec<CString>,
}

impl Plan {
    pub fn new(
        v2: Option<&PathBuf>,
        v1_freezer: Option<PathBuf>,
        v1_dirs: &[PathBuf],
        remove: &[PathBuf],
        remove_if_empty: &[PathBuf],
    ) -> Self {
        let c = |p: PathBuf| CString::new(p.as_os_str().as_bytes()).unwrap_or_default();
        Plan {
            v2_kill: v2.map(|d| c(d.join("cgroup.kill"))),
            v2_events: v2.map(|d| c(d.join("cgroup.events"))),
            v1_freezer: v1_freezer.map(|f| c(f.join("freezer.state"))),
            v1_procs: v1_dirs.iter().map(|d| c(d.join("cgroup.procs"))).collect(),
            remove: remove.iter().cloned().map(c).collect(),
            pg_file: None,
            unlink: Vec::new(),
            remove_if_empty: remove_if_empty.iter().cloned().map(c).collect(),
        }
    }

    /// The plan for a process-group job whose state lives in `dir`.
    pub fn for_process_group(dir: &std::path::Path) -> Self {
        let c = |p: PathBuf| CString::new(p.as_os_str().as_bytes()).unwrap_or_default();
        Plan {
            v2_kill: None,
            v2_events: None,
            v1_freezer: None,
            v1_procs: Vec::new(),
            remove: vec![c(dir.to_owned())],
            pg_file: Some(c(dir.join("pgid"))),
            unlink: ["pgid", "limits.json", "frozen"]
                .into_iter()
                .map(|f| c(dir.join(f)))
                .collect(),
            remove_if_empty: Vec::new(),
        }
    }
}

/// Starts a guardian for `plan`; returns the holder end (close-on-exec).
pub(crate) fn start(plan: &Plan) -> Result<OwnedFd> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::last_os("pipe2"));
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: after fork the child runs only `guardian_main`/`_exit`, which make raw
    // syscalls on memory prepared before the fork (see the module docs).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os("fork"));
    }
    if pid == 0 {
        // SAFETY: as above; the intermediate child forks the guardian and exits at once,
        // so the guardian is reparented and never becomes our zombie.
        unsafe {
            if libc::fork() == 0 {
                guardian_main(read_end.as_raw_fd(), plan);
            }
            libc::_exit(0);
        }
    }
    drop(read_end);
    let mut status = 0;
    // SAFETY: waiting for the intermediate child we just forked.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(Error::last_os("waitpid(guardian)"));
        }
    }
    Ok(write_end)
}

/// The guardian. Never returns.
///
/// # Safety
/// Must only run in a freshly forked child; `plan` must be the parent's plan.
unsafe fn guardian_main(holder: RawFd, plan: &Plan) -> ! {
    // SAFETY: raw syscalls and async-signal-safe libc calls on prepared memory.
    unsafe {
        libc::setsid();
        // Keep nothing but the holder pipe: above all no write end of any job.
        if holder > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, (holder - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (holder + 1) as u32, u32::MAX, 0u32);
        libc::prctl(
            libc::PR_SET_NAME,
            c"taskloom-guard".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
        for sig in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGPIPE,
            libc::SIGTSTP,
            libc::SIGTTIN,
            libc::SIGTTOU,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        let mut none = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(none.as_mut_ptr());
        libc::sigprocmask(libc::SIG_SETMASK, none.as_ptr(), ptr::null_mut());

        // Wait for end-of-file: every holder is gone.
        let mut buf = [0u8; 64];
        loop {
            let n = libc::read(holder, buf.as_mut_ptr().cast(), buf.len());
            if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                break;
            }
        }
        kill_job(plan);
        for dir in &plan.remove {
            remove_tree(dir.as_ptr());
        }
        for dir in &plan.remove_if_empty {
            libc::rmdir(dir.as_ptr());
        }
        libc::_exit(0)
    }
}

/// Kills every process of the job and waits until it is empty.
///
/// # Safety
/// Raw syscalls only; callable from the guardian.
unsafe fn kill_job(plan: &Plan) {
    // SAFETY: raw syscalls on the plan's C strings and stack buffers.
    unsafe {
        if let Some(file) = &plan.pg_file {
            let mut buf = [0u8; 32];
            let n = read_file(file.as_ptr(), &mut buf);
            let pgid = if n > 0 {
                parse_pids(&buf[..n as usize]).next().unwrap_or(0)
            } else {
                0
            };
            // Never kill(-1) (every process of the user) or our own group.
            if pgid > 1 {
                // Until the group is gone (kill fails with ESRCH), at most ~10 s.
                for _ in 0..10_000 {
                    if libc::kill(-pgid, libc::SIGKILL) != 0 {
                        break;
                    }
                    sleep_ms(1);
                }
            }
            for f in &plan.unlink {
                libc::unlink(f.as_ptr());
            }
            return;
        }
        if let Some(kill) = &plan.v2_kill
            && write_file(kill.as_ptr(), b"1")
        {
            if let Some(events) = &plan.v2_events {
                // Wait (at most ~10 s) for "populated 0".
                let mut buf = [0u8; 512];
                for _ in 0..10_000 {
                    let n = read_file(events.as_ptr(), &mut buf);
                    if n <= 0 || contains(&buf[..n as usize], b"populated 0") {
                        break;
                    }
                    sleep_ms(1);
                }
            }
            return;
        }
        // cgroup v1 only: freeze so nothing forks, kill everything, thaw so SIGKILL lands.
        for _ in 0..1000 {
            if let Some(f) = &plan.v1_freezer {
                write_file(f.as_ptr(), b"FROZEN");
            }
            let mut any = false;
            for procs in &plan.v1_procs {
                let mut buf = [0u8; 16384];
                let n = read_file(procs.as_ptr(), &mut buf);
                if n > 0 {
                    for pid in parse_pids(&buf[..n as usize]) {
                        any = true;
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
            if let Some(f) = &plan.v1_freezer {
                write_file(f.as_ptr(), b"THAWED");
            }
            if !any {
                return;
            }
            sleep_ms(1);
        }
    }
}

fn parse_pids(text: &[u8]) -> impl Iterator<Item = i32> + '_ {
    text.split(|&c| c == b'\n').filter_map(|line| {
        if line.is_empty() {
            return None;
        }
        let mut v: i32 = 0;
        for &c in line {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v.checked_mul(10)?.checked_add((c - b'0') as i32)?;
        }
        Some(v)
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// # Safety
/// `path` must be a valid C string.
unsafe fn write_file(path: *const libc::c_char, data: &[u8]) -> bool {
    // SAFETY: raw open/write/close on a valid path and buffer.
    unsafe {
        let fd = libc::open(path, libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let ok = libc::write(fd, data.as_ptr().cast(), data.len()) == data.len() as isize;
        libc::close(fd);
        ok
    }
}

/// # Safety
/// `path` must be a valid C string.
unsafe fn read_file(path: *const libc::c_char, buf: &mut [u8]) -> isize {
    // SAFETY: raw open/read/close on a valid path into `buf`.
    unsafe {
        let fd = libc::open(path, libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return -1;
        }
        let mut total = 0usize;
        while total < buf.len() {
            let n = libc::read(fd, buf[total..].as_mut_ptr().cast(), buf.len() - total);
            if n <= 0 {
                break;
            }
            total += n as usize;
        }
        libc::close(fd);
        total as isize
    }
}

fn sleep_ms(ms: u64) {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: (ms * 1_000_000) as libc::c_long,
    };
    // SAFETY: nanosleep with a valid timespec and no remainder pointer.
    unsafe { libc::nanosleep(&ts, ptr::null_mut()) };
}

/// Removes a cgroup directory and every cgroup below it (cgroupfs holds only
/// control files, which rmdir ignores), with a path buffer on the stack.
///
/// # Safety
/// `path` must be a valid C string.
unsafe fn remove_tree(path: *const libc::c_char) {
    let mut buf = [0u8; 4096];
    // SAFETY: `path` is a valid C string; strlen is async-signal-safe.
    let len = unsafe { libc::strlen(path) };
    if len + 1 >= buf.len() {
        return;
    }
    // SAFETY: copying `len` bytes from a valid C string into a larger buffer.
    unsafe { ptr::copy_nonoverlapping(path as *const u8, buf.as_mut_ptr(), len) };
    // SAFETY: `buf` holds a NUL-terminated path of `len` bytes.
    unsafe { remove_tree_in(&mut buf, len, 0) };
}

/// # Safety
/// `buf[..len]` is a path and `buf[len]` may be overwritten.
unsafe fn remove_tree_in(buf: &mut [u8; 4096], len: usize, depth: u32) {
    if depth > 32 {
        return;
    }
    buf[len] = 0;
    // SAFETY: raw directory syscalls on a NUL-terminated path in `buf`.
    unsafe {
        let fd = libc::open(
            buf.as_ptr().cast(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if fd >= 0 {
            let mut dents = [0u8; 4096];
            loop {
                let n = libc::syscall(libc::SYS_getdents64, fd, dents.as_mut_ptr(), dents.len());
                if n <= 0 {
                    break;
                }
                let mut off = 0usize;
                while off < n as usize {
                    // struct linux_dirent64 { u64 ino; i64 off; u16 reclen; u8 type; char name[]; }
                    let reclen = u16::from_ne_bytes([dents[off + 16], dents[off + 17]]) as usize;
                    let dtype = dents[off + 18];
                    let name = &dents[off + 19..off + reclen];
                    let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
                    if dtype == libc::DT_DIR
                        && name != b"."
                        && name != b".."
                        && len + 1 + name.len() + 1 < buf.len()
                    {
                        buf[len] = b'/';
                        buf[len + 1..len + 1 + name.len()].copy_from_slice(name);
                        remove_tree_in(buf, len + 1 + name.len(), depth + 1);
                        buf[len] = 0;
                    }
                    off += reclen;
                }
            }
            libc::close(fd);
        }
        for _ in 0..1000 {
            if libc::rmdir(buf.as_ptr().cast()) == 0 || *libc::__errno_location() != libc::EBUSY {
                break;
            }
            sleep_ms(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_lists_parse() {
        let pids: Vec<i32> = parse_pids(b"12\n345\n\nx1\n99999999999\n7\n").collect();
        assert_eq!(pids, [12, 345, 7]);
    }
}
