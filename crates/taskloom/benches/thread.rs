//! Threads: create + join against `std::thread::spawn`, and the suspend +
//! resume round trip of a running thread.
//!
//! Run: `cargo bench -p taskloom --bench thread`. Ratios go to BENCHMARKS.md.
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use taskloom::thread::{ThreadBuilder, resume_thread, suspend_thread};

fn create_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("thread create + join (empty function)");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("std::thread::spawn", |b| {
        b.iter(|| std::thread::spawn(|| 0u32).join().unwrap())
    });
    g.bench_function("taskloom ThreadBuilder::spawn", |b| {
        b.iter(|| ThreadBuilder::new().spawn(|| 0).unwrap().join().unwrap())
    });
    g.finish();
}

fn suspend_resume(c: &mut Criterion) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let t = ThreadBuilder::new()
        .spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
            0
        })
        .unwrap();
    let tid = t.tid();
    let mut g = c.benchmark_group("suspend + resume of a running thread");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("taskloom suspend_thread + resume_thread", |b| {
        b.iter(|| {
            suspend_thread(tid).unwrap();
            resume_thread(tid).unwrap();
        })
    });
    g.finish();
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
}

criterion_group!(benches, create_join, suspend_resume);
criterion_main!(benches);
