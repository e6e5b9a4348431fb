//! The whole `taskloom run` command against its peers, as a user starts it:
//! `timeout 10 /bin/true` (the floor: a supervisor that forks, execs and
//! waits) and taskloom with and without a job and limits.
//!
//! Run: `cargo bench -p taskloom-cli --bench run`. Ratios go to BENCHMARKS.md.
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?}");
}

fn whole_command(c: &mut Criterion) {
    let tl = env!("CARGO_BIN_EXE_taskloom");
    let mut g = c.benchmark_group("run /bin/true");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("timeout 10", |b| {
        b.iter(|| run("timeout", &["10", "/bin/true"]))
    });
    g.bench_function("taskloom run", |b| {
        b.iter(|| run(tl, &["run", "-q", "--", "/bin/true"]))
    });
    g.bench_function("taskloom run --memory --max-processes", |b| {
        b.iter(|| {
            run(
                tl,
                &[
                    "run",
                    "-q",
                    "--memory",
                    "64M",
                    "--max-processes",
                    "64",
                    "--",
                    "/bin/true",
                ],
            )
        })
    });
    g.bench_function("taskloom run --no-job", |b| {
        b.iter(|| run(tl, &["run", "-q", "--no-job", "--", "/bin/true"]))
    });
    g.finish();
}

criterion_group!(benches, whole_command);
criterion_main!(benches);
