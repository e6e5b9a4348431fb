//! An architecture without its folder yet: processes, jobs, inspection and
//! debug events work; fibers cannot be made (`Unsupported`: the `fiber`
//! module is built, its switch below is never reached),
//! register contexts are an error saying so, no floating-point reset is
//! made for new threads, and the debugger reports images at start only
//! (no breakpoints).
#![allow(unsafe_code)] // unsafe fns to match the real architectures' signatures, and glibc's clone for a spawn

use std::ffi::c_void;
use std::io;

/// Registers of a thread: none on this architecture yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ThreadContext {}

impl ThreadContext {
    /// The registers by name: none on this architecture yet.
    pub fn registers(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// No registers on this architecture.
///
/// # Safety
/// None needed: nothing is read.
pub(crate) unsafe fn context_from_ucontext(_ctx: *const libc::c_void) -> ThreadContext {
    ThreadContext {}
}

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "thread register contexts are not written for {} yet (only x86_64)",
            std::env::consts::ARCH
        ),
    )
}

/// Nothing to write on this architecture.
///
/// # Safety
/// None needed: nothing is written.
pub(crate) unsafe fn write_ucontext(_ctx: *mut libc::c_void, _regs: &ThreadContext) {}

pub(crate) fn read_regs(_tid: i32) -> io::Result<ThreadContext> {
    Err(unsupported())
}

pub(crate) fn write_regs(_tid: i32, _regs: &ThreadContext) -> io::Result<()> {
    Err(unsupported())
}

pub(crate) fn default_float_environment() {}

pub(crate) const BREAKPOINT: Option<u8> = None;

pub(crate) fn breakpoint_address(_tid: i32) -> Option<u64> {
    None
}

pub(crate) fn set_pc(_tid: i32, _pc: u64) -> Option<()> {
    None
}

/// Whether the kernel resets a spawned child's caught signals: glibc's
/// `clone` cannot pass `CLONE_CLEAR_SIGHAND`, so the child asks about
/// every signal itself.
pub(crate) const KERNEL_CLEARS_HANDLERS: bool = false;
/// Whether a spawn can be placed with `CLONE_INTO_CGROUP`: not through
/// glibc's `clone`; the child writes `cgroup.procs` instead.
pub(crate) const CLONE_INTO_CGROUP_WORKS: bool = false;

/// Portable fallback: glibc's `clone` (no CLONE_INTO_CGROUP there).
///
/// # Safety
/// As for the x86_64 version.
pub(crate) unsafe fn clone_raw(
    args: &mut super::CloneArgs,
    entry: extern "C" fn(*mut c_void) -> !,
    arg: *mut c_void,
) -> isize {
    struct Start {
        entry: extern "C" fn(*mut c_void) -> !,
        arg: *mut c_void,
    }
    extern "C" fn trampoline(start: *mut c_void) -> libc::c_int {
        // SAFETY: `start` is the `Start` below, alive until the child execs or exits.
        let start = unsafe { &*(start as *const Start) };
        (start.entry)(start.arg)
    }
    if args.flags & super::CLONE_INTO_CGROUP != 0 {
        return -(libc::ENOSYS as isize);
    }
    let mut start = Start { entry, arg };
    let top = (args.stack + args.stack_size) as *mut c_void;
    // SAFETY: per the caller's contract; CLONE_PIDFD stores the pidfd through
    // parent_tid. `start` lives in this frame, and the caller keeps us here
    // (vfork, or a wait) until the child is done with it.
    let r = unsafe {
        libc::clone(
            trampoline,
            top,
            args.flags as libc::c_int | args.exit_signal as libc::c_int,
            &mut start as *mut Start as *mut c_void,
            args.pidfd as *mut libc::c_int,
        )
    };
    if r < 0 {
        -(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL) as isize)
    } else {
        r as isize
    }
}

/// Fibers on an architecture without its context switch: none can be made
/// (`FiberBuilder::spawn` and `convert_thread_to_fiber` say `Unsupported`
/// first), so nothing here is ever reached; each aborts if it were.
pub(crate) mod fiber {
    /// No context switch is written for this architecture.
    pub const SUPPORTED: bool = false;

    /// Never called: no fiber exists here.
    ///
    /// # Safety
    /// None needed: it only aborts.
    pub unsafe fn switch(_save: *mut usize, _to: usize) {
        std::process::abort()
    }

    /// Never called: no fiber exists here.
    ///
    /// # Safety
    /// None needed: it only aborts.
    pub unsafe fn switch_float(_save: *mut usize, _to: usize) {
        std::process::abort()
    }

    /// Never called: no fiber exists here.
    ///
    /// # Safety
    /// None needed: it only aborts.
    pub unsafe fn jump(_to: usize) -> ! {
        std::process::abort()
    }

    /// Never called: no fiber exists here.
    ///
    /// # Safety
    /// None needed: it only aborts.
    pub unsafe fn init_stack(
        _top: usize,
        _main: extern "C" fn(usize, usize) -> !,
        _arg: usize,
    ) -> usize {
        std::process::abort()
    }
}

/// Valgrind's client requests need their magic instruction sequence, not
/// written for this architecture: every request answers the default a
/// program not under Valgrind gets (0).
pub(crate) fn valgrind_request(_request: usize, _a1: usize, _a2: usize) -> usize {
    0
}
