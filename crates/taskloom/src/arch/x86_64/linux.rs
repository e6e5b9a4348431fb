//! x86_64 on Linux: the fiber switch, register contexts from a `ucontext`
//! or ptrace, the floating-point defaults of a new thread, Valgrind's
//! client requests, the software breakpoint and the raw `clone3` a spawn
//! starts its child with. Each function here is what another
//! architecture's folder must provide (see `arch/mod.rs`).
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use super::ThreadContext;

use std::ffi::c_void;
use std::io;

impl ThreadContext {
    /// The registers a signal handler's `ucontext` saved.
    fn from_gregs(g: &[libc::greg_t]) -> ThreadContext {
        ThreadContext {
            rip: g[libc::REG_RIP as usize] as u64,
            rsp: g[libc::REG_RSP as usize] as u64,
            rbp: g[libc::REG_RBP as usize] as u64,
            rax: g[libc::REG_RAX as usize] as u64,
            rbx: g[libc::REG_RBX as usize] as u64,
            rcx: g[libc::REG_RCX as usize] as u64,
            rdx: g[libc::REG_RDX as usize] as u64,
            rsi: g[libc::REG_RSI as usize] as u64,
            rdi: g[libc::REG_RDI as usize] as u64,
            r8: g[libc::REG_R8 as usize] as u64,
            r9: g[libc::REG_R9 as usize] as u64,
            r10: g[libc::REG_R10 as usize] as u64,
            r11: g[libc::REG_R11 as usize] as u64,
            r12: g[libc::REG_R12 as usize] as u64,
            r13: g[libc::REG_R13 as usize] as u64,
            r14: g[libc::REG_R14 as usize] as u64,
            r15: g[libc::REG_R15 as usize] as u64,
            rflags: g[libc::REG_EFL as usize] as u64,
        }
    }
}

/// The registers saved in a signal handler's context.
///
/// # Safety
/// `ctx` must be the `ucontext_t` pointer the kernel passed to an
/// `SA_SIGINFO` handler that is still running.
pub(crate) unsafe fn context_from_ucontext(ctx: *const libc::c_void) -> ThreadContext {
    // SAFETY: the caller passes the kernel's live ucontext.
    let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
    ThreadContext::from_gregs(&uc.uc_mcontext.gregs)
}

/// Writes `regs` into a signal handler's saved context, so the thread goes
/// on with them when the handler returns (`SetThreadContext`).
///
/// # Safety
/// `ctx` must be the `ucontext_t` pointer the kernel passed to an
/// `SA_SIGINFO` handler that is still running, on the calling thread.
pub(crate) unsafe fn write_ucontext(ctx: *mut libc::c_void, regs: &ThreadContext) {
    // SAFETY: the caller passes the kernel's live ucontext of this handler.
    let uc = unsafe { &mut *(ctx as *mut libc::ucontext_t) };
    let g = &mut uc.uc_mcontext.gregs;
    let set = [
        (libc::REG_RIP, regs.rip),
        (libc::REG_RSP, regs.rsp),
        (libc::REG_RBP, regs.rbp),
        (libc::REG_RAX, regs.rax),
        (libc::REG_RBX, regs.rbx),
        (libc::REG_RCX, regs.rcx),
        (libc::REG_RDX, regs.rdx),
        (libc::REG_RSI, regs.rsi),
        (libc::REG_RDI, regs.rdi),
        (libc::REG_R8, regs.r8),
        (libc::REG_R9, regs.r9),
        (libc::REG_R10, regs.r10),
        (libc::REG_R11, regs.r11),
        (libc::REG_R12, regs.r12),
        (libc::REG_R13, regs.r13),
        (libc::REG_R14, regs.r14),
        (libc::REG_R15, regs.r15),
        (libc::REG_EFL, regs.rflags),
    ];
    for (r, v) in set {
        g[r as usize] = v as libc::greg_t;
    }
}

/// The registers of `tid`, stopped under this thread's ptrace (`PTRACE_GETREGS`).
pub(crate) fn read_regs(tid: i32) -> io::Result<ThreadContext> {
    // SAFETY: PTRACE_GETREGS fills a user_regs_struct we own.
    let regs = unsafe {
        let mut regs: libc::user_regs_struct = std::mem::zeroed();
        let r = libc::ptrace(
            libc::PTRACE_GETREGS,
            tid,
            0,
            &mut regs as *mut libc::user_regs_struct,
        );
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        regs
    };
    Ok(ThreadContext {
        rip: regs.rip,
        rsp: regs.rsp,
        rbp: regs.rbp,
        rax: regs.rax,
        rbx: regs.rbx,
        rcx: regs.rcx,
        rdx: regs.rdx,
        rsi: regs.rsi,
        rdi: regs.rdi,
        r8: regs.r8,
        r9: regs.r9,
        r10: regs.r10,
        r11: regs.r11,
        r12: regs.r12,
        r13: regs.r13,
        r14: regs.r14,
        r15: regs.r15,
        rflags: regs.eflags,
    })
}

/// Loads `regs` into `tid` (stopped under this thread's ptrace): the
/// general registers and flags; segment and FS/GS bases stay as they are.
pub(crate) fn write_regs(tid: i32, regs: &ThreadContext) -> io::Result<()> {
    let pid = nix::unistd::Pid::from_raw(tid);
    let mut r = nix::sys::ptrace::getregs(pid).map_err(io::Error::from)?;
    if r.rip != regs.rip {
        // Moved elsewhere: not back into a system call it was stopped in
        // (the kernel would rewind the new pc to restart it), as gdb does.
        r.orig_rax = u64::MAX;
    }
    r.rip = regs.rip;
    r.rsp = regs.rsp;
    r.rbp = regs.rbp;
    r.rax = regs.rax;
    r.rbx = regs.rbx;
    r.rcx = regs.rcx;
    r.rdx = regs.rdx;
    r.rsi = regs.rsi;
    r.rdi = regs.rdi;
    r.r8 = regs.r8;
    r.r9 = regs.r9;
    r.r10 = regs.r10;
    r.r11 = regs.r11;
    r.r12 = regs.r12;
    r.r13 = regs.r13;
    r.r14 = regs.r14;
    r.r15 = regs.r15;
    r.eflags = regs.rflags;
    nix::sys::ptrace::setregs(pid, r).map_err(io::Error::from)
}

/// A new thread starts with the default floating-point environment, as on
/// Windows, whatever its creator set (pthreads copy the creator's): SSE
/// control and status MXCSR 0x1f80 (round to nearest, every exception
/// masked, no flush-to-zero), x87 control word 0x37f.
pub(crate) fn default_float_environment() {
    let (mxcsr, fpucw): (u32, u16) = (0x1f80, 0x037f);
    // SAFETY: loads the two control registers from valid stack memory; only
    // this thread's floating-point modes change, before any of its code runs.
    unsafe {
        std::arch::asm!(
            "ldmxcsr [{m}]",
            "fldcw [{c}]",
            m = in(reg) &mxcsr,
            c = in(reg) &fpucw,
            options(nostack, readonly),
        );
    }
}

/// A Valgrind client request (`VALGRIND_STACK_REGISTER` and friends), so
/// memcheck knows fiber stacks and does not report every switch. Outside
/// Valgrind the magic sequence does nothing and returns 0.
pub(crate) fn valgrind_request(request: usize, a1: usize, a2: usize) -> usize {
    let args: [usize; 6] = [request, a1, a2, 0, 0, 0];
    let mut result: usize = 0;
    // SAFETY: the rotations of rdi add up to 128 bits (no change) and
    // `xchg rbx, rbx` is a no-op; Valgrind recognises the sequence and reads `args`.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            out("rdi") _,
            options(nostack),
        );
    }
    result
}

/// The software breakpoint instruction (`int3`).
pub(crate) const BREAKPOINT: Option<u8> = Some(0xcc);

/// After a breakpoint trap of `tid` (stopped under ptrace): the address
/// of the breakpoint it hit (the program counter is one past it).
pub(crate) fn breakpoint_address(tid: i32) -> Option<u64> {
    let regs = nix::sys::ptrace::getregs(nix::unistd::Pid::from_raw(tid)).ok()?;
    Some(regs.rip.wrapping_sub(1))
}

/// Sets the program counter of `tid` (stopped under ptrace).
pub(crate) fn set_pc(tid: i32, pc: u64) -> Option<()> {
    let pid = nix::unistd::Pid::from_raw(tid);
    let mut regs = nix::sys::ptrace::getregs(pid).ok()?;
    regs.rip = pc;
    nix::sys::ptrace::setregs(pid, regs).ok()
}

/// Whether the kernel resets a spawned child's caught signals: the raw
/// `clone3` below passes `CLONE_CLEAR_SIGHAND`.
pub(crate) const KERNEL_CLEARS_HANDLERS: bool = true;
/// Whether a spawn can be placed with `CLONE_INTO_CGROUP` (raw `clone3`).
pub(crate) const CLONE_INTO_CGROUP_WORKS: bool = true;

/// `clone3` into `entry` on the stack that `args` describes.
///
/// # Safety
/// `args.stack`/`args.stack_size` must describe writable memory that stays
/// valid until the child execs or exits, `args.flags` must include
/// `CLONE_VM`, `entry` must never return and touch only what `arg` points
/// to (through raw syscalls: it shares this process's memory), and `arg`
/// must stay valid until the child execs or exits.
pub(crate) unsafe fn clone_raw(
    args: &mut crate::arch::CloneArgs,
    entry: extern "C" fn(*mut c_void) -> !,
    arg: *mut c_void,
) -> isize {
    let ret: isize;
    // SAFETY: the caller upholds the contract above. In the child, rax is 0 and
    // rsp is the top of the new stack (16-byte aligned, so `call` leaves the
    // ABI's alignment); r12/r13 survive the syscall and carry the argument and
    // entry point. `entry` never returns (`ud2` guards it).
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") args as *mut crate::arch::CloneArgs,
            in("rsi") std::mem::size_of::<crate::arch::CloneArgs>(),
            in("r12") arg,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
