//! Threads: creation options, suspend counts, register context, TLS slots.
#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use taskloom::CpuSet;
use taskloom::thread::{
    self, STILL_ACTIVE, ThreadBuilder, ThreadPriority, TlsIndex, resume_thread, suspend_thread,
    thread_context,
};

// A spin loop with known bounds, so a captured instruction pointer can be checked exactly.
std::arch::global_asm!(
    ".globl taskloom_test_spin",
    ".globl taskloom_test_spin_end",
    "taskloom_test_spin:",
    "2:",
    "pause",
    "cmp byte ptr [rdi], 0",
    "je 2b",
    "ret",
    "taskloom_test_spin_end:",
    "nop",
);

unsafe extern "C" {
    fn taskloom_test_spin(stop: *const AtomicBool);
    fn taskloom_test_spin_end();
}

fn task_stat(tid: i32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .map(str::to_owned)
        .collect()
}

#[test]
fn exit_codes_names_and_still_active() {
    let go = Arc::new(AtomicBool::new(false));
    let g = go.clone();
    let t = ThreadBuilder::new()
        .name("tl-worker-with-a-long-name")
        .spawn(move || {
            while !g.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            42
        })
        .unwrap();
    let tid = t.tid();
    assert!(tid > 0);
    assert_eq!(t.exit_code(), STILL_ACTIVE);
    assert!(!t.wait_timeout(Duration::from_millis(20)));
    let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap();
    assert_eq!(comm.trim_end(), "tl-worker-with-");
    go.store(true, Ordering::Release);
    assert!(t.wait_timeout(Duration::from_secs(10)));
    assert_eq!(t.exit_code(), 42);
    let times = t.times().unwrap();
    assert!(times.exit.unwrap() >= times.creation);
    assert_eq!(t.join().unwrap(), 42);
}

#[test]
fn a_suspended_start_runs_nothing_until_resumed() {
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let t = ThreadBuilder::new()
        .suspended(true)
        .spawn(move || {
            r.store(true, Ordering::Release);
            0
        })
        .unwrap();
    let tid = t.tid();
    assert!(
        std::path::Path::new(&format!("/proc/self/task/{tid}")).exists(),
        "the thread exists"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(!ran.load(Ordering::Acquire), "ran while suspended");
    assert_eq!(t.exit_code(), STILL_ACTIVE);
    t.resume().unwrap();
    assert_eq!(t.join().unwrap(), 0);
    assert!(ran.load(Ordering::Acquire));
}

#[test]
fn priority_and_affinity_show_in_proc() {
    let first = CpuSet::current().unwrap().iter().next().unwrap();
    let mut one = CpuSet::new();
    one.insert(first);
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let running = Arc::new(AtomicBool::new(false));
    let r = running.clone();
    let t = ThreadBuilder::new()
        .priority(ThreadPriority::BelowNormal)
        .affinity(one)
        .ideal_processor(first)
        .suspended(true)
        .spawn(move || {
            r.store(true, Ordering::Release);
            while !s.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            0
        })
        .unwrap();
    t.resume().unwrap();
    let tid = t.tid();
    // Applied before the function runs: read them once it runs.
    while !running.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    assert_eq!(task_stat(tid)[16], "5", "nice");
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    assert!(
        status.contains(&format!("Cpus_allowed_list:\t{first}\n")),
        "{status}"
    );
    assert_eq!(t.ideal_processor(), Some(first));
    // Change them on the running thread by id.
    thread::set_thread_priority(tid, ThreadPriority::Lowest).unwrap();
    assert_eq!(task_stat(tid)[16], "10");
    thread::set_thread_priority(tid, ThreadPriority::Idle).unwrap();
    assert_eq!(task_stat(tid)[38], "5", "SCHED_IDLE policy");
    stop.store(true, Ordering::Release);
    t.join().unwrap();
}

#[test]
fn suspend_counts_and_the_context_shows_where_it_spins() {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let entering = Arc::new(AtomicBool::new(false));
    let e = entering.clone();
    let t = ThreadBuilder::new()
        .spawn(move || {
            e.store(true, Ordering::Release);
            // SAFETY: the spin routine only reads the flag until it is set.
            unsafe { taskloom_test_spin(Arc::as_ptr(&s)) };
            0
        })
        .unwrap();
    let tid = t.tid();
    let (lo, hi) = (
        taskloom_test_spin as *const () as u64,
        taskloom_test_spin_end as *const () as u64,
    );
    // Synchronised on what is seen, not on a sleep: once it is about to
    // enter the loop, suspend it until it is caught inside.
    while !entering.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    let mut tries = 0;
    loop {
        assert_eq!(suspend_thread(tid).unwrap(), 0);
        let rip = thread_context(tid).unwrap().rip;
        if (lo..hi).contains(&rip) {
            break;
        }
        tries += 1;
        assert!(tries < 10_000, "never caught in the spin loop");
        assert_eq!(resume_thread(tid).unwrap(), 1);
        std::thread::yield_now();
    }
    assert_eq!(suspend_thread(tid).unwrap(), 1);
    let ctx = thread_context(tid).unwrap();
    assert!(
        ctx.rip >= lo && ctx.rip < hi,
        "rip {:#x} not in the spin loop {lo:#x}..{hi:#x}",
        ctx.rip
    );
    assert_eq!(
        ctx.rdi,
        Arc::as_ptr(&stop) as u64,
        "rdi holds the flag's address"
    );
    // Suspended: its CPU time does not move.
    let before = task_stat(tid)[11].clone();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(task_stat(tid)[11], before, "a suspended thread ran");
    assert_eq!(resume_thread(tid).unwrap(), 2);
    assert!(thread_context(tid).is_ok(), "still suspended at count 1");
    assert_eq!(resume_thread(tid).unwrap(), 1);
    assert!(thread_context(tid).is_err(), "running again");
    assert_eq!(resume_thread(tid).unwrap(), 0, "not suspended");
    stop.store(true, Ordering::Release);
    t.join().unwrap();
}

#[test]
fn ten_thousand_suspends_of_a_busy_thread() {
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let (s, p) = (stop.clone(), progress.clone());
    let t = ThreadBuilder::new()
        .spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_add(1, Ordering::Relaxed);
            }
            0
        })
        .unwrap();
    let tid = t.tid();
    for _ in 0..10_000 {
        suspend_thread(tid).unwrap();
        resume_thread(tid).unwrap();
    }
    // No lost wake-up: it is still making progress.
    let a = progress.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        progress.load(Ordering::Relaxed) > a,
        "the thread stopped for good"
    );
    stop.store(true, Ordering::Release);
    assert!(t.wait_timeout(Duration::from_secs(10)));
    t.join().unwrap();
}

#[test]
fn wait_for_any_and_all_threads() {
    let slow_go = Arc::new(AtomicBool::new(false));
    let g = slow_go.clone();
    let slow = ThreadBuilder::new()
        .spawn(move || {
            while !g.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            1
        })
        .unwrap();
    let fast = ThreadBuilder::new().spawn(|| 2).unwrap();
    assert_eq!(
        thread::wait_any(&[&slow, &fast], Some(Duration::from_secs(10))),
        Some(1)
    );
    assert!(!thread::wait_all(
        &[&slow, &fast],
        Some(Duration::from_millis(30))
    ));
    slow_go.store(true, Ordering::Release);
    assert!(thread::wait_all(
        &[&slow, &fast],
        Some(Duration::from_secs(10))
    ));
    assert_eq!((slow.join().unwrap(), fast.join().unwrap()), (1, 2));
}

#[test]
fn a_panic_reaches_the_joiner() {
    let t = ThreadBuilder::new()
        .spawn(|| panic!("thread boom"))
        .unwrap();
    assert!(t.wait_timeout(Duration::from_secs(10)));
    assert_eq!(t.exit_code(), 101);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.join())).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"thread boom"));
}

#[test]
fn tls_slots_are_isolated_between_threads() {
    let slot = TlsIndex::alloc().unwrap();
    slot.set(1234);
    let t = ThreadBuilder::new()
        .spawn(move || {
            let before = slot.get();
            slot.set(99);
            (before == 0 && slot.get() == 99) as u32
        })
        .unwrap();
    assert_eq!(t.join().unwrap(), 1);
    assert_eq!(slot.get(), 1234);
    slot.free();
}

#[test]
fn context_of_a_thread_in_another_process() {
    let mut child = taskloom::process::ProcessBuilder::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    match thread::remote_thread_context(child.pid()) {
        Ok(ctx) => assert!(ctx.rip != 0 && ctx.rsp != 0, "{ctx:?}"),
        // Yama or a container may forbid ptrace even of our own child: then the error says so.
        Err(e) => {
            assert!(matches!(e, taskloom::Error::PermissionDenied { .. }), "{e}");
            eprintln!("context_of_a_thread_in_another_process: ptrace not permitted here: {e}");
        }
    }
    child.terminate().unwrap();
    child.wait().unwrap();
}

fn gettid() -> i32 {
    rustix::thread::gettid().as_raw_nonzero().get()
}

#[test]
fn a_thread_that_suspends_itself_is_resumed_by_another() {
    let (tx, rx) = std::sync::mpsc::channel();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let t = std::thread::spawn(move || {
        let me = gettid();
        tx.send(me).unwrap();
        let previous = taskloom::thread::suspend_thread(me).unwrap();
        d.store(true, Ordering::SeqCst);
        previous
    });
    let tid = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // ResumeThread returns 1 once the thread is suspended (0 before).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match taskloom::thread::resume_thread(tid).unwrap() {
            1 => break,
            0 => assert!(std::time::Instant::now() < deadline, "it never suspended"),
            n => panic!("suspend count {n}"),
        }
        std::thread::yield_now();
    }
    let (tx2, rx2) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx2.send(t.join().unwrap()).unwrap());
    assert_eq!(rx2.recv_timeout(Duration::from_secs(10)).unwrap(), 0);
    assert!(done.load(Ordering::SeqCst));
}

#[test]
fn a_stray_suspend_signal_with_any_value_is_harmless() {
    // The handler is installed by a first suspension.
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        tx.send(gettid()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    });
    let tid = rx.recv().unwrap();
    taskloom::thread::suspend_thread(tid).unwrap();
    taskloom::thread::resume_thread(tid).unwrap();
    t.join().unwrap();
    // Anyone may queue the signal, with any value: nothing parks, nothing is read.
    let value = libc::sigval {
        sival_ptr: 0xdead_beef as *mut libc::c_void,
    };
    // SAFETY: sigqueue to our own process with a plain value.
    let r = unsafe { libc::sigqueue(std::process::id() as i32, libc::SIGRTMIN() + 6, value) };
    assert_eq!(r, 0);
    std::thread::sleep(Duration::from_millis(50));
}

#[test]
fn suspending_a_thread_that_ends_first_is_an_error_not_a_hang() {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        // It never takes the suspend signal: blocked until it ends.
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: building a signal set and blocking it in this thread.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            libc::sigaddset(set.as_mut_ptr(), libc::SIGRTMIN() + 6);
            libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut());
        }
        tx.send(gettid()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    });
    let tid = rx.recv().unwrap();
    let started = std::time::Instant::now();
    let r = taskloom::thread::suspend_thread(tid);
    t.join().unwrap();
    assert!(
        matches!(r, Err(taskloom::Error::NoSuchThread { tid: t }) if t == tid),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // And nothing is left counted for it.
    assert_eq!(taskloom::thread::resume_thread(tid).unwrap(), 0);
}

fn float_environment() -> (u32, u16) {
    let (mut mxcsr, mut fpucw) = (0u32, 0u16);
    // SAFETY: stores the two control registers into valid stack memory.
    unsafe {
        std::arch::asm!(
            "stmxcsr [{m}]",
            "fnstcw [{c}]",
            m = in(reg) &mut mxcsr,
            c = in(reg) &mut fpucw,
            options(nostack),
        );
    }
    (mxcsr, fpucw)
}

#[test]
fn a_new_thread_starts_with_the_default_float_environment() {
    // The creator flushes denormals to zero and rounds toward zero; its
    // thread must not inherit that (Windows gives every thread the default).
    let t = std::thread::spawn(|| {
        let odd: u32 = 0x1f80 | 0x8000 | 0x6000;
        // SAFETY: loads MXCSR from valid stack memory, in this helper thread only.
        unsafe { std::arch::asm!("ldmxcsr [{m}]", m = in(reg) &odd, options(nostack, readonly)) };
        let seen = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        let child = ThreadBuilder::new()
            .spawn(move || {
                let (m, c) = float_environment();
                s.store(((m & 0xffc0) as u64) << 16 | c as u64, Ordering::SeqCst);
                0
            })
            .unwrap();
        child.join().unwrap();
        let got = seen.load(Ordering::SeqCst);
        let (mine, _) = float_environment();
        (got, mine)
    });
    let (got, mine) = t.join().unwrap();
    assert_eq!(
        mine & 0xffc0,
        0x1f80 | 0x8000 | 0x6000,
        "the creator's own setting"
    );
    // Control bits only (the low six are sticky exception flags).
    assert_eq!(got >> 16, 0x1f80, "MXCSR of the new thread");
    assert_eq!(got & 0xffff, 0x037f, "x87 control word of the new thread");
}

#[test]
fn a_thread_created_suspended_counts_one() {
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let t = ThreadBuilder::new()
        .suspended(true)
        .spawn(move || {
            r.store(true, Ordering::SeqCst);
            0
        })
        .unwrap();
    // CREATE_SUSPENDED: count 1. Suspend → 1, Resume → 2, Resume → 1 starts it.
    assert_eq!(t.suspend().unwrap(), 1);
    assert_eq!(t.resume().unwrap(), 2);
    std::thread::sleep(Duration::from_millis(20));
    assert!(!ran.load(Ordering::SeqCst), "still suspended at count 1");
    assert_eq!(t.resume().unwrap(), 1);
    assert_eq!(t.join().unwrap(), 0);
    assert!(ran.load(Ordering::SeqCst));
}

#[test]
fn descriptions_come_back_whole_while_the_kernel_keeps_fifteen_bytes() {
    use taskloom::thread::{current_thread_id, set_thread_description, thread_description};
    let long = "worker: parses the incoming ✓ queue";
    let t = ThreadBuilder::new()
        .name(long)
        .spawn(move || {
            let me = current_thread_id();
            assert_eq!(thread_description(me).unwrap(), long);
            let comm = std::fs::read_to_string(format!("/proc/self/task/{me}/comm")).unwrap();
            // 15 bytes, cut at a character boundary.
            assert_eq!(comm, "worker: parses \n");
            // Renamed by other means: the kernel's name is the description.
            std::fs::write(format!("/proc/self/task/{me}/comm"), "other").unwrap();
            assert_eq!(thread_description(me).unwrap(), "other");
            set_thread_description(me, "short").unwrap();
            assert_eq!(thread_description(me).unwrap(), "short");
            0
        })
        .unwrap();
    assert_eq!(t.join().unwrap(), 0);
    assert!(set_thread_description(current_thread_id(), "a\0b").is_err());
}

#[test]
fn priority_and_affinity_read_back_as_windows_returns_them() {
    use taskloom::thread::{
        ThreadPriority, current_thread_id, set_thread_affinity, set_thread_priority,
        thread_priority,
    };
    let t = ThreadBuilder::new()
        .spawn(|| {
            let me = current_thread_id();
            assert_eq!(thread_priority(me).unwrap(), ThreadPriority::Normal);
            // Lowering needs no privilege.
            set_thread_priority(me, ThreadPriority::BelowNormal).unwrap();
            assert_eq!(thread_priority(me).unwrap(), ThreadPriority::BelowNormal);
            set_thread_priority(me, ThreadPriority::Idle).unwrap();
            assert_eq!(thread_priority(me).unwrap(), ThreadPriority::Idle);
            // SetThreadAffinityMask returns the mask before.
            let all = taskloom::CpuSet::current().unwrap();
            let first = all.iter().next().unwrap();
            let mut one = taskloom::CpuSet::new();
            one.insert(first);
            let before = set_thread_affinity(me, &one).unwrap();
            assert_eq!(before, all);
            let again = set_thread_affinity(me, &all).unwrap();
            assert_eq!(again, one);
            0
        })
        .unwrap();
    assert_eq!(t.join().unwrap(), 0);
}

#[test]
fn stack_limits_are_the_threads_or_the_running_fibers() {
    use taskloom::fiber::{
        Fiber, convert_fiber_to_thread, convert_thread_to_fiber, switch_to_fiber,
    };
    use taskloom::thread::current_stack_limits;
    let t = ThreadBuilder::new()
        .stack_reserve(512 * 1024)
        .spawn(|| {
            let local = 0u8;
            let here = &local as *const u8 as usize;
            let (low, high) = current_stack_limits().unwrap();
            assert!(low < here && here < high, "{low:#x} {here:#x} {high:#x}");
            assert!(high - low >= 512 * 1024 - 64 * 1024, "{}", high - low);
            // Inside a fiber: the fiber's own stack.
            let main = convert_thread_to_fiber().unwrap();
            let seen = std::rc::Rc::new(std::cell::Cell::new((0usize, 0usize, 0usize)));
            let s = seen.clone();
            let f = Fiber::new(move || {
                let local = 0u8;
                let (lo, hi) = current_stack_limits().unwrap();
                s.set((lo, hi, &local as *const u8 as usize));
                switch_to_fiber(main);
            })
            .unwrap();
            switch_to_fiber(f.to_ref());
            let (lo, hi, at) = seen.get();
            assert!(lo < at && at < hi, "{lo:#x} {at:#x} {hi:#x}");
            assert!(hi <= low || lo >= high, "not the thread's stack");
            drop(f);
            convert_fiber_to_thread().unwrap();
            0
        })
        .unwrap();
    assert_eq!(t.join().unwrap(), 0);
}

static LANDED: AtomicBool = AtomicBool::new(false);
static LANDED_ARG: AtomicU64 = AtomicU64::new(0);

/// Where the redirected thread goes: it records its argument and stays
/// (it has no frame to return to).
extern "C" fn landing(arg: u64) -> ! {
    LANDED_ARG.store(arg, Ordering::SeqCst);
    LANDED.store(true, Ordering::SeqCst);
    loop {
        // SAFETY: pause has no preconditions; it sleeps until a signal.
        unsafe { libc::pause() };
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_context_set_on_a_suspended_thread_runs_on_resume() {
    let spinning = Arc::new(AtomicBool::new(true));
    let s = spinning.clone();
    let t = ThreadBuilder::new()
        .spawn(move || {
            while s.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
            0
        })
        .unwrap();
    t.suspend().unwrap();
    let before = t.context().unwrap();
    // A call to `landing(0x5eed)`: rip at its entry, rdi its argument, rsp
    // as after a call (16-byte aligned before the return address).
    let mut ctx = before;
    ctx.rip = landing as *const () as usize as u64;
    ctx.rdi = 0x5eed;
    ctx.rsp = ((before.rsp - 4096) & !15) - 8;
    // SAFETY: `landing` never returns and uses only statics; its stack is
    // 4 KiB below where the suspended thread's own was, in the same
    // (otherwise unused from here) stack, aligned as after a call.
    unsafe { t.set_context(&ctx) }.unwrap();
    assert_eq!(
        t.context().unwrap().rip,
        landing as *const () as usize as u64,
        "read back"
    );
    t.resume().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !LANDED.load(Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the redirected call never ran"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(LANDED_ARG.load(Ordering::SeqCst), 0x5eed);
    // Not suspended any more: setting a context is refused, by name.
    // SAFETY: refused before anything is written (the thread is not suspended).
    let err = unsafe { t.set_context(&before) }.unwrap_err();
    assert!(err.to_string().contains("not suspended"), "{err}");
    spinning.store(false, Ordering::Relaxed);
}

#[test]
fn a_thread_that_is_gone_is_named_as_a_thread() {
    use taskloom::thread::{
        ThreadPriority, set_thread_affinity, set_thread_priority, thread_priority,
    };
    // A thread id above any pid_max: never a stranger's.
    let gone = i32::MAX;
    for r in [
        thread_priority(gone).map(drop),
        set_thread_priority(gone, ThreadPriority::Normal),
        set_thread_affinity(gone, &CpuSet::current().unwrap()).map(drop),
    ] {
        let e = r.unwrap_err();
        assert!(
            matches!(e, taskloom::Error::NoSuchThread { tid } if tid == gone),
            "{e}"
        );
        assert_eq!(e.kind(), taskloom::ErrorKind::NotFound);
        assert_eq!(e.to_string(), format!("no such thread: {gone}"));
    }
}

/// Some register context (its values do not matter: it is refused).
fn me_ctx() -> taskloom::thread::ThreadContext {
    let mut child = taskloom::process::ProcessBuilder::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    let h = taskloom::thread::ThreadHandle::open(
        child.pid(),
        taskloom::thread::ThreadAccess::GET_CONTEXT,
    )
    .unwrap();
    let ctx = h.context().unwrap();
    child.terminate().unwrap();
    child.wait().unwrap();
    ctx
}

/// The state letter of a thread (`/proc/<tid>/stat`).
fn thread_state(tid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{tid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .and_then(|i| stat[i + 2..].chars().next())
        .unwrap_or('?')
}

#[test]
fn open_thread_of_another_process_suspends_reads_and_redirects_it() {
    use taskloom::process::{ExitStatus, ProcessBuilder, Stdio};
    use taskloom::thread::{ThreadAccess, ThreadHandle};
    // A child that burns CPU: its main thread id is its pid.
    let mut child = ProcessBuilder::new("sh")
        .arg("-c")
        .arg("while :; do :; done")
        .stdin(Stdio::Null)
        .spawn()
        .unwrap();
    let tid = child.pid();
    let all = ThreadAccess::SUSPEND_RESUME | ThreadAccess::GET_CONTEXT | ThreadAccess::SET_CONTEXT;
    let t = ThreadHandle::open(tid, all).unwrap();
    assert_eq!(t.process_id(), child.pid());
    // Suspend counts as SuspendThread returns them.
    assert_eq!(t.suspend().unwrap(), 0);
    assert_eq!(thread_state(tid), 't', "held in a ptrace stop");
    // This process's own threads are not given registers by safe code.
    let me = ThreadHandle::open(taskloom::thread::current_thread_id(), all).unwrap();
    assert!(me.set_context(&me_ctx()).is_err());
    assert_eq!(t.suspend().unwrap(), 1);
    // Stopped: its CPU time does not move.
    let cpu = || child.times().map(|t| t.user + t.kernel).unwrap();
    let before = cpu();
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(cpu(), before);
    // Another handle (any thread) sees and changes the same count.
    let other = std::thread::spawn(move || {
        let h = ThreadHandle::open(tid, ThreadAccess::SUSPEND_RESUME).unwrap();
        h.resume().unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(other, 2);
    let ctx = t.context().unwrap();
    assert_ne!(ctx.registers()[0].1, 0, "a program counter");
    // A handle without the right is refused, whatever ptrace would allow.
    let reader = ThreadHandle::open(tid, ThreadAccess::GET_CONTEXT).unwrap();
    let e = reader.suspend().unwrap_err();
    assert!(e.to_string().contains("THREAD_SUSPEND_RESUME"), "{e}");
    assert!(reader.set_context(&ctx).is_err());
    assert_eq!(t.resume().unwrap(), 1);
    assert_eq!(t.resume().unwrap(), 0, "not suspended any more");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(cpu() > before, "it runs again");
    // SetThreadContext: suspended, sent to address 0, resumed: it faults there.
    t.suspend().unwrap();
    let mut bad = t.context().unwrap();
    bad.rip = 0;
    t.set_context(&bad).unwrap();
    assert_eq!(t.context().unwrap().rip, 0);
    t.resume().unwrap();
    let status: ExitStatus = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}");
}

#[test]
fn open_thread_of_this_process_shares_the_suspend_counts() {
    use taskloom::thread::{ThreadAccess, ThreadHandle};
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let worker = std::thread::spawn(move || {
        tx.send(taskloom::thread::current_thread_id()).unwrap();
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            std::hint::spin_loop();
        }
    });
    let tid = rx.recv().unwrap();
    let h = ThreadHandle::open(
        tid,
        ThreadAccess::SUSPEND_RESUME | ThreadAccess::GET_CONTEXT,
    )
    .unwrap();
    assert_eq!(h.process_id(), std::process::id() as i32);
    assert_eq!(h.suspend().unwrap(), 0);
    assert_eq!(taskloom::thread::suspend_thread(tid).unwrap(), 1);
    assert!(h.context().is_ok());
    assert_eq!(h.resume().unwrap(), 2);
    assert_eq!(taskloom::thread::resume_thread(tid).unwrap(), 1);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    worker.join().unwrap();
    assert!(matches!(
        ThreadHandle::open(i32::MAX - 1, ThreadAccess::SYNCHRONIZE),
        Err(taskloom::Error::NoSuchThread { .. })
    ));
}
