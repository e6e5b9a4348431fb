//! Fibers on Linux: stacks of our own (`stack.rs`, mapped with a guard
//! page; `overflow.rs` names the fiber that hits it), each new fiber's
//! closure at the top of its stack, and the context switch in `arch/`.
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use std::io;
use std::ptr;

use super::{Slot, fiber_body};
use crate::arch::fiber as arch;

pub(super) use super::stack::{Stack, usable_size};

/// Fibers switch on this architecture.
pub(super) const SUPPORTED: bool = arch::SUPPORTED;

/// A thread's first use of fibers: the overflow handler and its alternate stack.
pub(super) fn set_up_thread() {
    super::overflow::install();
}

/// Whether the stack `slot` holds can serve a new fiber of `want` usable
/// bytes (float switching is the switch site's business here, not the stack's).
#[inline(always)]
pub(super) fn stack_fits(slot: &Slot, want: usize, _float: bool) -> bool {
    slot.stack_size.get() == want
}

/// A new stack for `slot`.
pub(super) fn new_stack(
    _slot: &'static Slot,
    reserve: usize,
    commit: usize,
    _float: bool,
) -> io::Result<Stack> {
    Stack::new(reserve, commit)
}

/// Where a fiber's closure of type `F` lies, below the top of its stack.
#[inline(always)]
fn closure_addr<F>(top: usize) -> usize {
    let align = std::mem::align_of::<F>().max(16);
    (top - std::mem::size_of::<F>()) & !(align - 1)
}

/// Puts `f` at the top of `slot`'s stack and prepares the stack's first
/// frame to run it; returns the stack pointer the first switch resumes.
#[inline(always)]
pub(super) fn place<F: FnOnce()>(slot: &'static Slot, f: F) -> usize {
    let closure = closure_addr::<F>(slot.stack_top.get());
    // SAFETY: `closure` is aligned for F and lies in the fiber's own stack,
    // which nothing runs on until the first switch.
    unsafe { ptr::write(closure as *mut F, f) };
    // SAFETY: the 40 bytes below `closure` are in the same stack.
    unsafe { arch::init_stack(closure & !15, fiber_main::<F>, slot as *const Slot as usize) }
}

/// Moves the closure out of the stack.
///
/// # Safety
/// `slot` must hold an `F` put there by [`place`] and not yet taken or dropped.
#[inline(always)]
pub(super) unsafe fn take_closure<F>(slot: &Slot) -> F {
    // SAFETY: per the contract.
    unsafe { ptr::read(closure_addr::<F>(slot.stack_top.get()) as *mut F) }
}

/// Drops the closure of a fiber that never started.
///
/// # Safety
/// `s` must hold a live, never-moved-out `F` put there by [`place`].
pub(super) unsafe fn drop_closure<F>(s: &Slot) {
    // SAFETY: per the contract, at the address `place` wrote it to.
    unsafe { ptr::drop_in_place(closure_addr::<F>(s.stack_top.get()) as *mut F) }
}

/// The fiber's first Rust frame (`init_stack` points the first switch at
/// it): runs the fiber's life, then leaves for good. `starter` is the
/// record whose `sp` the starting switch saved to.
extern "C" fn fiber_main<F: FnOnce()>(arg: usize, starter: usize) -> ! {
    // SAFETY: `arg` is the record `place` passed; records are never freed.
    let slot: &'static Slot = unsafe { &*(arg as *const Slot) };
    // SAFETY: `starter` is the record whose `sp` the starting switch saved to
    // (`sp` is the record's first field); records are never freed.
    let starter: &'static Slot = unsafe { &*(starter as *const Slot) };
    let to = fiber_body::<F>(slot, starter);
    // SAFETY: `to` was saved by the target's own switch; this stack is never resumed.
    unsafe { arch::jump(to) }
}

/// Suspends `cur` and resumes the context `to`.
///
/// # Safety
/// `to` must be the saved context of `target`, a suspended or new fiber of
/// this thread, and `cur` the running fiber's record. (The new fiber learns
/// its starter from the register the switch leaves it in.)
#[inline(always)]
pub(super) unsafe fn switch(cur: &Slot, _target: &Slot, to: usize) {
    // SAFETY: per the contract; `cur.sp` is the running fiber's own slot.
    unsafe {
        if cur.float.get() {
            std::hint::cold_path();
            arch::switch_float(cur.sp.as_ptr(), to);
        } else {
            arch::switch(cur.sp.as_ptr(), to);
        }
    }
}

/// `ConvertThreadToFiberEx`: nothing for the system to do here (the thread's
/// context is saved by its first switch away).
pub(super) fn convert(_home: &Slot, _float: bool) -> Result<(), super::FiberError> {
    Ok(())
}

/// `ConvertFiberToThread`: nothing for the system to do here.
pub(super) fn convert_back() {}

/// Writes `msg` to standard error and aborts, using no stack to speak of
/// and no allocation (it may run on a fiber with no stack left).
pub(super) fn abort(msg: &[u8]) -> ! {
    // SAFETY: write to stderr, then abort.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::abort()
    }
}
