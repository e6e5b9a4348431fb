//! An architecture without its folder yet: processes, jobs, inspection and
//! debug events work; fibers are absent (the `fiber` module is not built),
//! register contexts are an error saying so, no floating-point reset is
//! made for new threads, and the debugger reports images at start only
//! (no breakpoints).
#![allow(unsafe_code)] // one unsafe fn, to match the real architectures' signature (it reads nothing)

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
