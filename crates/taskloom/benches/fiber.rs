//! Fiber switching and creation: taskloom against corosensei, context
//! (Boost.Context's switch) and generator, side by side in one run.
//!
//! Run: `cargo bench -p taskloom --bench fiber`. Ratios go to BENCHMARKS.md.

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

/// The switch's own floor: `src/fiber/x86_64.rs`, the very file the library
/// uses, between two bare stacks with no checks and no bookkeeping, then the
/// same with the one store `switch_to_fiber` cannot do without (the
/// thread-local current fiber). Shows where the time of a symmetric switch goes.
#[allow(dead_code)]
#[path = "../src/fiber/x86_64.rs"]
mod arch;

mod floor {
    use std::cell::Cell;

    thread_local! {
        pub static CURRENT: Cell<usize> = const { Cell::new(0) };
    }

    /// Saved stack pointers of main, A and B, and A's round-trip count.
    pub struct Ring {
        pub sp: [Cell<usize>; 3],
        pub rounds: Cell<u64>,
        pub store_current: Cell<bool>,
    }

    pub struct Arg {
        pub ring: &'static Ring,
        pub me: usize,
    }

    #[inline(always)]
    fn switch(ring: &Ring, me: usize, to: usize, store_current: bool) {
        let target = ring.sp[to].get();
        if store_current {
            CURRENT.with(|c| c.set(to));
        }
        // SAFETY: `target` was saved by the other context's switch (or made by
        // init_stack) and that context is suspended; `me`'s slot is ours.
        unsafe { super::arch::switch(ring.sp[me].as_ptr(), target) }
    }

    /// A (me = 1) switches to B `rounds` times, then back to main; B (me = 2)
    /// always switches to A. Specialised on the store so each loop is tight.
    pub extern "C" fn body(arg: usize, _starter: usize) -> ! {
        // SAFETY: `arg` is a leaked `Arg`.
        let a: &Arg = unsafe { &*(arg as *const Arg) };
        let (ring, me) = (a.ring, a.me);
        if ring.store_current.get() {
            run::<true>(ring, me)
        } else {
            run::<false>(ring, me)
        }
    }

    fn run<const STORE: bool>(ring: &Ring, me: usize) -> ! {
        if me == 1 {
            for _ in 0..ring.rounds.get() {
                switch(ring, 1, 2, STORE);
            }
            switch(ring, 1, 0, STORE);
            unreachable!("A is never resumed after its last switch to main");
        }
        loop {
            switch(ring, 2, 1, STORE);
        }
    }
}

fn switch_floor(c: &mut Criterion) {
    use floor::{Arg, Ring};
    const STACK: usize = 64 * 1024;
    let ring: &'static Ring = Box::leak(Box::new(Ring {
        sp: Default::default(),
        rounds: Cell::new(0),
        store_current: Cell::new(false),
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
    for (name, store) in [
        ("raw x86_64.rs switch, no bookkeeping", false),
        ("raw switch + thread-local current fiber store", true),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                ring.rounds.set(iters);
                ring.store_current.set(store);
                for (i, (&top, &arg)) in tops.iter().zip(&args).enumerate() {
                    // SAFETY: the 40 bytes below `top` are in a stack nothing
                    // else uses now (a suspended B from the last run is dropped).
                    ring.sp[i + 1].set(unsafe { arch::init_stack(top, floor::body, arg) });
                }
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
