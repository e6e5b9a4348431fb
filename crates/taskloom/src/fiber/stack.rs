//! Fiber stacks: mmap'd with a guard page below, pooled per thread.
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use std::io;
use std::ptr;

/// A fiber stack: `[base, base + guard)` is PROT_NONE, the rest read-write.
#[derive(Debug)]
pub(crate) struct Stack {
    base: usize,
    len: usize,
    guard: usize,
    valgrind_id: usize,
}

/// The page size (cached; a power of two).
#[inline]
pub(crate) fn page_size() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    PAGE.store(p, Ordering::Relaxed);
    p
}

/// The usable size of a stack asked for with `reserve` bytes: at least four
/// pages, rounded up to a page (by mask: the page size is a power of two,
/// and this runs on every fiber creation).
#[inline]
pub(crate) fn usable_size(reserve: usize) -> usize {
    let page = page_size();
    (reserve.max(4 * page) + page - 1) & !(page - 1)
}

impl Stack {
    /// Maps `reserve` usable bytes (rounded up to pages) plus one guard page,
    /// and pre-faults the top `commit` bytes.
    pub fn new(reserve: usize, commit: usize) -> io::Result<Stack> {
        let page = page_size();
        let usable = usable_size(reserve);
        let len = usable + page;
        // SAFETY: anonymous private mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut stack = Stack {
            base: base as usize,
            len,
            guard: page,
            valgrind_id: 0,
        };
        // SAFETY: the range lies inside the mapping we own.
        if unsafe {
            libc::mprotect(
                (stack.base + page) as *mut libc::c_void,
                usable,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        } != 0
        {
            return Err(io::Error::last_os_error()); // `stack` unmaps on drop
        }
        let commit = commit.min(usable).div_ceil(page) * page;
        if commit > 0 {
            // Best effort (Linux 5.14+): fault in what CreateFiberEx's commit size asks for.
            // SAFETY: the range is inside the read-write part of our mapping.
            unsafe {
                libc::madvise(
                    (stack.top() - commit) as *mut libc::c_void,
                    commit,
                    libc::MADV_POPULATE_WRITE,
                )
            };
        }
        stack.valgrind_id =
            crate::arch::valgrind_request(VG_STACK_REGISTER, stack.base + page, stack.top());
        Ok(stack)
    }

    /// One past the highest usable byte (16-byte aligned).
    pub fn top(&self) -> usize {
        self.base + self.len
    }

    /// The guard page's range.
    pub fn guard(&self) -> (usize, usize) {
        (self.base, self.base + self.guard)
    }

    /// Usable bytes.
    pub fn size(&self) -> usize {
        self.len - self.guard
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        crate::arch::valgrind_request(VG_STACK_DEREGISTER, self.valgrind_id, 0);
        // SAFETY: we own the mapping and nothing runs on it any more.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

const VG_STACK_REGISTER: usize = 0x1501;
const VG_STACK_DEREGISTER: usize = 0x1502;
