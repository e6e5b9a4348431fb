//! Spawn + wait on either system, taskloom against `std::process::Command`
//! in the same run: `true` on Linux, `cmd /c exit 0` on Windows (under Wine
//! here: ratios only, and they say Wine's process start, not Windows').
//!
//! Run: `cargo bench -p taskloom --bench spawn_portable` (add `--target
//! x86_64-pc-windows-gnu` for Wine). Ratios go to BENCHMARKS.md.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use taskloom::process::{ProcessBuilder, Stdio};

#[cfg(windows)]
const PROGRAM: (&str, &[&str]) = ("cmd", &["/c", "exit", "0"]);
#[cfg(not(windows))]
const PROGRAM: (&str, &[&str]) = ("true", &[]);

fn std_spawn() {
    let status = std::process::Command::new(PROGRAM.0)
        .args(PROGRAM.1)
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

fn taskloom_spawn(suspended: bool) {
    let mut child = ProcessBuilder::new(PROGRAM.0)
        .args(PROGRAM.1)
        .stdin(Stdio::Null)
        .suspended(suspended)
        .spawn()
        .unwrap();
    if suspended {
        child.resume().unwrap();
    }
    assert!(child.wait().unwrap().success());
}

fn spawn(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("spawn+wait {}", PROGRAM.0));
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(30);
    g.bench_function("std::process::Command", |b| b.iter(std_spawn));
    g.bench_function("taskloom", |b| b.iter(|| taskloom_spawn(false)));
    g.bench_function("taskloom suspended+resume", |b| {
        b.iter(|| taskloom_spawn(true))
    });
    g.finish();
}

criterion_group!(benches, spawn);
criterion_main!(benches);
