//! The fiber API: semantics, FLS, panics, stacks. Each test runs on its own
//! thread (the test harness's), so each converts that thread itself.
//! They run on Linux and on Windows (under Wine in CI), where the fibers
//! are the system's own; the few that read Linux's own records say so.
#![cfg(any(target_os = "linux", windows))]

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use taskloom::fiber::{self, Fiber, FiberError, FiberRef, FlsKey};

fn panic_text(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn convert_and_convert_back() {
    assert!(!fiber::is_thread_a_fiber());
    assert_eq!(fiber::current_fiber(), None);
    assert_eq!(fiber::convert_fiber_to_thread(), Err(FiberError::NotFiber));
    let main = fiber::convert_thread_to_fiber().unwrap();
    assert!(fiber::is_thread_a_fiber());
    assert_eq!(fiber::current_fiber(), Some(main));
    assert_eq!(
        fiber::convert_thread_to_fiber(),
        Err(FiberError::AlreadyFiber)
    );
    // Only the thread's own fiber may convert back.
    let result = Rc::new(Cell::new(None));
    let r = result.clone();
    let f = Fiber::new(move || {
        r.set(Some(fiber::convert_fiber_to_thread()));
        fiber::switch_to_fiber(main);
    })
    .unwrap();
    fiber::switch_to_fiber(f.to_ref());
    assert_eq!(result.get(), Some(Err(FiberError::NotThreadFiber)));
    fiber::convert_fiber_to_thread().unwrap();
    assert!(!fiber::is_thread_a_fiber());
}

#[test]
fn creating_does_not_run_and_switching_is_symmetric() {
    let main = fiber::convert_thread_to_fiber().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let refs: Rc<RefCell<Vec<FiberRef>>> = Rc::default();
    let mut fibers = Vec::new();
    for name in ["a", "b", "c"] {
        let (log, refs) = (log.clone(), refs.clone());
        fibers.push(
            Fiber::new(move || {
                log.borrow_mut().push(name);
                // a -> b -> c -> main: each switches to the next, never back to its resumer.
                let next = match name {
                    "a" => refs.borrow()[1],
                    "b" => refs.borrow()[2],
                    _ => main,
                };
                fiber::switch_to_fiber(next);
                log.borrow_mut().push(name);
                fiber::switch_to_fiber(main);
            })
            .unwrap(),
        );
    }
    refs.borrow_mut().extend(fibers.iter().map(|f| f.to_ref()));
    assert!(log.borrow().is_empty(), "creating ran the fiber");
    fiber::switch_to_fiber(fibers[0].to_ref());
    assert_eq!(*log.borrow(), ["a", "b", "c"]);
    // Resume b in the middle: it continues after its own switch.
    fiber::switch_to_fiber(fibers[1].to_ref());
    assert_eq!(*log.borrow(), ["a", "b", "c", "b"]);
    drop(fibers);
    fiber::convert_fiber_to_thread().unwrap();
}

#[test]
fn current_fiber_and_data() {
    let main = fiber::convert_thread_to_fiber().unwrap();
    let seen = Rc::new(Cell::new((0u64, 0u64, false)));
    let s = seen.clone();
    let f = Fiber::builder()
        .data(String::from("payload"))
        .spawn(move || {
            let me = fiber::current_fiber().unwrap();
            let ok =
                fiber::fiber_data(|d: Option<&String>| d.map(String::as_str) == Some("payload"));
            let wrong_type = fiber::fiber_data(|d: Option<&u32>| d.is_none());
            s.set((me.id(), 0, ok && wrong_type));
            fiber::switch_to_fiber(main);
        })
        .unwrap();
    fiber::switch_to_fiber(f.to_ref());
    assert_eq!(seen.get(), (f.id(), 0, true));
    assert!(
        fiber::fiber_data(|d: Option<&String>| d.is_none()),
        "the thread's fiber has no data"
    );
    fiber::convert_fiber_to_thread().unwrap();
}

#[test]
fn bad_switches_panic_clearly() {
    let f = Fiber::new(|| {}).unwrap();
    let r = f.to_ref();
    let msg = panic_text(|| fiber::switch_to_fiber(r));
    assert!(msg.contains("not a fiber"), "{msg}");

    let main = fiber::convert_thread_to_fiber().unwrap();
    let msg = panic_text(|| fiber::switch_to_fiber(main));
    assert!(msg.contains("is the running fiber"), "{msg}");

    fiber::switch_to_fiber(r); // runs to completion and comes back
    assert!(f.is_finished());
    let msg = panic_text(|| fiber::switch_to_fiber(r));
    assert!(msg.contains("has finished"), "{msg}");

    drop(f);
    assert!(!r.is_alive());
    let msg = panic_text(|| fiber::switch_to_fiber(r));
    assert!(msg.contains("was deleted"), "{msg}");
    // A new fiber reusing the record does not revive the old reference.
    let g = Fiber::new(|| {}).unwrap();
    let msg = panic_text(|| fiber::switch_to_fiber(r));
    assert!(msg.contains("was deleted"), "{msg}");
    fiber::switch_to_fiber(g.to_ref());
    fiber::convert_fiber_to_thread().unwrap();
}

#[test]
fn returning_goes_to_the_starter_or_the_thread() {
    let main = fiber::convert_thread_to_fiber().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let inner = Rc::new(Fiber::new(move || l.borrow_mut().push("inner returns")).unwrap());
    let (l, i) = (log.clone(), inner.clone());
    let outer = Fiber::new(move || {
        fiber::switch_to_fiber(i.to_ref());
        // inner returned: control came back here, to the fiber that started it.
        l.borrow_mut().push("outer resumed");
        fiber::switch_to_fiber(main);
    })
    .unwrap();
    fiber::switch_to_fiber(outer.to_ref());
    assert_eq!(*log.borrow(), ["inner returns", "outer resumed"]);
    assert!(inner.is_finished());

    // The successor is the starter, not the latest resumer: `worker` is
    // started by `a`, suspends to main, is resumed by `b`, and returns to `a`.
    let worker_ref: Rc<Cell<Option<FiberRef>>> = Rc::default();
    let l = log.clone();
    let worker = Fiber::new(move || {
        l.borrow_mut().push("worker started");
        fiber::switch_to_fiber(main);
        l.borrow_mut().push("worker returns");
    })
    .unwrap();
    worker_ref.set(Some(worker.to_ref()));
    let (l, w) = (log.clone(), worker_ref.clone());
    let a = Fiber::new(move || {
        fiber::switch_to_fiber(w.get().unwrap());
        l.borrow_mut().push("a got control back");
        fiber::switch_to_fiber(main);
    })
    .unwrap();
    let (l, w) = (log.clone(), worker_ref.clone());
    let b = Fiber::new(move || {
        fiber::switch_to_fiber(w.get().unwrap());
        l.borrow_mut().push("b got control back");
        fiber::switch_to_fiber(main);
    })
    .unwrap();
    log.borrow_mut().clear();
    fiber::switch_to_fiber(a.to_ref()); // a starts worker, worker switches to main
    fiber::switch_to_fiber(b.to_ref()); // b resumes worker, which returns to a, which returns here
    assert_eq!(
        *log.borrow(),
        ["worker started", "worker returns", "a got control back"]
    );
    assert!(worker.is_finished() && !b.is_finished());

    // A fiber whose starter was deleted returns to the thread's fiber.
    log.borrow_mut().clear();
    let l = log.clone();
    let orphan = Rc::new(
        Fiber::new(move || {
            l.borrow_mut().push("orphan started");
            fiber::switch_to_fiber(main);
            l.borrow_mut().push("orphan returns");
        })
        .unwrap(),
    );
    let o = orphan.clone();
    let starter = Fiber::new(move || {
        fiber::switch_to_fiber(o.to_ref());
        unreachable!("a deleted fiber was resumed");
    })
    .unwrap();
    fiber::switch_to_fiber(starter.to_ref()); // starter starts orphan, orphan switches to main
    drop(starter); // DeleteFiber on the suspended starter
    fiber::switch_to_fiber(orphan.to_ref()); // orphan returns: to main, the thread's fiber
    assert_eq!(*log.borrow(), ["orphan started", "orphan returns"]);
    assert!(orphan.is_finished());
    fiber::convert_fiber_to_thread().unwrap();
}

#[test]
fn a_panic_in_a_fiber_reaches_whoever_gets_control() {
    fiber::convert_thread_to_fiber().unwrap();
    let f = Fiber::new(|| panic!("boom in fiber")).unwrap();
    let msg = panic_text(|| fiber::switch_to_fiber(f.to_ref()));
    assert_eq!(msg, "boom in fiber");
    assert!(f.is_finished());
    // The thread's fiber is still intact and can run more fibers.
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = Fiber::new(move || r.set(true)).unwrap();
    fiber::switch_to_fiber(g.to_ref());
    assert!(ran.get());
    fiber::convert_fiber_to_thread().unwrap();
}

struct Noisy(&'static str, Rc<RefCell<Vec<String>>>);
impl Drop for Noisy {
    fn drop(&mut self) {
        self.1.borrow_mut().push(format!("drop {}", self.0));
    }
}

/// FLS indices are the process's: the tests that count on which index
/// comes next take turns.
fn fls_serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn deleting_frees_the_closure_and_fls_values() {
    let _fls = fls_serial();
    let main = fiber::convert_thread_to_fiber().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    // Never started: the closure (and what it owns) is dropped on delete.
    let captured = Noisy("closure", log.clone());
    let f = Fiber::new(move || drop(captured)).unwrap();
    drop(f);
    assert_eq!(*log.borrow(), ["drop closure"]);

    // Started and suspended: its FLS values are destroyed, in slot order.
    log.borrow_mut().clear();
    let k1 = Rc::new(FlsKey::<Noisy>::new().unwrap());
    let k2 = Rc::new(FlsKey::<Noisy>::new().unwrap());
    let (a, b, l) = (k1.clone(), k2.clone(), log.clone());
    let f = Fiber::new(move || {
        b.set(Noisy("second slot", l.clone()));
        a.set(Noisy("first slot", l.clone()));
        fiber::switch_to_fiber(main);
    })
    .unwrap();
    fiber::switch_to_fiber(f.to_ref());
    assert!(log.borrow().is_empty());
    assert!(k1.with(|v| v.is_none()), "FLS is per fiber");
    drop(f);
    assert_eq!(*log.borrow(), ["drop first slot", "drop second slot"]);
    fiber::convert_fiber_to_thread().unwrap();
}

#[test]
fn fls_values_are_per_fiber_and_free_destroys_them_all() {
    let _fls = fls_serial();
    let main = fiber::convert_thread_to_fiber().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    // The key lives in a cell the fibers borrow briefly, so it can be freed while they are suspended.
    let key: Rc<RefCell<Option<FlsKey<Noisy>>>> =
        Rc::new(RefCell::new(Some(FlsKey::new().unwrap())));
    let with_key = |k: &Rc<RefCell<Option<FlsKey<Noisy>>>>, f: &mut dyn FnMut(&FlsKey<Noisy>)| {
        f(k.borrow().as_ref().unwrap())
    };
    with_key(&key, &mut |k| {
        k.set(Noisy("main", log.clone()));
    });
    let mut fibers = Vec::new();
    for name in ["f1", "f2", "f3"] {
        let (k, l) = (key.clone(), log.clone());
        fibers.push(
            Fiber::new(move || {
                {
                    let guard = k.borrow();
                    let k = guard.as_ref().unwrap();
                    assert!(k.with(|v| v.is_none()));
                    k.set(Noisy(name, l));
                    assert_eq!(k.with(|v| v.map(|n| n.0)), Some(name));
                }
                fiber::switch_to_fiber(main);
            })
            .unwrap(),
        );
    }
    for f in &fibers {
        fiber::switch_to_fiber(f.to_ref());
    }
    with_key(&key, &mut |k| {
        assert_eq!(k.with(|v| v.map(|n| n.0)), Some("main"))
    });
    assert!(log.borrow().is_empty());
    key.borrow_mut().take().unwrap().free();
    let mut dropped = log.borrow().clone();
    dropped.sort();
    assert_eq!(
        dropped,
        ["drop f1", "drop f2", "drop f3", "drop main"],
        "each value destroyed once"
    );
    // Replacing a value returns the old one rather than destroying it.
    let k = FlsKey::<u32>::new().unwrap();
    assert_eq!(k.set(1), None);
    assert_eq!(k.set(2), Some(1));
    assert_eq!(k.get(), Some(2));
    assert_eq!(k.take(), Some(2));
    drop(fibers);
    fiber::convert_fiber_to_thread().unwrap();
}

#[test]
fn fls_callbacks_and_thread_exit() {
    let _fls = fls_serial();
    use std::sync::Mutex;
    static CALLED: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    std::thread::spawn(|| {
        let key = FlsKey::<u32>::with_callback(|v| CALLED.lock().unwrap().push(v)).unwrap();
        key.set(7); // not a fiber yet: the thread's own record
        key.set(8); // the replaced value goes through the callback
        assert_eq!(key.with(|v| v.copied()), Some(8));
        fiber::convert_thread_to_fiber().unwrap();
        std::mem::forget(key); // keep the value until the thread exits
    })
    .join()
    .unwrap();
    assert_eq!(
        *CALLED.lock().unwrap(),
        [7, 8],
        "value 8 destroyed at thread exit"
    );
}

#[test]
fn ten_thousand_live_fibers_on_one_thread() {
    let main = fiber::convert_thread_to_fiber().unwrap();
    let count = Rc::new(Cell::new(0u32));
    let fibers: Vec<Fiber> = (0..10_000)
        .map(|_| {
            let c = count.clone();
            Fiber::builder()
                .stack_reserve(32 * 1024)
                .spawn(move || {
                    c.set(c.get() + 1);
                    fiber::switch_to_fiber(main);
                    c.set(c.get() + 1);
                    fiber::switch_to_fiber(main);
                })
                .unwrap()
        })
        .collect();
    for f in &fibers {
        fiber::switch_to_fiber(f.to_ref());
    }
    assert_eq!(count.get(), 10_000);
    for f in &fibers {
        fiber::switch_to_fiber(f.to_ref());
    }
    assert_eq!(count.get(), 20_000);
    drop(fibers);
    fiber::convert_fiber_to_thread().unwrap();
}

/// Read-write mappings of exactly `len` bytes in this process.
#[cfg(target_os = "linux")]
fn mappings_of(len: usize) -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| {
            let mut f = l.split_whitespace();
            let (Some(range), Some(perms)) = (f.next(), f.next()) else {
                return false;
            };
            let Some((a, b)) = range.split_once('-') else {
                return false;
            };
            let (a, b) = (
                usize::from_str_radix(a, 16).unwrap(),
                usize::from_str_radix(b, 16).unwrap(),
            );
            perms.starts_with("rw") && b - a == len
        })
        .count()
}

#[test]
#[cfg(target_os = "linux")] // counts mappings in /proc/self/maps
fn kept_stacks_are_reused_and_unmapped_when_the_thread_exits() {
    // A stack size no other test uses, so its mappings can be counted.
    let page = 4096;
    let reserve = 777 * page;
    let t = std::thread::spawn(move || {
        let main = fiber::convert_thread_to_fiber().unwrap();
        let spawn = || {
            Fiber::builder()
                .stack_reserve(reserve)
                .spawn(move || fiber::switch_to_fiber(main))
                .unwrap()
        };
        // 70 fibers deleted: the thread keeps at most 64 stacks, unmaps the rest.
        let many: Vec<Fiber> = (0..70).map(|_| spawn()).collect();
        drop(many);
        let capped = mappings_of(reserve);
        // Ten that run to their end (a fiber deleted while suspended keeps
        // its stack for good instead: see the test below).
        let fibers: Vec<Fiber> = (0..10)
            .map(|_| {
                Fiber::builder()
                    .stack_reserve(reserve)
                    .spawn(|| {})
                    .unwrap()
            })
            .collect();
        for f in &fibers {
            fiber::switch_to_fiber(f.to_ref());
        }
        drop(fibers); // deleted: their stacks are kept for reuse
        let kept = mappings_of(reserve);
        // Reusing: ten more fibers of the same size map nothing new.
        let again: Vec<Fiber> = (0..10).map(|_| spawn()).collect();
        let reused = mappings_of(reserve);
        drop(again);
        fiber::convert_fiber_to_thread().unwrap();
        (capped, kept, reused)
    });
    let (capped, kept, reused) = t.join().unwrap();
    assert_eq!(capped, 64, "at most 64 kept stacks per thread");
    assert_eq!(kept, 64, "ten more deleted fibers reused kept stacks");
    assert_eq!(reused, 64, "new fibers took the kept stacks");
    assert_eq!(mappings_of(reserve), 0, "the thread's exit unmapped them");
}

#[test]
fn a_fiber_may_delete_itself() {
    let main = fiber::convert_thread_to_fiber().unwrap();
    let slot: Rc<RefCell<Option<Fiber>>> = Rc::default();
    let s = slot.clone();
    let f = Fiber::new(move || {
        let me = s.borrow_mut().take();
        drop(me); // deferred: this fiber is running
        fiber::switch_to_fiber(main);
        unreachable!("a deleted fiber was resumed");
    })
    .unwrap();
    let r = f.to_ref();
    *slot.borrow_mut() = Some(f);
    fiber::switch_to_fiber(r);
    assert!(!r.is_alive(), "deleted once it switched away");
    fiber::convert_fiber_to_thread().unwrap();
}

#[cfg(target_arch = "x86_64")]
fn mxcsr() -> u32 {
    let mut v = 0u32;
    // SAFETY: stmxcsr stores 4 bytes into `v`.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut v) };
    v
}

#[cfg(target_arch = "x86_64")]
fn set_mxcsr(v: u32) {
    // SAFETY: loads a valid MXCSR value (only the rounding bits differ).
    unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &v) };
}

#[test]
#[cfg(target_arch = "x86_64")]
fn float_switch_keeps_each_fibers_rounding_mode() {
    let main = fiber::convert_thread_to_fiber_ex(true).unwrap();
    let original = mxcsr();
    let toward_zero = original | (3 << 13);
    let seen = Rc::new(Cell::new(0u32));
    let s = seen.clone();
    let f = Fiber::builder()
        .float_switch(true)
        .spawn(move || {
            set_mxcsr(toward_zero);
            fiber::switch_to_fiber(main);
            s.set(mxcsr());
            set_mxcsr(toward_zero & !(3 << 13));
            fiber::switch_to_fiber(main);
        })
        .unwrap();
    fiber::switch_to_fiber(f.to_ref());
    assert_eq!(
        mxcsr(),
        original,
        "the fiber's rounding mode leaked into the thread's fiber"
    );
    fiber::switch_to_fiber(f.to_ref());
    assert_eq!(
        seen.get(),
        toward_zero,
        "the fiber's rounding mode was not restored"
    );
    set_mxcsr(original);
    drop(f);
    fiber::convert_fiber_to_thread().unwrap();
}

#[test]
#[cfg(target_os = "linux")] // on Windows an overflow is the system's (mod docs)
fn stack_overflow_prints_which_fiber_and_aborts() {
    // In a forked child, with stderr on a pipe: an overflow must abort, never return.
    let (mut r, w) = std::io::pipe().unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: the child only converts, overflows a fiber stack (no locks), and dies.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: redirect stderr in the child.
        unsafe { libc::dup2(w.as_raw_fd(), 2) };
        #[allow(unconditional_recursion)]
        fn recurse(depth: u64) -> u64 {
            let buf = [depth; 64];
            std::hint::black_box(&buf);
            recurse(depth + 1) + buf[3]
        }
        fiber::convert_thread_to_fiber().unwrap();
        let f = Fiber::builder().stack_reserve(64 * 1024).spawn(|| {
            std::hint::black_box(recurse(0));
        });
        let f = f.unwrap();
        fiber::switch_to_fiber(f.to_ref());
        // SAFETY: not reached if the overflow aborted.
        unsafe { libc::_exit(0) };
    }
    drop(w);
    let mut out = String::new();
    use std::io::Read;
    r.read_to_string(&mut out).unwrap();
    let mut status = 0;
    // SAFETY: reaping our forked child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGABRT,
        "status {status:#x}, stderr: {out}"
    );
    assert!(out.contains("fiber stack overflow in fiber #"), "{out}");
}

#[test]
fn deleting_a_suspended_fiber_never_frees_frames_others_borrow() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    static STOP: AtomicBool = AtomicBool::new(false);
    static DONE: AtomicBool = AtomicBool::new(false);
    static READS: AtomicU64 = AtomicU64::new(0);
    static WRONG: AtomicU64 = AtomicU64::new(0);
    let main = fiber::convert_thread_to_fiber().unwrap();
    // In safe code: a scoped thread borrows a local of the fiber's stack, and
    // the fiber is deleted while suspended inside the scope.
    let f = Fiber::new(move || {
        let value: u64 = 0x5eed_5eed_5eed_5eed;
        let value = &value;
        std::thread::scope(|sc| {
            sc.spawn(move || {
                while !STOP.load(Ordering::SeqCst) {
                    if *std::hint::black_box(value) != 0x5eed_5eed_5eed_5eed {
                        WRONG.fetch_add(1, Ordering::SeqCst);
                    }
                    READS.fetch_add(1, Ordering::SeqCst);
                    std::thread::yield_now();
                }
                DONE.store(true, Ordering::SeqCst);
            });
            fiber::switch_to_fiber(main);
            unreachable!("never resumed");
        });
    })
    .unwrap();
    fiber::switch_to_fiber(f.to_ref());
    drop(f);
    // New fibers of the same size would get a pooled stack: they write all over theirs.
    for _ in 0..8 {
        let g = Fiber::new(move || {
            let junk = [0xffu8; 16 * 1024];
            std::hint::black_box(&junk);
            fiber::switch_to_fiber(main);
        })
        .unwrap();
        fiber::switch_to_fiber(g.to_ref());
    }
    let start = READS.load(Ordering::SeqCst);
    while READS.load(Ordering::SeqCst) < start + 100 {
        std::thread::yield_now();
    }
    STOP.store(true, Ordering::SeqCst);
    while !DONE.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    assert_eq!(
        WRONG.load(Ordering::SeqCst),
        0,
        "the borrowed frame was reused"
    );
    fiber::convert_fiber_to_thread().unwrap();
}

#[test]
fn fls_indices_are_process_wide_never_zero_and_never_show_a_freed_keys_value() {
    let _fls = fls_serial();
    use std::sync::Arc;
    // One index means the same slot on every thread, each with its own value.
    let key = Arc::new(FlsKey::<u32>::new().unwrap());
    assert_ne!(key.index(), 0, "index 0 is never handed out");
    key.set(1);
    let k2 = Arc::clone(&key);
    let seen = std::thread::spawn(move || {
        let before = k2.get();
        k2.set(2);
        (before, k2.get(), k2.index())
    })
    .join()
    .unwrap();
    assert_eq!(seen, (None, Some(2), key.index()));
    assert_eq!(key.get(), Some(1));
    // A value left on another thread under a freed index is never seen by
    // the next key that gets the index.
    let (to_thread, rx) = std::sync::mpsc::channel::<Arc<FlsKey<u32>>>();
    let (done_tx, done) = std::sync::mpsc::channel::<Option<u32>>();
    let other = std::thread::spawn(move || {
        let k = rx.recv().unwrap();
        k.set(77);
        drop(k);
        done_tx.send(None).unwrap();
        // Wait for the next key, which may reuse the index.
        let next = rx.recv().unwrap();
        done_tx.send(next.get()).unwrap();
        next.set(5);
        done_tx.send(next.get()).unwrap();
    });
    let old = Arc::new(FlsKey::<u32>::new().unwrap());
    let old_index = old.index();
    to_thread.send(Arc::clone(&old)).unwrap();
    assert_eq!(done.recv().unwrap(), None);
    drop(old); // the last handle: the index is freed
    // The lowest free index is handed out again: ours.
    let next = Arc::new(FlsKey::<u32>::new().unwrap());
    assert_eq!(
        next.index(),
        old_index,
        "the freed index is handed out again"
    );
    to_thread.send(Arc::clone(&next)).unwrap();
    assert_eq!(
        done.recv().unwrap(),
        None,
        "a freed key's value showed through"
    );
    assert_eq!(done.recv().unwrap(), Some(5));
    other.join().unwrap();
}

/// Conformance (Wine's `fiber.c`): `CreateFiberEx(0, 0, …)` takes the
/// default reserve (1 MiB), not the smallest: a fiber made with a zero
/// reserve uses 512 KiB of stack without overflowing.
#[test]
fn a_zero_reserve_is_the_default_stack() {
    fn deep(n: usize) -> usize {
        let buf = [n as u8; 1024];
        let r = if n == 0 { 0 } else { deep(n - 1) };
        std::hint::black_box(&buf);
        r + buf[0] as usize % 2
    }
    let main = fiber::convert_thread_to_fiber().unwrap();
    let done = Rc::new(Cell::new(false));
    let d = Rc::clone(&done);
    let f = Fiber::builder()
        .stack_reserve(0)
        .spawn(move || {
            std::hint::black_box(deep(512));
            d.set(true);
            fiber::switch_to_fiber(main);
        })
        .unwrap();
    fiber::switch_to_fiber(f.to_ref());
    assert!(done.get());
    drop(f);
    fiber::convert_fiber_to_thread().unwrap();
}
