//! Spawn + wait: taskloom against `std::process::Command`, side by side.
//!
//! Run: `cargo bench -p taskloom --bench spawn`. Ratios go to BENCHMARKS.md.
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use taskloom::process::{ProcessBuilder, Stdio};

fn std_spawn() {
    let status = std::process::Command::new("/bin/true")
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

fn taskloom_spawn(suspended: bool) {
    let mut child = ProcessBuilder::new("/bin/true")
        .stdin(Stdio::Null)
        .suspended(suspended)
        .spawn()
        .unwrap();
    if suspended {
        child.resume().unwrap();
    }
    assert!(child.wait().unwrap().success());
}

fn spawn_group(c: &mut Criterion, name: &str) {
    let mut g = c.benchmark_group(name);
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("std::process::Command", |b| b.iter(std_spawn));
    g.bench_function("taskloom", |b| b.iter(|| taskloom_spawn(false)));
    g.bench_function("taskloom suspended+resume", |b| {
        b.iter(|| taskloom_spawn(true))
    });
    g.finish();
}

fn small_parent(c: &mut Criterion) {
    spawn_group(c, "spawn+wait /bin/true");
}

fn big_parent(c: &mut Criterion) {
    // 1 GiB of touched memory: a fork-based spawn copies its page tables.
    let mut ballast = vec![0u8; 1 << 30];
    for page in ballast.chunks_mut(4096) {
        page[0] = 1;
    }
    spawn_group(c, "spawn+wait /bin/true, 1 GiB parent");
    std::hint::black_box(&ballast);
}

criterion_group!(benches, small_parent, big_parent);
criterion_main!(benches);
