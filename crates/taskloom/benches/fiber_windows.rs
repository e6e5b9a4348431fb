//! Fibers on Windows: taskloom's fiber API against the system's own fibers
//! called directly (`CreateFiberEx`, `SwitchToFiber`, `DeleteFiber`), in the
//! same run. taskloom's fibers on Windows are OS fibers, so the ratio is
//! what its checks, starters and FLS bookkeeping cost on top. Under Wine
//! here: ratios only, and they measure Wine's `SwitchToFiber`, not Windows'.
//!
//! Run: `cargo bench -p taskloom --target x86_64-pc-windows-gnu --bench
//! fiber_windows` (the runner in `.cargo/config.toml` is Wine).
#![cfg_attr(not(windows), no_main)]
#![cfg(windows)]
#![allow(unsafe_code)] // the baseline calls the system's fiber API directly

use std::ffi::c_void;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use taskloom::fiber::{self, Fiber};
use windows_sys::Win32::System::Threading::{
    ConvertFiberToThread, ConvertThreadToFiberEx, CreateFiberEx, DeleteFiber, SwitchToFiber,
};

/// The raw baseline's fiber: switches back to the fiber in its parameter, forever.
unsafe extern "system" fn ping(param: *mut c_void) {
    let back = param as *const c_void;
    loop {
        // SAFETY: `back` is the converted thread's fiber, alive for the whole run.
        unsafe { SwitchToFiber(back) };
    }
}

/// An OS fiber that returns to `main` once; started once per create.
unsafe extern "system" fn once(param: *mut c_void) {
    // SAFETY: as in `ping`.
    unsafe { SwitchToFiber(param as *const c_void) };
    loop {
        std::hint::spin_loop(); // never resumed again: deleted by the creator
    }
}

fn switch(c: &mut Criterion) {
    let mut g = c.benchmark_group("fiber round trip (two switches)");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("OS fibers, called directly", |b| {
        // SAFETY: the thread becomes a fiber for this bench and back after it;
        // the fiber is deleted while suspended (it owns nothing).
        unsafe {
            let main = ConvertThreadToFiberEx(std::ptr::null(), 0);
            assert!(!main.is_null());
            let f = CreateFiberEx(0, 0, 0, Some(ping), main);
            assert!(!f.is_null());
            b.iter(|| SwitchToFiber(black_box(f)));
            DeleteFiber(f);
            ConvertFiberToThread();
        }
    });
    g.bench_function("taskloom", |b| {
        let main = fiber::convert_thread_to_fiber().unwrap();
        let f = Fiber::new(move || {
            loop {
                fiber::switch_to_fiber(main);
            }
        })
        .unwrap();
        let r = f.to_ref();
        b.iter(|| fiber::switch_to_fiber(black_box(r)));
        drop(f);
        fiber::convert_fiber_to_thread().unwrap();
    });
    g.finish();
}

fn create(c: &mut Criterion) {
    let mut g = c.benchmark_group("fiber create + first switch + delete");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("OS fibers, called directly", |b| {
        // SAFETY: as in `switch`; each fiber has switched back before it is deleted.
        unsafe {
            let main = ConvertThreadToFiberEx(std::ptr::null(), 0);
            b.iter(|| {
                let f = CreateFiberEx(0, 0, 0, Some(once), main);
                SwitchToFiber(f);
                DeleteFiber(f);
            });
            ConvertFiberToThread();
        }
    });
    g.bench_function("taskloom", |b| {
        fiber::convert_thread_to_fiber().unwrap();
        b.iter(|| {
            let f = Fiber::new(|| {
                black_box(());
            })
            .unwrap();
            fiber::switch_to_fiber(f.to_ref());
            drop(f);
        });
        fiber::convert_fiber_to_thread().unwrap();
    });
    g.finish();
}

criterion_group!(benches, switch, create);
criterion_main!(benches);
