//! Process listings: taskloom's snapshot against the sysinfo and procfs
//! crates in-process, and `taskloom ps` against `ps` as whole commands, with
//! 300 extra processes started by the bench.
//!
//! Run: `cargo build --release -p taskloom-cli && cargo bench -p taskloom --bench inspect`.
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use taskloom::inspect::{self, SnapshotOptions};
use taskloom::process::{Process, ProcessBuilder, Stdio};

const EXTRA: usize = 300;

fn start_extra() -> Vec<Process> {
    (0..EXTRA)
        .map(|_| {
            ProcessBuilder::new("sleep")
                .arg("600")
                .stdin(Stdio::Null)
                .spawn()
                .unwrap()
        })
        .collect()
}

fn stop(mut procs: Vec<Process>) {
    for p in &mut procs {
        let _ = p.terminate();
        let _ = p.wait();
    }
}

fn in_process(c: &mut Criterion) {
    let extra = start_extra();
    let n = inspect::snapshot(SnapshotOptions::default()).unwrap().len();
    eprintln!("listing {n} processes");
    let mut g = c
        .benchmark_group("snapshot: pid, ppid, name, state, threads, rss, cpu times, command line");
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(30);
    g.bench_function("taskloom inspect::snapshot", |b| {
        b.iter(|| {
            inspect::snapshot(SnapshotOptions {
                cmdline: true,
                ..Default::default()
            })
            .unwrap()
            .len()
        })
    });
    g.bench_function("procfs crate: stat + cmdline", |b| {
        b.iter(|| {
            let mut count = 0;
            for p in procfs::process::all_processes().unwrap().flatten() {
                if let Ok(stat) = p.stat() {
                    let cmd = p.cmdline().unwrap_or_default();
                    std::hint::black_box((
                        stat.pid,
                        stat.ppid,
                        &stat.comm,
                        stat.state,
                        stat.num_threads,
                        stat.rss,
                        stat.utime,
                        stat.stime,
                        cmd,
                    ));
                    count += 1;
                }
            }
            count
        })
    });
    g.bench_function("sysinfo crate: refresh processes with command lines", |b| {
        use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, RefreshKind, System, UpdateKind};
        b.iter(|| {
            let kind = ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .with_cmd(UpdateKind::Always);
            let mut sys = System::new_with_specifics(RefreshKind::nothing())
                .expect("sysinfo supports this OS");
            sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
            sys.processes().len()
        })
    });
    g.finish();
    stop(extra);
}

fn taskloom_bin() -> PathBuf {
    let mut p = std::env::current_exe().unwrap();
    p.pop();
    if p.ends_with("deps") {
        p.pop();
    }
    p.join("taskloom")
}

fn whole_commands(c: &mut Criterion) {
    let bin = taskloom_bin();
    if !bin.exists() {
        eprintln!(
            "command benches not run: build the binary first (cargo build --release -p taskloom-cli)"
        );
        return;
    }
    let extra = start_extra();
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        out.stdout.len()
    };
    let mut g = c.benchmark_group("whole command");
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(20);
    g.bench_function("ps -eo pid,ppid,comm,state,nlwp,rss,time,args", |b| {
        b.iter(|| run(Command::new("ps").args(["-eo", "pid,ppid,comm,state,nlwp,rss,time,args"])))
    });
    g.bench_function("taskloom ps --json", |b| {
        b.iter(|| run(Command::new(&bin).args(["ps", "--json"])))
    });
    g.bench_function("ps -eLf", |b| {
        b.iter(|| run(Command::new("ps").arg("-eLf")))
    });
    g.bench_function("taskloom ps --threads", |b| {
        b.iter(|| run(Command::new(&bin).args(["ps", "--threads"])))
    });
    g.finish();
    stop(extra);
}

criterion_group!(benches, in_process, whole_commands);
criterion_main!(benches);
