//! The unsafe half of threads: the start trampoline, futexes, the suspend
//! signal handler, and ptrace for another process's threads.
//!
//! Suspension (`SuspendThread`) sends the target a real-time signal
//! (`SIGRTMIN + 6`) with a pointer to a request record in the signal's
//! value (`rt_tgsigqueueinfo`). The handler copies the interrupted
//! registers from its `ucontext` into the record, marks it parked, wakes
//! the suspender and sleeps on a futex until the record says resumed. The
//! handler touches only that record and makes only futex syscalls, so it is
//! async-signal-safe; it uses no lock and no thread-local.
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};

/// The signal that parks a thread.
pub(crate) fn suspend_signal() -> i32 {
    libc::SIGRTMIN() + 6
}

/// `futex(FUTEX_WAIT_PRIVATE)` while `*word == expected`, at most `timeout`.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<std::time::Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs() as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live atomic; the kernel reads it and may sleep.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            tsp,
        );
    }
}

/// Wakes every waiter on `word`.
pub(crate) fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a live atomic.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

/// The calling thread's id.
pub(crate) fn gettid() -> i32 {
    // SAFETY: no arguments.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

pub use crate::arch::ThreadContext;

/// States of a suspend request (its futex word).
pub(crate) const REQUESTED: u32 = 0;
pub(crate) const PARKED: u32 = 1;
pub(crate) const RESUMED: u32 = 2;

/// The suspension record of one thread, shared by suspenders and its handler.
/// Records are leaked and reused for the same thread id, never freed: the
/// handler may still read one after the resumer has let it go.
#[derive(Debug)]
pub(crate) struct Request {
    /// The thread this record belongs to (never changes).
    pub tid: i32,
    pub state: AtomicU32,
    pub context: std::cell::UnsafeCell<ThreadContext>,
    /// `SetThreadContext` wrote `context` while the thread was parked: the
    /// handler loads it into the signal frame before returning.
    pub replace: std::sync::atomic::AtomicBool,
    /// The next record in [`RECORDS`].
    next: std::sync::atomic::AtomicPtr<Request>,
}

/// Every suspension record ever made, a lock-free list the signal handler
/// walks to find its own thread's (records are leaked, never freed): the
/// handler trusts no pointer that arrives with the signal.
static RECORDS: std::sync::atomic::AtomicPtr<Request> =
    std::sync::atomic::AtomicPtr::new(ptr::null_mut());

/// The (leaked) record of thread `tid`, made and listed for the handler.
pub(crate) fn new_record(tid: i32) -> &'static Request {
    let rec: &'static Request = Box::leak(Box::new(Request {
        tid,
        state: AtomicU32::new(RESUMED),
        context: Default::default(),
        replace: std::sync::atomic::AtomicBool::new(false),
        next: std::sync::atomic::AtomicPtr::new(ptr::null_mut()),
    }));
    let mut head = RECORDS.load(Ordering::Acquire);
    loop {
        rec.next.store(head, Ordering::Relaxed);
        match RECORDS.compare_exchange_weak(
            head,
            rec as *const Request as *mut Request,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return rec,
            Err(now) => head = now,
        }
    }
}

/// The record of thread `tid` with a suspension requested, if any
/// (async-signal-safe: atomic loads only).
fn requested_record(tid: i32) -> Option<&'static Request> {
    let mut at = RECORDS.load(Ordering::Acquire);
    while !at.is_null() {
        // SAFETY: every pointer in the list is a leaked, never-freed record.
        let rec: &'static Request = unsafe { &*at };
        if rec.tid == tid && rec.state.load(Ordering::Acquire) == REQUESTED {
            return Some(rec);
        }
        at = rec.next.load(Ordering::Acquire);
    }
    None
}

// SAFETY: `context` is written only by the parked thread's handler before it
// publishes PARKED (Release), and read only after PARKED is observed (Acquire).
unsafe impl Sync for Request {}

static INSTALL: std::sync::Once = std::sync::Once::new();

static INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Installs the suspend handler, unless the application has a handler of
/// its own for the signal: that one is never replaced (an error instead).
pub(crate) fn install_handler() -> io::Result<()> {
    INSTALL.call_once(|| {
        // SAFETY: querying, then installing, a SA_SIGINFO handler with zeroed,
        // filled-in sigaction structures.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(suspend_signal(), ptr::null(), &mut old);
            if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN {
                return;
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_suspend as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(suspend_signal(), &sa, ptr::null_mut()) == 0 {
                INSTALLED.store(true, Ordering::Release);
            }
        }
    });
    if INSTALLED.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "the application has its own handler for SIGRTMIN+6, which SuspendThread needs",
        ))
    }
}

/// Whether thread `tid` of this process still exists (`tgkill(.., 0)`).
pub(crate) fn thread_alive(tid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, 0) == 0 }
}

/// Sends the suspend signal to thread `tid` of this process. The request
/// pointer rides along in `si_value` for debuggers only: the handler finds
/// its record by thread id and reads nothing from the signal.
pub(crate) fn send_suspend(tid: i32, req: &Request) -> io::Result<()> {
    // SAFETY: a zeroed siginfo filled for SI_QUEUE with our pid/uid and the request pointer.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let raw = &mut info as *mut libc::siginfo_t as *mut u8;
        // siginfo_t layout (x86_64): si_signo, si_errno, si_code (3 ints), pad, then
        // the union: for SI_QUEUE { si_pid: i32, si_uid: u32, si_value: sigval } at offset 16.
        *(raw as *mut i32) = suspend_signal();
        *(raw.add(8) as *mut i32) = libc::SI_QUEUE;
        *(raw.add(16) as *mut i32) = libc::getpid();
        *(raw.add(20) as *mut u32) = libc::getuid();
        *(raw.add(24) as *mut usize) = req as *const Request as usize;
        if libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            libc::getpid(),
            tid,
            suspend_signal(),
            &info,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn on_suspend(_sig: i32, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // Only a suspension requested for this very thread parks it: the record
    // is found by thread id, and whatever came with the signal (any sender
    // may queue it, with any value) is not looked at.
    let Some(req) = requested_record(gettid()) else {
        return;
    };
    // SAFETY: the kernel passes a valid ucontext; the record is leaked, never freed.
    unsafe {
        *req.context.get() = crate::arch::context_from_ucontext(ctx);
        let errno = *libc::__errno_location();
        // Only from REQUESTED: a resume that came first (RESUMED) wins, and
        // the thread goes on without parking.
        if req
            .state
            .compare_exchange(REQUESTED, PARKED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        futex_wake(&req.state);
        // Any change from PARKED releases us (a new suspension may already have
        // set REQUESTED again; its signal is delivered once this handler returns).
        while req.state.load(Ordering::Acquire) == PARKED {
            futex_wait(&req.state, PARKED, None);
        }
        // A context set while parked is where the thread goes on: the kernel
        // restores the registers from this frame when the handler returns.
        if req.replace.swap(false, Ordering::Acquire) {
            crate::arch::write_ucontext(ctx, &*req.context.get());
        }
        *libc::__errno_location() = errno;
    }
}

/// Reads the registers of thread `tid` of another process (read-only):
/// seize, interrupt, read, detach. Needs ptrace permission over it.
pub(crate) fn remote_context(tid: i32) -> io::Result<ThreadContext> {
    // SAFETY: ptrace requests on `tid` with valid out-pointers; we always detach.
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, tid, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        let detach = || {
            libc::ptrace(libc::PTRACE_DETACH, tid, 0, 0);
        };
        if libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0) != 0 {
            let e = io::Error::last_os_error();
            detach();
            return Err(e);
        }
        let mut status = 0;
        if libc::waitpid(tid, &mut status, libc::__WALL) < 0 {
            let e = io::Error::last_os_error();
            detach();
            return Err(e);
        }
        let regs = crate::arch::read_regs(tid);
        detach();
        regs
    }
}

use crate::arch::default_float_environment;

/// What the new thread needs; boxed by the creator, freed by the thread.
pub(crate) struct Start {
    pub run: Box<dyn FnOnce() + Send>,
}

/// Starts a pthread with `stack` bytes of stack running `start`; returns the pthread_t.
pub(crate) fn spawn(stack: usize, start: Box<Start>) -> io::Result<libc::pthread_t> {
    extern "C" fn trampoline(arg: *mut libc::c_void) -> *mut libc::c_void {
        default_float_environment();
        // SAFETY: `arg` is the Box<Start> leaked by `spawn`, taken back exactly once.
        let start = unsafe { Box::from_raw(arg as *mut Start) };
        (start.run)();
        ptr::null_mut()
    }
    // SAFETY: attr is initialised before use and destroyed after; `start` is
    // leaked into the thread, or taken back if pthread_create fails.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
        let size = stack.max(libc::PTHREAD_STACK_MIN).div_ceil(page) * page;
        libc::pthread_attr_setstacksize(&mut attr, size);
        let mut thread: libc::pthread_t = 0;
        let arg = Box::into_raw(start);
        let r = libc::pthread_create(&mut thread, &attr, trampoline, arg as *mut libc::c_void);
        libc::pthread_attr_destroy(&mut attr);
        if r != 0 {
            drop(Box::from_raw(arg));
            return Err(io::Error::from_raw_os_error(r));
        }
        Ok(thread)
    }
}

/// `pthread_join`.
pub(crate) fn join(thread: libc::pthread_t) {
    // SAFETY: joining a joinable thread we created, once.
    unsafe { libc::pthread_join(thread, ptr::null_mut()) };
}

/// `pthread_detach`.
pub(crate) fn detach(thread: libc::pthread_t) {
    // SAFETY: detaching a joinable thread we created, once.
    unsafe { libc::pthread_detach(thread) };
}

/// User and kernel time of the calling thread (`RUSAGE_THREAD`).
pub(crate) fn own_times() -> (std::time::Duration, std::time::Duration) {
    // SAFETY: getrusage fills the struct.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
        let tv =
            |t: libc::timeval| std::time::Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        (tv(ru.ru_utime), tv(ru.ru_stime))
    }
}

/// The calling thread's stack as (lowest address, highest address), from
/// `pthread_getattr_np` (for the main thread, glibc works it out from the
/// stack rlimit and `/proc/self/maps`).
pub(crate) fn own_stack() -> Option<(usize, usize)> {
    // SAFETY: pthread_getattr_np fills an attr we own and destroy; the two
    // out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = ptr::null_mut();
        let mut size: usize = 0;
        let r = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (r == 0).then(|| (addr as usize, addr as usize + size))
    }
}

/// Pre-faults the top `commit` bytes of the calling thread's stack.
pub(crate) fn commit_own_stack(commit: usize) {
    // SAFETY: pthread_getattr_np describes our own stack; madvise on part of it.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return;
        }
        let mut addr: *mut libc::c_void = ptr::null_mut();
        let mut size: usize = 0;
        libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
        let commit = commit.min(size).div_ceil(page) * page;
        let top = addr as usize + size;
        libc::madvise(
            (top - commit) as *mut libc::c_void,
            commit,
            libc::MADV_POPULATE_WRITE,
        );
    }
}
