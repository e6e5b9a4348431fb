//! The x86_64 context switch: the only code that moves between fiber stacks.
//!
//! A suspended fiber's stack, from its saved stack pointer up:
//!
//! ```text
//!   saved sp -> +0   resume address (the label right after its switch)
//!               +8   (float-switch only) MXCSR at +8, x87 control word at +12
//!               ...  rbx, rbp pushed by the switch site
//!               ...  the suspended function's own frame
//! ```
//!
//! A new fiber's stack, prepared by `init_stack`:
//!
//! ```text
//!   sp -> +0   fiber_start       (popped and jumped to by the first switch)
//!         +8   main fn pointer   (popped into rax by fiber_start)
//!         +16  main's argument   (popped into rdi; the switch's save
//!              pointer, still in rdi, moves to rsi: main's second argument)
//!         +24  (not written)     (rsp = sp+24 at fiber_start's call: 16-byte aligned)
//!   ...        the entry closure, at the top of the stack
//! ```
//!
//! The switch is inline asm at each call site, so the compiler saves only the
//! registers that are live across it (every register but rbx and rbp is
//! declared clobbered; those two cannot be, so the site pushes them). Each
//! site restores exactly what it saved, so float-switch and plain sites mix
//! freely. `fiber_start` marks the outermost frame (`.cfi_undefined rip`):
//! debuggers and `perf` stop the backtrace there, at the fiber's entry.
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use std::arch::{asm, naked_asm};

/// Fibers switch on this architecture.
pub const SUPPORTED: bool = true;

/// Saves the current context, stores its stack pointer in `*save`, and
/// resumes the context whose saved stack pointer is `to`. `save` is still in
/// rdi when that context resumes: a new fiber's `fiber_start` takes it as
/// the record of the fiber that started it.
///
/// # Safety
/// `to` must be a stack pointer saved by this module (or made by
/// `init_stack`) of a context that is not running, and `save` must be valid
/// for a write.
#[inline(always)]
pub unsafe fn switch(save: *mut usize, to: usize) {
    // SAFETY: per the contract; every register the resumed context may change
    // is either clobbered here or pushed and popped by this very site.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax",
            "mov [rdi], rsp",
            "mov rsp, rsi",
            "pop rax",
            "jmp rax",
            "2:",
            "pop rbx",
            "pop rbp",
            inout("rdi") save => _,
            inout("rsi") to => _,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
            clobber_abi("C"),
        );
    }
}

/// As [`switch`], also saving and restoring MXCSR and the x87 control word
/// (`FIBER_FLAG_FLOAT_SWITCH`).
///
/// # Safety
/// As for [`switch`].
#[inline(always)]
pub unsafe fn switch_float(save: *mut usize, to: usize) {
    // SAFETY: as for `switch`; the 8 bytes below the resume address hold the
    // floating-point control state of this site and are popped by it.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "sub rsp, 8",
            "stmxcsr [rsp]",
            "fnstcw [rsp + 4]",
            "lea rax, [rip + 2f]",
            "push rax",
            "mov [rdi], rsp",
            "mov rsp, rsi",
            "pop rax",
            "jmp rax",
            "2:",
            "ldmxcsr [rsp]",
            "fldcw [rsp + 4]",
            "add rsp, 8",
            "pop rbx",
            "pop rbp",
            inout("rdi") save => _,
            inout("rsi") to => _,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
            clobber_abi("C"),
        );
    }
}

/// Resumes `to` without saving the current context (a finished fiber leaves).
///
/// # Safety
/// As for [`switch`]; the current stack must never be resumed again.
#[inline(always)]
pub unsafe fn jump(to: usize) -> ! {
    // SAFETY: per the contract.
    unsafe { asm!("mov rsp, {0}", "pop rax", "jmp rax", in(reg) to, options(noreturn)) }
}

/// Lays out a new fiber's first frame below `top` (16-byte aligned) and
/// returns its initial stack pointer.
///
/// # Safety
/// `top - 40 .. top` must be writable memory of the new fiber's stack.
pub unsafe fn init_stack(top: usize, main: extern "C" fn(usize, usize) -> !, arg: usize) -> usize {
    debug_assert_eq!(top % 16, 0);
    // The first switch pops fiber_start (rsp = sp+8), fiber_start pops two
    // more words (rsp = sp+24), which must be 16-byte aligned at its `call`.
    let sp = top - 40;
    let words = sp as *mut usize;
    // SAFETY: the three words lie in the caller-guaranteed range.
    unsafe {
        words.write(fiber_start as *const () as usize);
        words.add(1).write(main as usize);
        words.add(2).write(arg);
    }
    sp
}

/// The first code a fiber runs: pops its main function and argument, calls
/// it with the starting switch's save pointer (still in rdi) as the second
/// argument.
#[unsafe(naked)]
unsafe extern "C" fn fiber_start() -> ! {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_undefined rip",
        "mov rsi, rdi",
        "pop rax",
        "pop rdi",
        "xor ebp, ebp",
        "call rax",
        "ud2",
        ".cfi_endproc",
    )
}
