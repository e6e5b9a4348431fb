//! Pico processes: what a provider costs a program's system calls.
//!
//! The program is this bench binary itself, started with
//! `TASKLOOM_PICO_BENCH_CALLS=N`: it makes N `getppid` calls and exits.
//! Measured, each as a whole spawn + wait, in the same run:
//! - no provider;
//! - a provider for `gettid`, which the program never calls: the cost of
//!   the filter alone on every other call;
//! - `getppid` itself sent to the provider and continued;
//! - `strace -f --seccomp-bpf -e inject=getppid:retval=1` doing the same
//!   calls (the peer: fault injection by ptrace), when strace is installed.
//!
//! Run: `cargo bench -p taskloom --bench pico`. Ratios go to BENCHMARKS.md.
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]
#![allow(unsafe_code)] // the measured program calls getppid itself

use std::time::Duration;

use criterion::{Criterion, criterion_group};
use taskloom::process::pico::{Reply, Syscall, SyscallSet};
use taskloom::process::{ProcessBuilder, Stdio};

const CALLS: &str = "TASKLOOM_PICO_BENCH_CALLS";
const N: &str = "100000";

fn builder_of(calls: &str) -> ProcessBuilder {
    ProcessBuilder::new(std::env::current_exe().unwrap())
        .env(CALLS, calls)
        .stdout(Stdio::Null)
}

fn builder() -> ProcessBuilder {
    builder_of(N)
}

fn run(b: ProcessBuilder) {
    let mut p = b.spawn().unwrap();
    assert!(p.wait().unwrap().success());
}

fn pico(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("{N} getppid calls, spawn to exit"));
    g.measurement_time(Duration::from_secs(8));
    g.sample_size(20);
    g.bench_function("no provider", |b| b.iter(|| run(builder())));
    g.bench_function("provider for a call never made (filter only)", |b| {
        b.iter(|| {
            let set = SyscallSet::from_names(["gettid"]).unwrap();
            run(builder().pico(|_: &Syscall| Reply::Continue, set))
        })
    });
    g.bench_function("getppid to the provider, continued", |b| {
        b.iter(|| {
            let set = SyscallSet::from_names(["getppid"]).unwrap();
            run(builder().pico(|_: &Syscall| Reply::Continue, set))
        })
    });
    g.bench_function("getppid to the provider, answered", |b| {
        b.iter(|| {
            let set = SyscallSet::from_names(["getppid"]).unwrap();
            run(builder().pico(|_: &Syscall| Reply::Return(1), set))
        })
    });
    let strace = std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if strace {
        g.bench_function("strace -f --seccomp-bpf -e inject=getppid:retval=1", |b| {
            b.iter(|| {
                let st = std::process::Command::new("strace")
                    .args(["-f", "-qq", "--seccomp-bpf", "-e", "trace=getppid"])
                    .args(["-e", "inject=getppid:retval=1", "-o", "/dev/null", "--"])
                    .arg(std::env::current_exe().unwrap())
                    .env(CALLS, N)
                    .stdout(std::process::Stdio::null())
                    .status()
                    .unwrap();
                assert!(st.success());
            })
        });
    } else {
        eprintln!("strace is not installed: its row is not measured");
    }
    g.finish();
    // The same spawns with no call at all: what the provider's set-up
    // (its thread, the listener's hand-over) adds to a spawn, apart from
    // the calls.
    let mut g = c.benchmark_group("no getppid call, spawn to exit");
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(30);
    g.bench_function("no provider", |b| b.iter(|| run(builder_of("0"))));
    g.bench_function("provider for a call never made", |b| {
        b.iter(|| {
            let set = SyscallSet::from_names(["gettid"]).unwrap();
            run(builder_of("0").pico(|_: &Syscall| Reply::Continue, set))
        })
    });
    g.finish();
}

criterion_group!(benches, pico);

fn main() {
    if let Ok(n) = std::env::var(CALLS) {
        let n: u64 = n.parse().unwrap();
        for _ in 0..n {
            // SAFETY: getppid has no preconditions.
            std::hint::black_box(unsafe { libc::getppid() });
        }
        std::process::exit(0);
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
