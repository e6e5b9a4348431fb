//! Reading `/proc`: one open directory, files read relative to it into a
//! reused buffer, directories listed by number. The module's one unsafe
//! block is the `getdents64` call.
#![allow(unsafe_code)] // one block (getdents64): ARCHITECTURE.md, "Invariants"

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::linux::parse;

/// A reusable reader of `/proc` files relative to an open `/proc` directory.
pub(super) struct ProcReader {
    proc: OwnedFd,
    buf: Vec<u8>,
}

/// The owner uid of an open file (`fstat`).
fn owner_of(fd: BorrowedFd<'_>) -> Option<u32> {
    rustix::fs::fstat(fd).ok().map(|st| st.st_uid)
}

/// Why a file could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ReadErr {
    /// The process is gone (ENOENT, ESRCH).
    Gone,
    /// Not permitted (EACCES, EPERM).
    Denied,
    /// Anything else.
    Other,
}

impl ProcReader {
    pub(super) fn new() -> Result<Self> {
        let proc = rustix::fs::open(
            "/proc",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::os("open /proc", e.into()))?;
        Ok(ProcReader {
            proc,
            buf: Vec::with_capacity(4096),
        })
    }

    pub(super) fn classify(e: rustix::io::Errno) -> ReadErr {
        match e {
            Errno::NOENT | Errno::SRCH => ReadErr::Gone,
            Errno::ACCESS | Errno::PERM => ReadErr::Denied,
            _ => ReadErr::Other,
        }
    }

    /// Reads `rel` (e.g. `123/stat`) into the internal buffer.
    pub(super) fn read(&mut self, rel: &str) -> std::result::Result<&[u8], ReadErr> {
        read_into(&mut self.buf, self.proc.as_fd(), rel, None)?;
        Ok(&self.buf)
    }

    /// Reads `rel` relative to the directory `dir` into the internal buffer.
    pub(super) fn read_at(
        &mut self,
        dir: BorrowedFd<'_>,
        rel: &str,
    ) -> std::result::Result<&[u8], ReadErr> {
        read_into(&mut self.buf, dir, rel, None)?;
        Ok(&self.buf)
    }

    /// As [`Self::read`], also storing the file's owner uid in `owner`: under
    /// `/proc/<pid>` every file has the process's owner (its effective uid,
    /// root when it is not dumpable), and `fstat` on the open file saves the
    /// path walk a separate `fstatat` of the directory would cost.
    pub(super) fn read_with_owner(
        &mut self,
        rel: &str,
        owner: &mut Option<u32>,
    ) -> std::result::Result<&[u8], ReadErr> {
        read_into(&mut self.buf, self.proc.as_fd(), rel, Some(owner))?;
        Ok(&self.buf)
    }

    /// The owner uid of `/proc/<pid>` (the process's effective uid, or root when it is not dumpable).
    pub(super) fn owner(&self, pid: &str) -> Option<u32> {
        rustix::fs::statat(&self.proc, pid, AtFlags::empty())
            .ok()
            .map(|st| st.st_uid)
    }

    pub(super) fn readlink(&self, rel: &str) -> std::result::Result<Vec<u8>, ReadErr> {
        rustix::fs::readlinkat(&self.proc, rel, Vec::with_capacity(256))
            .map(|c| c.into_bytes())
            .map_err(Self::classify)
    }

    pub(super) fn numeric_entries(&self, rel: &str) -> Vec<i32> {
        self.numeric_entries_and_owner(rel).0
    }

    /// As [`Self::numeric_entries_and_owner`], keeping the directory open for reads below it.
    pub(super) fn open_dir_entries(&self, rel: &str) -> Option<(Vec<i32>, Option<u32>, OwnedFd)> {
        let (v, owner, fd) = self.list_dir(rel);
        Some((v, owner, fd?))
    }

    /// The numeric entries of a directory below `/proc` (`""` for `/proc`
    /// itself), and the directory's owner uid. One `getdents64` usually
    /// suffices: procfs fills the buffer until it runs out of entries, so a
    /// return with room for another entry to spare is the end.
    pub(super) fn numeric_entries_and_owner(&self, rel: &str) -> (Vec<i32>, Option<u32>) {
        let (v, owner, _) = self.list_dir(rel);
        (v, owner)
    }

    pub(super) fn list_dir(&self, rel: &str) -> (Vec<i32>, Option<u32>, Option<OwnedFd>) {
        let Ok(fd) = rustix::fs::openat(
            &self.proc,
            if rel.is_empty() { "." } else { rel },
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return (Vec::new(), None, None);
        };
        let owner = owner_of(fd.as_fd());
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // rustix's RawDir reads until getdents returns 0; procfs fills the
            // buffer in one call, so the loop below stops at a call that left
            // room to spare and saves that last call per directory (one per
            // process in a thread snapshot).
            // SAFETY: getdents64 into a buffer of the given size.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    fd.as_raw_fd(),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
            if n <= 0 {
                break;
            }
            let n = n as usize;
            let mut off = 0;
            while off + 19 <= n {
                // struct linux_dirent64 { u64 ino; i64 off; u16 reclen; u8 type; char name[]; }
                let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
                if reclen == 0 || off + reclen > n {
                    break;
                }
                let name = &buf[off + 19..off + reclen];
                let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
                if let Some(v) = parse::parse_int::<i32>(name) {
                    out.push(v);
                }
                off += reclen;
            }
            if buf.len() - n > 512 {
                break;
            }
        }
        out.sort_unstable();
        (out, owner, Some(fd))
    }
}

/// Reads `rel` relative to the directory `dir` into `buf` (cleared first),
/// storing the file's owner uid in `owner` when asked.
fn read_into(
    buf: &mut Vec<u8>,
    dir: BorrowedFd<'_>,
    rel: &str,
    owner: Option<&mut Option<u32>>,
) -> std::result::Result<(), ReadErr> {
    let fd = rustix::fs::openat(dir, rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(ProcReader::classify)?;
    if let Some(owner) = owner {
        *owner = owner_of(fd.as_fd());
    }
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(buf.capacity().max(4096));
        }
        let spare = buf.capacity() - buf.len();
        let n = match rustix::io::read(&fd, rustix::buffer::spare_capacity(buf)) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(ProcReader::classify(e)),
        };
        // A /proc file hands over what it has in one read when the buffer is
        // large enough (seq_file and cmdline alike): a short read is the end,
        // which saves the second read that would return 0.
        if n == 0 || n < spare {
            return Ok(());
        }
    }
}

pub(super) fn page_size() -> u64 {
    rustix::param::page_size() as u64
}
