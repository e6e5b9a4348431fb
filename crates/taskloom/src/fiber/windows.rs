//! Fibers on Windows: each fiber is an OS fiber (`CreateFiberEx`,
//! `SwitchToFiber`, `DeleteFiber`), so the system keeps the thread's
//! stack bounds, exception chain and float state right across switches;
//! what `mod.rs` adds on top (checked references, starters, panics carried
//! across a switch, FLS with Rust destructors, pooling) is the same on both
//! systems.
//!
//! An OS fiber must not return from its start routine (that ends the
//! thread), so [`entry`] is a loop: when a fiber's function returns it
//! switches to its successor, and a record taken again from the pool
//! resumes it there with the next fiber's closure. A new fiber's starter is
//! written into its record by the switch that starts it.
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use std::ffi::c_void;
use std::io;
use std::ptr;

use windows_sys::Win32::Foundation::{ERROR_ALREADY_FIBER, GetLastError};
use windows_sys::Win32::System::Threading::{
    ConvertFiberToThread, ConvertThreadToFiberEx, CreateFiberEx, DeleteFiber, SwitchToFiber,
};

use super::{FiberError, Slot, fiber_body};

/// `FIBER_FLAG_FLOAT_SWITCH` (winbase.h).
const FIBER_FLAG_FLOAT_SWITCH: u32 = 1;

/// Fibers are the system's own here.
pub(super) const SUPPORTED: bool = true;

/// The function that runs a new fiber's life: `fiber_body::<F>`.
pub(super) type Start = fn(&'static Slot, &'static Slot) -> usize;

/// Nothing to set up: stack overflow is the system's.
pub(super) fn set_up_thread() {}

/// An OS fiber a record holds (its "stack"); deleted on drop. It is never
/// the running fiber when dropped: `mod.rs` drops a record's stack only
/// once its fiber finished or never started, or when the thread exits.
#[derive(Debug)]
pub(crate) struct Stack {
    fiber: usize,
    size: usize,
    float: bool,
}

impl Stack {
    /// The OS fiber: the context a new fiber of this record starts in.
    pub fn top(&self) -> usize {
        self.fiber
    }

    /// No guard range of ours: the system guards the stack.
    pub fn guard(&self) -> (usize, usize) {
        (0, 0)
    }

    /// The reserve it was created with (rounded as [`usable_size`] does).
    pub fn size(&self) -> usize {
        self.size
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own OS fiber, not running (see the type's docs).
        unsafe { DeleteFiber(self.fiber as *const c_void) };
    }
}

/// The reserve, rounded to the system's 64 KiB allocation granularity
/// (what `CreateFiberEx` reserves), to compare stacks for reuse.
#[inline]
pub(super) fn usable_size(reserve: usize) -> usize {
    reserve.div_ceil(1 << 16) << 16
}

/// Whether `slot`'s OS fiber can serve a new fiber: same reserve and the
/// same float switching (a property of the OS fiber here).
#[inline]
pub(super) fn stack_fits(slot: &Slot, want: usize, float: bool) -> bool {
    if slot.stack_size.get() != want {
        return false;
    }
    let st = slot.stack.take();
    let fits = st.as_ref().is_some_and(|s| s.float == float);
    slot.stack.set(st);
    fits
}

/// A new OS fiber for `slot`, starting in [`entry`].
pub(super) fn new_stack(
    slot: &'static Slot,
    reserve: usize,
    commit: usize,
    float: bool,
) -> io::Result<Stack> {
    let flags = if float { FIBER_FLAG_FLOAT_SWITCH } else { 0 };
    // SAFETY: `entry` matches LPFIBER_START_ROUTINE; its parameter is a
    // record, and records are never freed.
    let fiber = unsafe {
        CreateFiberEx(
            commit,
            reserve,
            flags,
            Some(entry),
            slot as *const Slot as *const c_void,
        )
    };
    if fiber.is_null() {
        return Err(io::Error::last_os_error());
    }
    Ok(Stack {
        fiber: fiber as usize,
        size: usable_size(reserve),
        float,
    })
}

/// Boxes `f` into the record and names the function that runs it; returns
/// the OS fiber the first switch resumes.
#[inline]
pub(super) fn place<F: FnOnce()>(slot: &'static Slot, f: F) -> usize {
    slot.closure.set(Box::into_raw(Box::new(f)).cast());
    slot.start.set(Some(fiber_body::<F>));
    slot.stack_top.get()
}

/// Moves the closure out of its box.
///
/// # Safety
/// `slot` must hold an `F` put there by [`place`] and not yet taken or dropped.
pub(super) unsafe fn take_closure<F>(slot: &Slot) -> F {
    let p = slot.closure.replace(ptr::null_mut()).cast::<F>();
    // SAFETY: per the contract, `p` came from `Box::into_raw` of a `Box<F>`.
    *unsafe { Box::from_raw(p) }
}

/// Drops the closure of a fiber that never started.
///
/// # Safety
/// `s` must hold a live, never-moved-out `F` put there by [`place`].
pub(super) unsafe fn drop_closure<F>(s: &Slot) {
    let p = s.closure.replace(ptr::null_mut()).cast::<F>();
    // SAFETY: per the contract, `p` came from `Box::into_raw` of a `Box<F>`.
    drop(unsafe { Box::from_raw(p) });
}

/// Every OS fiber's start routine: runs the life of each fiber its record
/// holds, one after another (see the module's docs).
unsafe extern "system" fn entry(param: *mut c_void) {
    // SAFETY: the record `new_stack` passed; records are never freed.
    let slot: &'static Slot = unsafe { &*(param as *const Slot) };
    loop {
        // Written by the switch that started this fiber (`switch`).
        let Some(starter) = super::slot_ref(slot.starter.get()) else {
            super::overflow_free_abort(b"taskloom: a fiber started with no starter; aborting\n")
        };
        let Some(start) = slot.start.take() else {
            super::overflow_free_abort(b"taskloom: a fiber started with nothing to run; aborting\n")
        };
        let to = start(slot, starter);
        // SAFETY: `to` is the OS fiber of the suspended fiber `finish` chose.
        unsafe { SwitchToFiber(to as *const c_void) };
        // Resumed: the record was taken from the pool for a new fiber.
    }
}

/// Suspends `cur` and resumes `target`, whose OS fiber is `to`; a target
/// that has not started learns here who started it.
///
/// # Safety
/// `to` must be the OS fiber of `target`, a suspended or new fiber of this
/// thread, and `cur` the running fiber's record.
#[inline]
pub(super) unsafe fn switch(cur: &Slot, target: &Slot, to: usize) {
    // A fiber that has not started still holds its closure's destructor.
    if target.drop_closure.get().is_some() {
        target.starter.set(cur);
    }
    if cur.float.get() {
        // `FIBER_FLAG_FLOAT_SWITCH` asks the system to do this; Wine does
        // not, so the fiber keeps its own rounding and exception masks
        // itself, as the Linux switch does.
        let saved = float_state();
        // SAFETY: per the contract; the thread is a fiber (it has a running one).
        unsafe { SwitchToFiber(to as *const c_void) };
        set_float_state(saved);
    } else {
        // SAFETY: as above.
        unsafe { SwitchToFiber(to as *const c_void) };
    }
}

/// MXCSR and the x87 control word.
fn float_state() -> (u32, u16) {
    let mut mxcsr = 0u32;
    let mut cw = 0u16;
    // SAFETY: each stores into its own local.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut mxcsr, options(nostack));
        std::arch::asm!("fnstcw [{}]", in(reg) &mut cw, options(nostack));
    }
    (mxcsr, cw)
}

fn set_float_state((mxcsr, cw): (u32, u16)) {
    // SAFETY: values this thread's fiber had before it switched away.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &mxcsr, options(nostack));
        std::arch::asm!("fldcw [{}]", in(reg) &cw, options(nostack));
    }
}

/// `ConvertThreadToFiberEx`: the thread's OS fiber becomes the record's context.
pub(super) fn convert(home: &Slot, float: bool) -> Result<(), FiberError> {
    let flags = if float { FIBER_FLAG_FLOAT_SWITCH } else { 0 };
    // SAFETY: no pointer arguments but the (unused) fiber data.
    let fiber = unsafe { ConvertThreadToFiberEx(ptr::null(), flags) };
    if fiber.is_null() {
        // SAFETY: reads this thread's last error.
        return Err(match unsafe { GetLastError() } {
            ERROR_ALREADY_FIBER => FiberError::AlreadyFiber,
            code => FiberError::Os(code as i32),
        });
    }
    home.sp.set(fiber as usize);
    Ok(())
}

/// `ConvertFiberToThread`.
pub(super) fn convert_back() {
    // SAFETY: called on the thread's own fiber, which `convert` made.
    unsafe { ConvertFiberToThread() };
}

/// Writes `msg` to standard error and aborts.
pub(super) fn abort(msg: &[u8]) -> ! {
    use std::io::Write;
    let _ = std::io::stderr().write_all(msg);
    std::process::abort()
}
