//! Jobs: spawning into one, and terminating a large one, side by side with
//! the plain equivalents. Needs a writable cgroup (run as root).
//!
//! Run: `cargo bench -p taskloom --bench job`. Ratios go to BENCHMARKS.md.
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use taskloom::job::{Job, JobLimits};
use taskloom::process::{ProcessBuilder, ProcessGroup, Stdio};

fn jobs_available() -> bool {
    Job::capabilities()
        .iter()
        .any(|c| c.feature == "membership" && c.enforced)
}

fn spawn_into_job(c: &mut Criterion) {
    if !jobs_available() {
        eprintln!("job benches not run: no writable cgroup here");
        return;
    }
    let job = Job::builder()
        .name(&format!("bench-spawn-{}", std::process::id()))
        .kill_on_close(true)
        .create()
        .unwrap();
    let mut g = c.benchmark_group("spawn+wait /bin/true into a job");
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("taskloom, no job", |b| {
        b.iter(|| {
            let mut p = ProcessBuilder::new("/bin/true")
                .stdin(Stdio::Null)
                .spawn()
                .unwrap();
            assert!(p.wait().unwrap().success());
        })
    });
    g.bench_function("taskloom, into a job", |b| {
        b.iter(|| {
            let mut p = job
                .spawn(ProcessBuilder::new("/bin/true").stdin(Stdio::Null))
                .unwrap();
            assert!(p.wait().unwrap().success());
        })
    });
    let limited = Job::builder()
        .name(&format!("bench-spawn-limited-{}", std::process::id()))
        .limits(JobLimits {
            active_processes: Some(100),
            job_memory: Some(1 << 30),
            ..Default::default()
        })
        .kill_on_close(true)
        .create()
        .unwrap();
    g.bench_function("taskloom, into a job with process and memory limits", |b| {
        b.iter(|| {
            let mut p = limited
                .spawn(ProcessBuilder::new("/bin/true").stdin(Stdio::Null))
                .unwrap();
            assert!(p.wait().unwrap().success());
        })
    });
    g.finish();
    job.delete().unwrap();
    limited.delete().unwrap();
}

/// Starts ~`n` sleeping processes under one shell (some of them setsid), plus
/// one loop that forks without pause; returns when `n` are running.
fn populate(job: &Job, n: usize, group: ProcessGroup) -> taskloom::process::Process {
    let script = format!(
        "i=0; while [ $i -lt {n} ]; do if [ $((i % 10)) = 0 ]; then setsid sleep 600 & else sleep 600 & fi; i=$((i+1)); done; \
         while :; do (sleep 600 &) ; done"
    );
    let p = job
        .spawn(
            ProcessBuilder::new("sh")
                .arg("-c")
                .arg(script)
                .stdout(Stdio::Null)
                .stderr(Stdio::Null)
                .process_group(group),
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while job.pids().unwrap().len() < n {
        assert!(Instant::now() < deadline, "could not start {n} processes");
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

fn terminate_large_job(c: &mut Criterion) {
    if !jobs_available() {
        return;
    }
    // Orphans come to us, so everything can be reaped.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let reap = || {
        // SAFETY: reaping our own (adopted) children without blocking.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    };
    let limits = JobLimits {
        active_processes: Some(1500),
        ..Default::default()
    };
    let job = Job::builder()
        .name(&format!("bench-kill-{}", std::process::id()))
        .limits(limits)
        .kill_on_close(true)
        .create()
        .unwrap();
    let mut g = c.benchmark_group("terminate 1000 processes, one forking in a loop");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("taskloom Job::terminate (until the job is empty)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut sh = populate(&job, 1000, ProcessGroup::Inherit);
                let t = Instant::now();
                job.terminate().unwrap();
                total += t.elapsed();
                sh.wait().unwrap();
                reap();
            }
            total
        })
    });
    let mut survivors = Vec::new();
    g.bench_function("kill(-pgid) of the same tree (setsid ones survive)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut sh = populate(&job, 1000, ProcessGroup::NewGroup);
                let pgid = sh.pid();
                let t = Instant::now();
                // SAFETY: kill the process group we created, by id.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                // Until no member of the group is left.
                loop {
                    reap();
                    // SAFETY: signal 0 probes the group.
                    if unsafe { libc::kill(-pgid, 0) } != 0 {
                        break;
                    }
                }
                total += t.elapsed();
                survivors.push(job.pids().unwrap().len());
                job.terminate().unwrap();
                let _ = sh.wait();
                reap();
            }
            total
        })
    });
    g.finish();
    if let Some(max) = survivors.iter().max() {
        eprintln!(
            "process-group kill left {}..={max} processes alive (setsid'd); the job kill left 0",
            survivors.iter().min().unwrap()
        );
    }
    job.delete().unwrap();
}

criterion_group!(benches, spawn_into_job, terminate_large_job);
criterion_main!(benches);
