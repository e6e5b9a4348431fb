//! Threads on Linux: pthreads started by `ThreadBuilder::spawn`, suspended
//! by a real-time signal whose handler parks on a futex, their contexts
//! from the handler's `ucontext` (or ptrace for another process).
#![allow(unsafe_code)] // one of the fenced modules: ARCHITECTURE.md, "Invariants"

use std::any::Any;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::sys::{self, ThreadContext};
use super::{STILL_ACTIVE, ThreadBuilder, ThreadPriority, ThreadTimes, remote};

use crate::cpuset::CpuSet;
use crate::error::{Error, OrLog, Result};

/// `SetThreadPriority` on thread `tid` of this process (or another, with permission).
pub fn set_thread_priority(tid: i32, priority: ThreadPriority) -> Result<()> {
    let policy = if priority == ThreadPriority::Idle {
        libc::SCHED_IDLE
    } else {
        libc::SCHED_OTHER
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler and setpriority with a valid param, on a tid.
    unsafe {
        if libc::sched_setscheduler(tid, policy, &param) != 0 {
            return Err(thread_error(
                tid,
                "sched_setscheduler",
                std::io::Error::last_os_error(),
            ));
        }
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, priority.nice()) != 0 {
            return Err(thread_error(
                tid,
                "setpriority (thread)",
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// A call on thread `tid` failed: `NoSuchThread` when it is gone (ESRCH),
/// else what the kernel said.
fn thread_error(tid: i32, op: &'static str, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ESRCH) && tid != 0 {
        Error::NoSuchThread { tid }
    } else {
        Error::os(format!("{op} (thread {tid})"), e)
    }
}

/// `GetThreadPriority` of thread `tid`: `Idle` under `SCHED_IDLE`, else
/// the class whose nice value is nearest the thread's (a nice value set by
/// other means reads as the class it is closest to).
pub fn thread_priority(tid: i32) -> Result<ThreadPriority> {
    let id = rustix::process::Pid::from_raw(tid);
    // SAFETY: sched_getscheduler takes a plain id and reads nothing of ours.
    let policy = unsafe { libc::sched_getscheduler(tid) };
    if policy < 0 {
        return Err(thread_error(
            tid,
            "sched_getscheduler",
            std::io::Error::last_os_error(),
        ));
    }
    if policy == libc::SCHED_IDLE {
        return Ok(ThreadPriority::Idle);
    }
    let nice = rustix::process::getpriority_process(id)
        .map_err(|e| thread_error(tid, "getpriority (thread)", e.into()))?;
    let classes = [
        ThreadPriority::TimeCritical,
        ThreadPriority::Highest,
        ThreadPriority::AboveNormal,
        ThreadPriority::Normal,
        ThreadPriority::BelowNormal,
        ThreadPriority::Lowest,
    ];
    Ok(classes
        .into_iter()
        .min_by_key(|c| (c.nice() - nice).abs())
        .expect("six classes"))
}

/// `SetThreadAffinityMask` on thread `tid`: returns the mask it had before.
pub fn set_thread_affinity(tid: i32, cpus: &CpuSet) -> Result<CpuSet> {
    let id = rustix::process::Pid::from_raw(tid);
    let before = rustix::thread::sched_getaffinity(id)
        .map_err(|e| thread_error(tid, "sched_getaffinity (thread)", e.into()))?;
    let mut previous = CpuSet::new();
    for cpu in 0..rustix::thread::CpuSet::MAX_CPU {
        if before.is_set(cpu) {
            previous.insert(cpu);
        }
    }
    let mut set = rustix::thread::CpuSet::new();
    for cpu in cpus.iter() {
        if cpu >= rustix::thread::CpuSet::MAX_CPU {
            return Err(Error::InvalidCpuList {
                input: cpus.to_string(),
                reason: format!("CPU {cpu} is beyond what this build can name"),
            });
        }
        set.set(cpu);
    }
    rustix::thread::sched_setaffinity(id, &set)
        .map_err(|e| thread_error(tid, "sched_setaffinity (thread)", e.into()))?;
    Ok(previous)
}

/// `GetCurrentThreadStackLimits`: the (low, high) addresses of the stack
/// the caller runs on: inside a fiber, the fiber's; else the thread's.
pub fn current_stack_limits() -> Result<(usize, usize)> {
    if let Some(bounds) = crate::fiber::current_stack() {
        return Ok(bounds);
    }
    sys::own_stack().ok_or_else(|| Error::last_os("pthread_getattr_np"))
}

/// Full descriptions of this process's threads, by thread id: the kernel
/// keeps only 15 bytes of a thread's name.
static DESCRIPTIONS: Mutex<BTreeMap<i32, String>> = Mutex::new(BTreeMap::new());

/// The first bytes of `text` that fit the kernel's 15-byte thread name,
/// cut at a character boundary.
fn kernel_name(text: &str) -> &str {
    let mut end = text.len().min(15);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `SetThreadDescription` on thread `tid` of this process: the kernel's
/// name (`comm`, what `ps` and `top` show) gets the first 15 bytes, and
/// taskloom keeps the whole description for [`thread_description`].
pub fn set_thread_description(tid: i32, description: &str) -> Result<()> {
    if description.contains('\0') {
        return Err(Error::InvalidInput {
            what: "thread description",
            reason: "contains a NUL byte".into(),
        });
    }
    std::fs::write(
        format!("/proc/self/task/{tid}/comm"),
        kernel_name(description),
    )
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NoSuchThread { tid },
        _ => Error::os(format!("set the name of thread {tid}"), e),
    })?;
    DESCRIPTIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(tid, description.to_owned());
    Ok(())
}

/// `GetThreadDescription` of thread `tid` of this process: the description
/// set through [`set_thread_description`] in full, or the kernel's name
/// when it was set otherwise (or changed since).
pub fn thread_description(tid: i32) -> Result<String> {
    let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
        .map_err(|_| Error::NoSuchThread { tid })?;
    let comm = comm.strip_suffix('\n').unwrap_or(&comm);
    let mut map = DESCRIPTIONS.lock().unwrap_or_else(|e| e.into_inner());
    match map.get(&tid) {
        // Still the name it was given (not a later one, nor a new thread
        // that reuses the id with another name).
        Some(full) if kernel_name(full) == comm => Ok(full.clone()),
        Some(_) => {
            map.remove(&tid);
            Ok(comm.to_owned())
        }
        None => Ok(comm.to_owned()),
    }
}

/// What the thread and its handles share.
#[derive(Debug)]
struct Shared {
    tid: AtomicI32,
    /// 0 starting, 1 waiting to be resumed (suspended start), 2 running, 3 ended.
    state: AtomicU32,
    /// The suspended-start gate: 0 closed, 1 open.
    gate: AtomicU32,
    exit_code: AtomicU32,
    created: SystemTime,
    end: Mutex<Option<End>>,
}

#[derive(Debug)]
struct End {
    time: SystemTime,
    user: Duration,
    kernel: Duration,
    panic: Option<Box<dyn Any + Send>>,
}

const STARTING: u32 = 0;
const GATED: u32 = 1;
const RUNNING: u32 = 2;
const ENDED: u32 = 3;

/// Wakes `wait_any`/`wait_all` whenever some taskloom thread ends.
static ENDINGS: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());

impl ThreadBuilder {
    /// Starts the thread; `f`'s result is its exit code.
    pub fn spawn<F: FnOnce() -> u32 + Send + 'static>(self, f: F) -> Result<Thread> {
        let shared = Arc::new(Shared {
            tid: AtomicI32::new(0),
            state: AtomicU32::new(STARTING),
            gate: AtomicU32::new(0),
            exit_code: AtomicU32::new(STILL_ACTIVE),
            created: SystemTime::now(),
            end: Mutex::new(None),
        });
        let name: Option<String> = self.name.as_ref().map(|n| n.replace('\0', ""));
        let s = shared.clone();
        let opts = self.clone();
        let run = Box::new(move || {
            // Name, priority and affinity are in place before the id is
            // handed out (`Thread::tid` waits for it), so whoever looks at
            // the thread by its id finds them, as after CreateThread.
            if let Some(name) = &name {
                // The kernel's 15 bytes, and the whole name for GetThreadDescription.
                set_thread_description(sys::gettid(), name)
                    .or_log(|| format!("name the new thread {name:?}"));
            }
            if let Some(p) = opts.priority {
                set_thread_priority(0, p).or_log(|| format!("give the new thread priority {p:?}"));
            }
            if let Some(cpus) = &opts.affinity {
                set_thread_affinity(0, cpus)
                    .or_log(|| format!("give the new thread the CPUs {cpus}"));
            }
            s.tid.store(sys::gettid(), Ordering::Release);
            sys::futex_wake(unsafe_tid_word(&s));
            if opts.commit > 0 {
                sys::commit_own_stack(opts.commit);
            }
            if opts.suspended {
                s.state.store(GATED, Ordering::Release);
                sys::futex_wake(&s.state);
                while s.gate.load(Ordering::Acquire) == 0 {
                    sys::futex_wait(&s.gate, 0, None);
                }
            }
            s.state.store(RUNNING, Ordering::Release);
            let result = catch_unwind(AssertUnwindSafe(f));
            let (user, kernel) = sys::own_times();
            let (code, panic) = match result {
                Ok(code) => (code, None),
                // A panic ends the thread like an unhandled exception: code 0xC0000409-like is
                // Windows'; taskloom reports the panic to whoever joins, with code 101 (Rust's).
                Err(p) => (101, Some(p)),
            };
            *s.end.lock().unwrap_or_else(|e| e.into_inner()) = Some(End {
                time: SystemTime::now(),
                user,
                kernel,
                panic,
            });
            s.exit_code.store(code, Ordering::Release);
            s.state.store(ENDED, Ordering::Release);
            sys::futex_wake(&s.state);
            let (lock, cv) = &ENDINGS;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            cv.notify_all();
        });
        let stack = self.reserve.unwrap_or(2 << 20);
        let pthread = sys::spawn(stack, Box::new(sys::Start { run }))
            .map_err(|e| Error::os("pthread_create", e))?;
        let thread = Thread {
            pthread: Some(pthread),
            shared,
            ideal_processor: self.ideal_processor,
        };
        if self.suspended {
            // CREATE_SUSPENDED returns once the thread is parked before its
            // function, with a suspend count of 1.
            while thread.shared.state.load(Ordering::Acquire) == STARTING {
                sys::futex_wait(&thread.shared.state, STARTING, None);
            }
            let tid = thread.tid();
            let mut map = SUSPENDED.lock().unwrap_or_else(|e| e.into_inner());
            let map = map.get_or_insert_with(HashMap::new);
            // A record left by an earlier thread with this id is reused.
            let request = map
                .get(&tid)
                .map(|s| s.request)
                .unwrap_or_else(|| sys::new_record(tid));
            map.insert(
                tid,
                Suspension {
                    count: 1,
                    request,
                    gate: Some(thread.shared.clone()),
                },
            );
        }
        Ok(thread)
    }
}

/// The tid word, as a futex word (the thread publishes its tid there).
fn unsafe_tid_word(s: &Shared) -> &AtomicU32 {
    // SAFETY: AtomicI32 and AtomicU32 have the same size and alignment; the
    // futex only compares and wakes on the raw bits.
    unsafe { &*(&s.tid as *const AtomicI32 as *const AtomicU32) }
}

/// A thread handle (`CreateThread`'s `HANDLE`). Dropping it detaches the
/// thread, which runs on (closing a handle does not end a Windows thread).
#[derive(Debug)]
pub struct Thread {
    pthread: Option<libc::pthread_t>,
    shared: Arc<Shared>,
    ideal_processor: Option<usize>,
}

impl Thread {
    /// The thread id (`GetThreadId`): waits the microseconds until the new thread has published it.
    pub fn tid(&self) -> i32 {
        loop {
            let tid = self.shared.tid.load(Ordering::Acquire);
            if tid != 0 {
                return tid;
            }
            sys::futex_wait(
                unsafe_tid_word(&self.shared),
                0,
                Some(Duration::from_millis(10)),
            );
        }
    }

    /// The ideal processor given at creation, if any.
    pub fn ideal_processor(&self) -> Option<usize> {
        self.ideal_processor
    }

    /// Starts a thread created suspended; for a running thread this is
    /// [`resume_thread`] (suspend counts).
    pub fn resume(&self) -> Result<u32> {
        resume_thread(self.tid())
    }

    /// `SuspendThread` on this thread. As on Windows, a thread that has
    /// ended cannot be suspended (an error), and resuming it answers 0.
    pub fn suspend(&self) -> Result<u32> {
        // Its function has returned: it only has its exit left to run, and
        // a suspension caught there would leave a count Windows never shows.
        if self.has_ended() {
            return Err(Error::NoSuchThread { tid: self.tid() });
        }
        suspend_thread(self.tid())
    }

    /// `GetThreadContext` of this (suspended) thread.
    pub fn context(&self) -> Result<ThreadContext> {
        thread_context(self.tid())
    }

    /// `SetThreadContext` (the thread must be suspended): [`set_thread_context`].
    ///
    /// # Safety
    /// As for [`set_thread_context`]: the thread resumes with these
    /// registers, in this process's memory.
    pub unsafe fn set_context(&self, context: &ThreadContext) -> Result<()> {
        // SAFETY: the caller upholds set_thread_context's contract.
        unsafe { set_thread_context(self.tid(), context) }
    }

    /// `GetExitCodeThread`: [`STILL_ACTIVE`] while it runs.
    pub fn exit_code(&self) -> u32 {
        if self.shared.state.load(Ordering::Acquire) == ENDED {
            self.shared.exit_code.load(Ordering::Acquire)
        } else {
            STILL_ACTIVE
        }
    }

    /// Whether its function has returned.
    pub fn has_ended(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) == ENDED
    }

    /// Waits at most `timeout` for it to end; `true` if it has.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.shared.state.load(Ordering::Acquire);
            if state == ENDED {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            sys::futex_wait(&self.shared.state, state, Some(left));
        }
    }

    /// Waits for it to end and returns its exit code; a panic in the thread is raised here.
    pub fn join(mut self) -> Result<u32> {
        if let Some(p) = self.pthread.take() {
            sys::join(p);
        }
        let panic = self
            .shared
            .end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|e| e.panic.take());
        if let Some(p) = panic {
            std::panic::resume_unwind(p);
        }
        Ok(self.shared.exit_code.load(Ordering::Acquire))
    }

    /// `GetThreadTimes`: from `/proc/self/task/<tid>/stat` while it runs, exact once it ended.
    pub fn times(&self) -> Result<ThreadTimes> {
        if let Some(end) = self
            .shared
            .end
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return Ok(ThreadTimes {
                creation: self.shared.created,
                exit: Some(end.time),
                user: end.user,
                kernel: end.kernel,
            });
        }
        let stat = std::fs::read(format!("/proc/self/task/{}/stat", self.tid()))
            .map_err(|e| Error::os(format!("read /proc/self/task/{}/stat", self.tid()), e))?;
        let s = crate::linux::parse::parse_stat(&stat).map_err(|e| Error::InvalidInput {
            what: "/proc/self/task/<tid>/stat",
            reason: e.to_string(),
        })?;
        Ok(ThreadTimes {
            creation: self.shared.created,
            exit: None,
            user: crate::linux::ticks(s.utime),
            kernel: crate::linux::ticks(s.stime),
        })
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        if let Some(p) = self.pthread.take() {
            sys::detach(p);
        }
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

fn wait_threads(threads: &[&Thread], timeout: Option<Duration>, all: bool) -> Option<usize> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let (lock, cv) = &ENDINGS;
    let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let ended: Vec<bool> = threads.iter().map(|t| t.has_ended()).collect();
        if all && ended.iter().all(|&e| e) {
            return Some(0);
        }
        if !all && let Some(i) = ended.iter().position(|&e| e) {
            return Some(i);
        }
        match deadline {
            None => guard = cv.wait(guard).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                guard = cv
                    .wait_timeout(guard, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
}

/// Suspension state per thread id: its suspend count and its (leaked, reused) record.
struct Suspension {
    count: u32,
    request: &'static sys::Request,
    /// A thread created suspended (CREATE_SUSPENDED) counts 1 at its start:
    /// the resume that brings the count to 0 opens its start gate.
    gate: Option<Arc<Shared>>,
}

static SUSPENDED: Mutex<Option<HashMap<i32, Suspension>>> = Mutex::new(None);

/// `SuspendThread`: stops thread `tid` of this process and returns its
/// previous suspend count. The first suspension returns once the thread is
/// parked (its context is then readable); further ones only count. A thread
/// may suspend itself: it stops until another thread resumes it (whose
/// `resume_thread` then returns 1).
///
/// Errors: the thread does not exist or ended before it stopped
/// (`NoSuchThread` with its id); it did not stop within 10 s (it blocks the
/// suspend signal, `SIGRTMIN+6`: it stops when it unblocks it, unless
/// resumed first); the application has its own handler for that signal.
pub fn suspend_thread(tid: i32) -> Result<u32> {
    sys::install_handler().map_err(|e| Error::os("install the SuspendThread handler", e))?;
    let me = sys::gettid();
    let request = {
        let mut map = SUSPENDED.lock().unwrap_or_else(|e| e.into_inner());
        let map = map.get_or_insert_with(HashMap::new);
        let entry = map.entry(tid).or_insert_with(|| Suspension {
            count: 0,
            request: sys::new_record(tid),
            gate: None,
        });
        if entry.count > 0 {
            entry.count += 1;
            return Ok(entry.count - 1);
        }
        let request = entry.request;
        request.state.store(sys::REQUESTED, Ordering::Release);
        // Ourselves: the signal is sent once the lock is released (it is
        // handled the moment it is sent, and the handler parks).
        if tid != me
            && let Err(e) = sys::send_suspend(tid, request)
        {
            request.state.store(sys::RESUMED, Ordering::Release);
            return Err(match e.raw_os_error() {
                Some(libc::ESRCH) => Error::NoSuchThread { tid },
                _ => Error::os(format!("signal thread {tid} to suspend"), e),
            });
        }
        entry.count = 1;
        request
    };
    if tid == me {
        sys::send_suspend(tid, request)
            .map_err(|e| Error::os(format!("signal thread {tid} to suspend"), e))?;
        return Ok(0);
    }
    // Outside the lock: others may suspend and resume meanwhile.
    match wait_parked(tid, request, Duration::from_secs(10)) {
        Parked::Yes => Ok(0),
        Parked::Gone => {
            forget_suspension(tid, request);
            Err(Error::NoSuchThread { tid })
        }
        Parked::NotYet => Err(Error::InvalidInput {
            what: "SuspendThread",
            reason: format!(
                "thread {tid} did not stop within 10 s: it blocks SIGRTMIN+6, and stops when it unblocks it (unless resumed first)"
            ),
        }),
    }
}

/// How a wait for a thread to park ended.
enum Parked {
    Yes,
    /// The thread ended first (with the signal pending).
    Gone,
    NotYet,
}

/// Waits until the target's handler has parked: a short spin first (the
/// handler usually parks within microseconds, quicker than a sleep and a
/// wake-up), then futex sleeps, checking that the thread still exists.
fn wait_parked(tid: i32, request: &sys::Request, limit: Duration) -> Parked {
    let start = Instant::now();
    let spin_until = start + Duration::from_micros(50);
    while request.state.load(Ordering::Acquire) == sys::REQUESTED {
        if Instant::now() < spin_until {
            std::hint::spin_loop();
            continue;
        }
        if !sys::thread_alive(tid) {
            return Parked::Gone;
        }
        if start.elapsed() > limit {
            return Parked::NotYet;
        }
        sys::futex_wait(
            &request.state,
            sys::REQUESTED,
            Some(Duration::from_millis(20)),
        );
    }
    Parked::Yes
}

/// Drops the suspension of a thread that ended before it parked.
fn forget_suspension(tid: i32, request: &sys::Request) {
    let mut guard = SUSPENDED.lock().unwrap_or_else(|e| e.into_inner());
    request.state.store(sys::RESUMED, Ordering::Release);
    if let Some(s) = guard.as_mut().and_then(|m| m.get_mut(&tid)) {
        s.count = 0;
    }
}

/// `ResumeThread`: decrements the suspend count of `tid`; at zero the thread
/// runs again. Returns the previous count (0: it was not suspended).
pub fn resume_thread(tid: i32) -> Result<u32> {
    let mut guard = SUSPENDED.lock().unwrap_or_else(|e| e.into_inner());
    let Some(s) = guard.as_mut().and_then(|m| m.get_mut(&tid)) else {
        return Ok(0);
    };
    let previous = s.count;
    if previous == 0 {
        return Ok(0);
    }
    s.count -= 1;
    if s.count == 0 {
        if let Some(shared) = s.gate.take() {
            // A thread created suspended: its start gate opens.
            shared.gate.store(1, Ordering::Release);
            sys::futex_wake(&shared.gate);
        } else {
            // Parked: released. Not parked yet (the signal on its way): its
            // handler finds RESUMED and goes on without parking.
            s.request.state.store(sys::RESUMED, Ordering::Release);
            sys::futex_wake(&s.request.state);
        }
    }
    Ok(previous)
}

/// The suspension record of thread `tid`, when it is suspended and parked in
/// its handler (its registers saved): what getting and setting its context need.
fn parked_request(
    suspended: Option<&HashMap<i32, Suspension>>,
    tid: i32,
) -> Result<&'static sys::Request> {
    let s = suspended
        .and_then(|m| m.get(&tid))
        .filter(|s| s.count > 0)
        .ok_or_else(|| Error::InvalidInput {
            what: "thread context",
            reason: format!("thread {tid} is not suspended (SuspendThread it first)"),
        })?;
    if s.request.state.load(Ordering::Acquire) != sys::PARKED {
        return Err(Error::InvalidInput {
            what: "thread context",
            reason: format!("thread {tid} has not parked yet"),
        });
    }
    Ok(s.request)
}

/// `GetThreadContext` of a suspended thread of this process.
pub fn thread_context(tid: i32) -> Result<ThreadContext> {
    let guard = SUSPENDED.lock().unwrap_or_else(|e| e.into_inner());
    let request = parked_request(guard.as_ref(), tid)?;
    // SAFETY: PARKED was published after the handler wrote the context (Release/Acquire).
    Ok(unsafe { *request.context.get() })
}

/// `SetThreadContext` on a suspended thread of this process: when it is
/// resumed it goes on with `context` (a redirected call runs on resume).
/// The thread must be suspended and parked, as for [`thread_context`].
///
/// # Safety
/// The thread resumes with exactly these registers, in this process's
/// memory: the program counter must point at code that may run there, the
/// stack pointer at stack that code may use, and every register the code
/// relies on must hold what it expects (a context read with
/// [`thread_context`] and changed as a call would change it, as Windows
/// debuggers and hot-patchers do). Anything else is undefined behaviour.
/// (A thread of another process is not this process's memory:
/// [`ThreadHandle::set_context`] is safe.)
pub unsafe fn set_thread_context(tid: i32, context: &ThreadContext) -> Result<()> {
    if cfg!(not(target_arch = "x86_64")) {
        return Err(Error::InvalidInput {
            what: "thread context",
            reason: format!(
                "register contexts are not written for {} yet (only x86_64)",
                std::env::consts::ARCH
            ),
        });
    }
    let guard = SUSPENDED.lock().unwrap_or_else(|e| e.into_inner());
    let request = parked_request(guard.as_ref(), tid)?;
    // SAFETY: the thread is parked in its handler and reads the context only
    // after a resume, which takes this lock and publishes with Release.
    unsafe { *request.context.get() = *context };
    request.replace.store(true, Ordering::Release);
    Ok(())
}

/// The registers of thread `tid` of another process, read with ptrace
/// (seize, interrupt, read, detach). Needs ptrace permission (same user and
/// a permissive `ptrace_scope`, or `CAP_SYS_PTRACE`).
pub fn remote_thread_context(tid: i32) -> Result<ThreadContext> {
    sys::remote_context(tid).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => Error::NoSuchThread { tid },
        _ => Error::os(format!("read the registers of thread {tid} (ptrace)"), e),
    })
}

bitflags::bitflags! {
    /// Access rights asked of [`ThreadHandle::open`] (`OpenThread`'s `dwDesiredAccess`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct ThreadAccess: u32 {
        /// `SYNCHRONIZE`: always granted.
        const SYNCHRONIZE = 1;
        /// `THREAD_SUSPEND_RESUME`.
        const SUSPEND_RESUME = 2;
        /// `THREAD_GET_CONTEXT`.
        const GET_CONTEXT = 4;
        /// `THREAD_SET_CONTEXT`.
        const SET_CONTEXT = 8;
        /// `THREAD_QUERY_INFORMATION`: its priority.
        const QUERY_INFORMATION = 16;
        /// `THREAD_SET_INFORMATION`: set its priority.
        const SET_INFORMATION = 32;
    }
}

/// `OpenThread`: a handle to any thread by id, of this process or another,
/// with access rights checked when it is opened (as far as Linux can tell
/// then) and again at each use (a handle opened to read the context cannot
/// suspend).
///
/// A thread of this process is suspended as [`suspend_thread`] does (its
/// handler parks it; the suspend counts are the same ones). A thread of
/// another process is held through ptrace by taskloom's tracer thread:
/// the first suspension stops it where it is while the rest of its process
/// runs on, the last resume lets it go, and its registers can be read and,
/// while it is suspended, written (`SetThreadContext`: a new program counter
/// is where it goes on when resumed). That needs ptrace permission over it
/// (same user and a permissive `kernel.yama.ptrace_scope`, or
/// `CAP_SYS_PTRACE`), checked when the handle is opened; the thread is held
/// only while this process lives (the kernel lets it go when its tracer
/// exits, where Windows would keep it suspended).
#[derive(Debug)]
pub struct ThreadHandle {
    tid: i32,
    pid: i32,
    access: ThreadAccess,
}

impl ThreadHandle {
    /// `OpenThread(access, FALSE, tid)`.
    pub fn open(tid: i32, access: ThreadAccess) -> Result<ThreadHandle> {
        if tid <= 0 {
            return Err(Error::NoSuchThread { tid });
        }
        // `/proc/<tid>` exists for every thread id (hidden from listings).
        let status = std::fs::read_to_string(format!("/proc/{tid}/status"))
            .map_err(|_| Error::NoSuchThread { tid })?;
        let pid: i32 = status
            .lines()
            .find_map(|l| l.strip_prefix("Tgid:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or(Error::NoSuchThread { tid })?;
        let remote = pid != std::process::id() as i32;
        let needs_ptrace =
            ThreadAccess::SUSPEND_RESUME | ThreadAccess::GET_CONTEXT | ThreadAccess::SET_CONTEXT;
        if remote && access.intersects(needs_ptrace) {
            // The kernel's ptrace-attach check, without attaching: opening
            // the thread's memory asks the same question.
            std::fs::File::open(format!("/proc/{pid}/task/{tid}/mem")).map_err(|source| {
                match source.raw_os_error() {
                    Some(libc::ENOENT) | Some(libc::ESRCH) => Error::NoSuchThread { tid },
                    _ => Error::PermissionDenied {
                        what: format!(
                            "open thread {tid} of process {pid} to suspend or read it (ptrace permission)"
                        ),
                        source,
                    },
                }
            })?;
        }
        Ok(ThreadHandle {
            tid,
            pid,
            access: access | ThreadAccess::SYNCHRONIZE,
        })
    }

    /// The thread id.
    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// The id of its process (`GetProcessIdOfThread`).
    pub fn process_id(&self) -> i32 {
        self.pid
    }

    /// The rights this handle was given.
    pub fn access(&self) -> ThreadAccess {
        self.access
    }

    fn is_remote(&self) -> bool {
        self.pid != std::process::id() as i32
    }

    fn require(&self, right: ThreadAccess, what: &str) -> Result<()> {
        if self.access.contains(right) {
            return Ok(());
        }
        let name = right.iter_names().next().map_or("", |(n, _)| n);
        Err(Error::not_granted(
            format!("{what} thread {}", self.tid),
            "THREAD",
            name,
        ))
    }

    /// `SuspendThread`: the previous suspend count.
    pub fn suspend(&self) -> Result<u32> {
        self.require(ThreadAccess::SUSPEND_RESUME, "suspend")?;
        if self.is_remote() {
            remote::suspend(self.tid)
        } else {
            suspend_thread(self.tid)
        }
    }

    /// `ResumeThread`: the previous suspend count; at zero it runs again.
    pub fn resume(&self) -> Result<u32> {
        self.require(ThreadAccess::SUSPEND_RESUME, "resume")?;
        if self.is_remote() {
            remote::resume(self.tid)
        } else {
            resume_thread(self.tid)
        }
    }

    /// `GetThreadContext`. A thread of this process must be suspended; one
    /// of another process is read where it is (stopped for the read when
    /// it is not suspended).
    pub fn context(&self) -> Result<ThreadContext> {
        self.require(ThreadAccess::GET_CONTEXT, "get the context of")?;
        if self.is_remote() {
            remote::context(self.tid)
        } else {
            thread_context(self.tid)
        }
    }

    /// `SetThreadContext` on a suspended thread of another process: it
    /// goes on with `context` when resumed. For a thread of this process
    /// that would let safe code run anything: it is refused here, and
    /// [`set_thread_context`] (unsafe) does it.
    pub fn set_context(&self, context: &ThreadContext) -> Result<()> {
        self.require(ThreadAccess::SET_CONTEXT, "set the context of")?;
        if !self.is_remote() {
            return Err(Error::InvalidInput {
                what: "thread context",
                reason: format!(
                    "thread {} is one of this process's: its registers are set with the unsafe set_thread_context",
                    self.tid
                ),
            });
        }
        remote::set_context(self.tid, context)
    }

    /// `GetThreadPriority`.
    pub fn priority(&self) -> Result<ThreadPriority> {
        self.require(ThreadAccess::QUERY_INFORMATION, "query")?;
        thread_priority(self.tid)
    }

    /// `SetThreadPriority`.
    pub fn set_priority(&self, priority: ThreadPriority) -> Result<()> {
        self.require(ThreadAccess::SET_INFORMATION, "set the priority of")?;
        set_thread_priority(self.tid, priority)
    }
}

/// The calling thread's id.
pub fn current_thread_id() -> i32 {
    sys::gettid()
}
