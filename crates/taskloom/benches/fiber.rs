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

criterion_group!(benches, ping_pong, round_robin, create_run_delete);
criterion_main!(benches);
