//! Fiber switching and creation: taskloom against corosensei, context
//! (Boost.Context's switch) and generator, side by side in one run.
//!
//! Run: `cargo bench -p taskloom --bench fiber`. Ratios go to BENCHMARKS.md.
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult};
use criterion::{Criterion, criterion_group, criterion_main};
use taskloom::fiber::{self, Fiber, FiberRef};

/// Round trips per taskloom/peer measurement call.
fn ping_pong(c: &mut Criterion) {
    let main = fiber::convert_thread_to_fiber().unwrap();
    let mut g = c.benchmark_group("fiber ping-pong (one round trip = 2 switches)");
    g.measurement_time(Duration::from_secs(3));

    for float in [false, true] {
        let name = if float {
            "taskloom symmetric, float switch"
        } else {
            "taskloom symmetric"
        };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                // A and B switch to each other `iters` times, then A returns to main.
                let refs: Rc<Cell<Option<(FiberRef, FiberRef)>>> = Rc::default();
                let r = refs.clone();
                let a = Fiber::builder()
                    .float_switch(float)
                    .spawn(move || {
                        let (_, b) = r.get().unwrap();
                        for _ in 0..iters {
                            fiber::switch_to_fiber(b);
                        }
                        fiber::switch_to_fiber(main);
                    })
                    .unwrap();
                let r = refs.clone();
                let bf = Fiber::builder()
                    .float_switch(float)
                    .spawn(move || {
                        let (a, _) = r.get().unwrap();
                        loop {
                            fiber::switch_to_fiber(a);
                        }
                    })
                    .unwrap();
                refs.set(Some((a.to_ref(), bf.to_ref())));
                let t = Instant::now();
                fiber::switch_to_fiber(a.to_ref());
                t.elapsed()
            })
        });
    }

    g.bench_function("corosensei resume+suspend", |b| {
        let mut co = Coroutine::new(|yielder, _: ()| {
            loop {
                yielder.suspend(());
            }
        });
        b.iter(|| {
            black_box(co.resume(()));
        })
    });

    g.bench_function("context (Boost.Context) resume+resume", |b| {
        use context::stack::ProtectedFixedSizeStack;
        use context::{Context, Transfer};
        extern "C" fn echo(mut t: Transfer) -> ! {
            loop {
                // SAFETY: resuming the context that resumed us.
                t = unsafe { t.context.resume(t.data) };
            }
        }
        let stack = ProtectedFixedSizeStack::default();
        // SAFETY: the stack outlives the context.
        let mut t = Some(Transfer::new(unsafe { Context::new(&stack, echo) }, 0));
        b.iter(|| {
            let cur = t.take().unwrap();
            // SAFETY: resuming the echo context.
            t = Some(unsafe { cur.context.resume(black_box(1)) });
        })
    });

    g.bench_function("generator resume+yield", |b| {
        let mut gen_ = generator::Gn::<()>::new_scoped(|mut s| {
            loop {
                s.yield_with(1u64);
            }
        });
        b.iter(|| black_box(gen_.resume()))
    });
    g.finish();
    fiber::convert_fiber_to_thread().unwrap();
}

#[inline(never)]
fn deep_switch(to: FiberRef, depth: u32) {
    if depth == 0 {
        fiber::switch_to_fiber(to);
    } else {
        deep_switch(black_box(to), depth - 1);
        black_box(());
    }
}

#[inline(never)]
fn deep_suspend(y: &corosensei::Yielder<(), ()>, depth: u32) {
    if depth == 0 {
        y.suspend(());
    } else {
        deep_suspend(black_box(y), depth - 1);
        black_box(());
    }
}

fn round_robin(c: &mut Criterion) {
    const N: usize = 100;
    let main = fiber::convert_thread_to_fiber().unwrap();
    let mut g = c.benchmark_group("round-robin over 100 fibers, switch two calls deep (per hop)");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("taskloom: each fiber switches to the next", |b| {
        b.iter_custom(|iters| {
            let ring: Rc<std::cell::RefCell<Vec<FiberRef>>> = Rc::default();
            let hops = Rc::new(Cell::new(0u64));
            let fibers: Vec<Fiber> = (0..N)
                .map(|i| {
                    let (ring, hops) = (ring.clone(), hops.clone());
                    Fiber::new(move || {
                        loop {
                            let n = hops.get() + 1;
                            hops.set(n);
                            let next = if n >= iters {
                                main
                            } else {
                                ring.borrow()[(i + 1) % N]
                            };
                            deep_switch(next, 1);
                        }
                    })
                    .unwrap()
                })
                .collect();
            ring.borrow_mut().extend(fibers.iter().map(|f| f.to_ref()));
            let t = Instant::now();
            fiber::switch_to_fiber(fibers[0].to_ref());
            let e = t.elapsed();
            drop(fibers);
            e
        })
    });
    g.bench_function(
        "corosensei: a scheduler resumes each coroutine in turn",
        |b| {
            b.iter_custom(|iters| {
                let mut cos: Vec<Coroutine<(), (), ()>> = (0..N)
                    .map(|_| {
                        Coroutine::new(|y: &corosensei::Yielder<(), ()>, _: ()| {
                            loop {
                                deep_suspend(y, 1);
                            }
                        })
                    })
                    .collect();
                let t = Instant::now();
                let mut i = 0;
                for _ in 0..iters {
                    black_box(cos[i].resume(()));
                    i = if i + 1 == N { 0 } else { i + 1 };
                }
                t.elapsed()
            })
        },
    );
    g.finish();
    fiber::convert_fiber_to_thread().unwrap();
}

fn create_run_delete(c: &mut Criterion) {
    let _main = fiber::convert_thread_to_fiber().unwrap();
    let mut g = c.benchmark_group("fiber create + run to completion + delete");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("taskloom, pooled stack", |b| {
        b.iter(|| {
            let f = Fiber::new(|| black_box(())).unwrap();
            fiber::switch_to_fiber(f.to_ref());
            drop(f);
        })
    });
    g.bench_function("corosensei, reused stack", |b| {
        let mut stack = Some(DefaultStack::new(256 * 1024).unwrap());
        b.iter(|| {
            let mut co = Coroutine::with_stack(
                stack.take().unwrap(),
                |_: &corosensei::Yielder<(), ()>, _: ()| black_box(()),
            );
            match co.resume(()) {
                CoroutineResult::Return(()) => {}
                CoroutineResult::Yield(()) => unreachable!(),
            }
            stack = Some(co.into_stack());
        })
    });
    g.bench_function("taskloom, fresh stack", |b| {
        b.iter(|| {
            let f = Fiber::builder()
                .fresh_stack(true)
                .spawn(|| black_box(()))
                .unwrap();
            fiber::switch_to_fiber(f.to_ref());
            drop(f);
        })
    });
    g.bench_function("bare mmap + mprotect + munmap (256 KiB + guard)", |b| {
        b.iter(|| {
            let len = 256 * 1024 + 4096;
            // SAFETY: a private anonymous mapping, protected and unmapped here.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                    -1,
                    0,
                );
                libc::mprotect(
                    p.cast::<u8>().add(4096).cast(),
                    len - 4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                );
                // The fiber touches its top page; so does this.
                *p.cast::<u8>().add(len - 64) = 1;
                libc::munmap(p, len);
            }
        })
    });
    g.finish();
    fiber::convert_fiber_to_thread().unwrap();
}

/// The switch's own floor: `src/arch/x86_64/fiber.rs`, the very file the library
/// uses, between two bare stacks with no checks, then with each piece of
/// bookkeeping a symmetric `SwitchToFiber` needs, one at a time. Shows where
/// the time of a symmetric switch goes (BENCHMARKS.md).
#[allow(dead_code)]
#[path = "../src/arch/x86_64/fiber.rs"]
mod arch;

mod floor {
    use std::arch::asm;
    use std::cell::Cell;

    thread_local! {
        /// The running context's save slot: what `SwitchToFiber`'s
        /// "current fiber" amounts to.
        pub static CURRENT: Cell<*const Cell<usize>> = const { Cell::new(std::ptr::null()) };
    }

    /// What a switch does besides the asm.
    pub const BARE: u8 = 0;
    /// + store the new current context in a thread-local.
    pub const STORE: u8 = 1;
    /// + load the current context from the thread-local and save into it
    ///   (the caller does not say who it is, as with `SwitchToFiber`).
    pub const LOAD_STORE: u8 = 2;
    /// As `STORE`, with the resume address written only when the stack
    /// slot does not hold it already (an experiment, not the library's asm).
    pub const STORE_COND_RA: u8 = 3;
    /// As `LOAD_STORE`, with that conditional resume-address write.
    pub const LOAD_STORE_COND_RA: u8 = 4;

    /// Saved stack pointers of main, A and B, and A's round-trip count.
    pub struct Ring {
        pub sp: [Cell<usize>; 3],
        pub rounds: Cell<u64>,
        pub mode: Cell<u8>,
    }

    pub struct Arg {
        pub ring: &'static Ring,
        pub me: usize,
    }

    /// The library's switch, but for the resume address: the site stores it
    /// only when the slot below rbx does not already hold it.
    ///
    /// # Safety
    /// As for `arch::switch`.
    #[inline(always)]
    unsafe fn switch_cond_ra(save: *mut usize, to: usize) {
        // SAFETY: as for `arch::switch`; the slot compared is the one the
        // push would write, below the stack pointer, which this asm owns.
        unsafe {
            asm!(
                "push rbp",
                "push rbx",
                "lea rax, [rip + 2f]",
                "cmp [rsp - 8], rax",
                "jne 5f",
                "4:",
                "lea rsp, [rsp - 8]",
                "mov [rdi], rsp",
                "mov rsp, rsi",
                "pop rax",
                "jmp rax",
                "5:",
                "mov [rsp - 8], rax",
                "jmp 4b",
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

    #[inline(always)]
    fn switch<const MODE: u8>(ring: &Ring, me: usize, to: usize) {
        let target = ring.sp[to].get();
        let save = match MODE {
            LOAD_STORE | LOAD_STORE_COND_RA => CURRENT.replace(&ring.sp[to]),
            STORE | STORE_COND_RA => {
                CURRENT.set(&ring.sp[to]);
                &ring.sp[me]
            }
            _ => &ring.sp[me],
        };
        // SAFETY: `target` was saved by the other context's switch (or made by
        // init_stack) and that context is suspended; `save` is the running
        // context's own slot.
        unsafe {
            if MODE == STORE_COND_RA || MODE == LOAD_STORE_COND_RA {
                switch_cond_ra((*save).as_ptr(), target)
            } else {
                super::arch::switch((*save).as_ptr(), target)
            }
        }
    }

    /// A (me = 1) switches to B `rounds` times, then back to main; B (me = 2)
    /// always switches to A. Specialised on the mode so each loop is tight.
    pub extern "C" fn body(arg: usize, _starter: usize) -> ! {
        // SAFETY: `arg` is a leaked `Arg`.
        let a: &Arg = unsafe { &*(arg as *const Arg) };
        let (ring, me) = (a.ring, a.me);
        match ring.mode.get() {
            BARE => run::<BARE>(ring, me),
            STORE => run::<STORE>(ring, me),
            LOAD_STORE => run::<LOAD_STORE>(ring, me),
            STORE_COND_RA => run::<STORE_COND_RA>(ring, me),
            _ => run::<LOAD_STORE_COND_RA>(ring, me),
        }
    }

    fn run<const MODE: u8>(ring: &Ring, me: usize) -> ! {
        if me == 1 {
            for _ in 0..ring.rounds.get() {
                switch::<MODE>(ring, 1, 2);
            }
            switch::<MODE>(ring, 1, 0);
            unreachable!("A is never resumed after its last switch to main");
        }
        loop {
            switch::<MODE>(ring, 2, 1);
        }
    }
}

fn switch_floor(c: &mut Criterion) {
    use floor::{Arg, Ring};
    const STACK: usize = 64 * 1024;
    let ring: &'static Ring = Box::leak(Box::new(Ring {
        sp: Default::default(),
        rounds: Cell::new(0),
        mode: Cell::new(floor::BARE),
    }));
    let stacks: Vec<&'static mut [u8]> = (0..2).map(|_| Vec::leak(vec![0u8; STACK])).collect();
    let tops: Vec<usize> = stacks
        .iter()
        .map(|s| (s.as_ptr() as usize + STACK) & !15)
        .collect();
    let args: Vec<usize> = (1..3)
        .map(|me| Box::leak(Box::new(Arg { ring, me })) as *const Arg as usize)
        .collect();
    let mut g = c.benchmark_group("fiber switch floor (one round trip = 2 switches)");
    g.measurement_time(Duration::from_secs(3));
    for (name, mode) in [
        ("raw x86_64.rs switch, no bookkeeping", floor::BARE),
        (
            "raw switch + thread-local current fiber store",
            floor::STORE,
        ),
        (
            "raw switch + current fiber loaded and stored (SwitchToFiber's minimum)",
            floor::LOAD_STORE,
        ),
        (
            "experiment: store only, resume address written only when changed",
            floor::STORE_COND_RA,
        ),
        (
            "experiment: load and store, resume address written only when changed",
            floor::LOAD_STORE_COND_RA,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                ring.rounds.set(iters);
                ring.mode.set(mode);
                for (i, (&top, &arg)) in tops.iter().zip(&args).enumerate() {
                    // SAFETY: the 40 bytes below `top` are in a stack nothing
                    // else uses now (a suspended B from the last run is dropped).
                    ring.sp[i + 1].set(unsafe { arch::init_stack(top, floor::body, arg) });
                }
                // Main switches to A as A's own switches do: the current
                // context becomes A, main's slot is saved.
                floor::CURRENT.set(&ring.sp[1]);
                let t = Instant::now();
                // SAFETY: A's stack was just made by init_stack; slot 0 is main's.
                unsafe { arch::switch(ring.sp[0].as_ptr(), ring.sp[1].get()) };
                t.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    ping_pong,
    switch_floor,
    round_robin,
    create_run_delete
);
criterion_main!(benches);
