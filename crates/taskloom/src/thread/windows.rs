//! Threads on Windows: `CreateThread` and the thread handle, over the real
//! calls. Windows keeps the suspend count, the context and the times; a
//! panic in the thread's function is caught there and raised again by
//! [`Thread::join`], as `std::thread` does.
//!
//! One of the fenced unsafe modules: every block is one Win32 call on live
//! values of the sizes passed, or the start routine taking back the boxed
//! function it was given.
#![allow(unsafe_code)] // fenced: ARCHITECTURE.md, "Invariants"

use std::any::Any;
use std::ffi::c_void;
use std::os::windows::io::OwnedHandle;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use windows_sys::Win32::Foundation::{FILETIME, HANDLE, WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows_sys::Win32::System::Diagnostics::Debug::{
    CONTEXT, CONTEXT_FULL_AMD64, GetThreadContext, SetThreadContext,
};
use windows_sys::Win32::System::Threading::{
    CREATE_SUSPENDED, CreateThread, GetCurrentThreadId, GetExitCodeThread, GetThreadTimes,
    INFINITE, ResumeThread, STACK_SIZE_PARAM_IS_A_RESERVATION, SetThreadAffinityMask,
    SetThreadDescription, SetThreadIdealProcessor, SetThreadPriority, SuspendThread,
    THREAD_PRIORITY, THREAD_PRIORITY_ABOVE_NORMAL, THREAD_PRIORITY_BELOW_NORMAL,
    THREAD_PRIORITY_HIGHEST, THREAD_PRIORITY_IDLE, THREAD_PRIORITY_LOWEST, THREAD_PRIORITY_NORMAL,
    THREAD_PRIORITY_TIME_CRITICAL, WaitForMultipleObjects, WaitForSingleObject,
};

use super::{STILL_ACTIVE, ThreadBuilder, ThreadContext, ThreadPriority, ThreadTimes};
use crate::error::Result;
use crate::windows::{filetime_duration, filetime_instant, last_os, owned, raw, wide};

/// The exit code of a thread whose function panicked (the panic itself
/// is raised again by [`Thread::join`]).
const PANICKED: u32 = 101;

/// What a new thread takes: its function, and where it leaves a panic.
struct Start {
    f: Box<dyn FnOnce() -> u32 + Send>,
    panic: Arc<Mutex<Option<Box<dyn Any + Send>>>>,
}

unsafe extern "system" fn start(param: *mut c_void) -> u32 {
    // SAFETY: `param` is the `Box<Start>` leaked in `spawn`, given to this
    // thread alone, taken back exactly once here.
    let start = unsafe { Box::from_raw(param as *mut Start) };
    let Start { f, panic } = *start;
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(code) => code,
        Err(p) => {
            *panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            PANICKED
        }
    }
}

/// The `THREAD_PRIORITY_*` value of a [`ThreadPriority`].
fn priority_value(p: ThreadPriority) -> THREAD_PRIORITY {
    match p {
        ThreadPriority::Idle => THREAD_PRIORITY_IDLE,
        ThreadPriority::Lowest => THREAD_PRIORITY_LOWEST,
        ThreadPriority::BelowNormal => THREAD_PRIORITY_BELOW_NORMAL,
        ThreadPriority::Normal => THREAD_PRIORITY_NORMAL,
        ThreadPriority::AboveNormal => THREAD_PRIORITY_ABOVE_NORMAL,
        ThreadPriority::Highest => THREAD_PRIORITY_HIGHEST,
        ThreadPriority::TimeCritical => THREAD_PRIORITY_TIME_CRITICAL,
    }
}

impl ThreadBuilder {
    /// `CreateThread`: starts the thread; `f`'s result is its exit code.
    /// The thread is created suspended, given its name, priority, affinity
    /// and ideal processor, then let run (unless [`suspended`](Self::suspended)).
    /// Windows takes one stack size: the reserve when one is given (with
    /// `STACK_SIZE_PARAM_IS_A_RESERVATION`), else the commit.
    pub fn spawn<F: FnOnce() -> u32 + Send + 'static>(self, f: F) -> Result<Thread> {
        let panic = Arc::new(Mutex::new(None));
        let param = Box::into_raw(Box::new(Start {
            f: Box::new(f),
            panic: Arc::clone(&panic),
        }));
        let (size, reservation) = match self.reserve {
            Some(r) => (r, STACK_SIZE_PARAM_IS_A_RESERVATION),
            None => (self.commit, 0),
        };
        let mut tid = 0u32;
        // SAFETY: `start` has the LPTHREAD_START_ROUTINE signature and takes
        // `param` back; `tid` is a live out-pointer.
        let h = unsafe {
            CreateThread(
                std::ptr::null(),
                size,
                Some(start),
                param as *const c_void,
                CREATE_SUSPENDED | reservation,
                &mut tid,
            )
        };
        if h.is_null() {
            // SAFETY: the thread was not made, so the box is still ours.
            drop(unsafe { Box::from_raw(param) });
            return Err(last_os("create a thread"));
        }
        // SAFETY: a new handle we own.
        let handle = unsafe { owned(h, "create a thread")? };
        let thread = Thread {
            handle,
            tid: tid as i32,
            ideal_processor: self.ideal_processor,
            panic,
        };
        let set_up = (|| {
            let h = raw(&thread.handle);
            if let Some(name) = &self.name {
                let w = wide(name);
                // SAFETY: a live thread handle and a NUL-terminated name.
                if unsafe { SetThreadDescription(h, w.as_ptr()) } < 0 {
                    return Err(last_os(format!("name thread {tid}")));
                }
            }
            if let Some(p) = self.priority {
                // SAFETY: a live thread handle.
                if unsafe { SetThreadPriority(h, priority_value(p)) } == 0 {
                    return Err(last_os(format!("set the priority of thread {tid}")));
                }
            }
            if let Some(cpus) = &self.affinity {
                let mask = cpus.to_mask()?;
                // SAFETY: a live thread handle.
                if unsafe { SetThreadAffinityMask(h, mask) } == 0 {
                    return Err(last_os(format!("set the affinity of thread {tid}")));
                }
            }
            if let Some(cpu) = self.ideal_processor {
                // SAFETY: a live thread handle.
                if unsafe { SetThreadIdealProcessor(h, cpu as u32) } == u32::MAX {
                    return Err(last_os(format!("set the ideal processor of thread {tid}")));
                }
            }
            Ok(())
        })();
        if let Err(e) = set_up {
            // It never ran: let it run its start routine to free the box, and
            // wait. (Terminating it would leak the box and its captures.)
            thread.resume()?;
            thread.wait_timeout(Duration::from_secs(60));
            return Err(e);
        }
        if !self.suspended {
            thread.resume()?;
        }
        Ok(thread)
    }
}

/// A thread handle (`CreateThread`'s `HANDLE`). Dropping it detaches the
/// thread, which runs on (closing a handle does not end a Windows thread).
#[derive(Debug)]
pub struct Thread {
    handle: OwnedHandle,
    tid: i32,
    ideal_processor: Option<usize>,
    panic: Arc<Mutex<Option<Box<dyn Any + Send>>>>,
}

/// A 16-byte aligned `CONTEXT`, as `GetThreadContext` requires.
#[repr(C, align(16))]
struct AlignedContext(CONTEXT);

impl Thread {
    /// The thread id (`GetThreadId`).
    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// The ideal processor given at creation, if any.
    pub fn ideal_processor(&self) -> Option<usize> {
        self.ideal_processor
    }

    /// `ResumeThread`: returns the suspend count before the call.
    pub fn resume(&self) -> Result<u32> {
        // SAFETY: a live thread handle.
        match unsafe { ResumeThread(raw(&self.handle)) } {
            u32::MAX => Err(last_os(format!("resume thread {}", self.tid))),
            n => Ok(n),
        }
    }

    /// `SuspendThread`: returns the suspend count before the call.
    pub fn suspend(&self) -> Result<u32> {
        // SAFETY: a live thread handle.
        match unsafe { SuspendThread(raw(&self.handle)) } {
            u32::MAX => Err(last_os(format!("suspend thread {}", self.tid))),
            n => Ok(n),
        }
    }

    /// `GetThreadContext` of this (suspended) thread.
    pub fn context(&self) -> Result<ThreadContext> {
        // SAFETY: a plain C struct the call fills; zero is its initial state.
        let mut c: AlignedContext = unsafe { std::mem::zeroed() };
        c.0.ContextFlags = CONTEXT_FULL_AMD64;
        // SAFETY: a live thread handle and an aligned CONTEXT.
        if unsafe { GetThreadContext(raw(&self.handle), &mut c.0) } == 0 {
            return Err(last_os(format!("read the context of thread {}", self.tid)));
        }
        let c = &c.0;
        Ok(ThreadContext {
            rip: c.Rip,
            rsp: c.Rsp,
            rbp: c.Rbp,
            rax: c.Rax,
            rbx: c.Rbx,
            rcx: c.Rcx,
            rdx: c.Rdx,
            rsi: c.Rsi,
            rdi: c.Rdi,
            r8: c.R8,
            r9: c.R9,
            r10: c.R10,
            r11: c.R11,
            r12: c.R12,
            r13: c.R13,
            r14: c.R14,
            r15: c.R15,
            rflags: u64::from(c.EFlags),
        })
    }

    /// `SetThreadContext` (the thread must be suspended): its integer
    /// registers, program counter, stack pointer and flags.
    ///
    /// # Safety
    /// The thread resumes with these registers, in this process's memory:
    /// they must make a state it can run from.
    pub unsafe fn set_context(&self, context: &ThreadContext) -> Result<()> {
        // SAFETY: as in `context`.
        let mut c: AlignedContext = unsafe { std::mem::zeroed() };
        c.0.ContextFlags = CONTEXT_FULL_AMD64;
        // SAFETY: as in `context`: the other registers are read first and kept.
        if unsafe { GetThreadContext(raw(&self.handle), &mut c.0) } == 0 {
            return Err(last_os(format!("read the context of thread {}", self.tid)));
        }
        let x = &mut c.0;
        (x.Rip, x.Rsp, x.Rbp, x.Rax, x.Rbx, x.Rcx, x.Rdx) = (
            context.rip,
            context.rsp,
            context.rbp,
            context.rax,
            context.rbx,
            context.rcx,
            context.rdx,
        );
        (x.Rsi, x.Rdi, x.R8, x.R9, x.R10, x.R11) = (
            context.rsi,
            context.rdi,
            context.r8,
            context.r9,
            context.r10,
            context.r11,
        );
        (x.R12, x.R13, x.R14, x.R15) = (context.r12, context.r13, context.r14, context.r15);
        x.EFlags = context.rflags as u32;
        // SAFETY: a live thread handle and an aligned CONTEXT; the caller
        // vouches for the registers (this function's contract).
        if unsafe { SetThreadContext(raw(&self.handle), &c.0) } == 0 {
            return Err(last_os(format!("write the context of thread {}", self.tid)));
        }
        Ok(())
    }

    /// `GetExitCodeThread`: [`STILL_ACTIVE`] while it runs.
    pub fn exit_code(&self) -> u32 {
        let mut code = STILL_ACTIVE;
        // SAFETY: a live thread handle and an out-pointer.
        unsafe { GetExitCodeThread(raw(&self.handle), &mut code) };
        code
    }

    /// Whether its function has returned.
    pub fn has_ended(&self) -> bool {
        self.wait_timeout(Duration::ZERO)
    }

    /// Waits at most `timeout` for it to end; `true` if it has.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let ms = timeout.as_millis().min(u128::from(INFINITE - 1)) as u32;
        // SAFETY: a live thread handle.
        unsafe { WaitForSingleObject(raw(&self.handle), ms) == WAIT_OBJECT_0 }
    }

    /// Waits for it to end and returns its exit code; a panic in the thread is raised here.
    pub fn join(self) -> Result<u32> {
        // SAFETY: a live thread handle.
        if unsafe { WaitForSingleObject(raw(&self.handle), INFINITE) } != WAIT_OBJECT_0 {
            return Err(last_os(format!("wait for thread {}", self.tid)));
        }
        if let Some(p) = self.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
            std::panic::resume_unwind(p);
        }
        Ok(self.exit_code())
    }

    /// `GetThreadTimes`.
    pub fn times(&self) -> Result<ThreadTimes> {
        let zero = FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        };
        let (mut c, mut e, mut k, mut u) = (zero, zero, zero, zero);
        // SAFETY: a live thread handle and four out-pointers.
        if unsafe { GetThreadTimes(raw(&self.handle), &mut c, &mut e, &mut k, &mut u) } == 0 {
            return Err(last_os(format!("read the times of thread {}", self.tid)));
        }
        let ended = self.has_ended();
        Ok(ThreadTimes {
            creation: filetime_instant(c),
            exit: ended.then(|| filetime_instant(e)),
            user: filetime_duration(u),
            kernel: filetime_duration(k),
        })
    }
}

fn wait_threads(threads: &[&Thread], timeout: Option<Duration>, all: bool) -> Option<usize> {
    if threads.is_empty() || threads.len() > 64 {
        return None;
    }
    let handles: Vec<HANDLE> = threads.iter().map(|t| raw(&t.handle)).collect();
    let ms = timeout.map_or(INFINITE, |t| {
        t.as_millis().min(u128::from(INFINITE - 1)) as u32
    });
    // SAFETY: live thread handles, their count passed.
    let r = unsafe {
        WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), i32::from(all), ms)
    };
    match r {
        WAIT_TIMEOUT => None,
        r if r < WAIT_OBJECT_0 + handles.len() as u32 => Some((r - WAIT_OBJECT_0) as usize),
        _ => None,
    }
}

/// `WaitForMultipleObjects` over threads, any one: the index of one that has ended, or `None` on timeout.
pub fn wait_any(threads: &[&Thread], timeout: Option<Duration>) -> Option<usize> {
    wait_threads(threads, timeout, false)
}

/// `WaitForMultipleObjects` over threads, all: `true` once all have ended, `false` on timeout.
pub fn wait_all(threads: &[&Thread], timeout: Option<Duration>) -> bool {
    wait_threads(threads, timeout, true).is_some()
}

/// `GetCurrentThreadId`.
pub fn current_thread_id() -> i32 {
    // SAFETY: no arguments.
    unsafe { GetCurrentThreadId() as i32 }
}
