//! Jobs through systemd against systemd itself, for the machine users have:
//! run inside a guest with systemd (`../shared/vm/run-systemd`), as an
//! ordinary user or as root. Rows that cannot run where it runs are left out
//! and said so.
//!
//! ```sh
//! cargo bench -p taskloom-cli --bench scope --no-run   # prints the bench binary
//! ../shared/vm/run-systemd --user tester --share "$PWD" -- target/release/deps/scope-HASH --bench
//! ```
//!
//! Ratios go to BENCHMARKS.md.
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

fn run(program: &str, args: &[&str], env: &[(&str, &str)]) {
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .unwrap();
    assert!(status.success(), "{program} {args:?}");
}

fn root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A copy of the `taskloom` binary on the machine's own file system: in
/// the guest the build directory is a 9p share, and every page the binary
/// touches would come over it (120-470 ms a start, against 55 ms for
/// `/bin/true` from the guest's disk), which measures the share, not
/// taskloom. `systemd-run` is on the guest's disk; so is this copy.
struct LocalCopy(std::path::PathBuf);

impl LocalCopy {
    fn new(from: &str) -> LocalCopy {
        let to = std::env::temp_dir().join(format!("taskloom-bench-{}", std::process::id()));
        std::fs::copy(from, &to).unwrap();
        LocalCopy(to)
    }
}

impl Drop for LocalCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn scope(c: &mut Criterion) {
    if !std::path::Path::new("/run/systemd/system").is_dir() {
        eprintln!(
            "scope bench not run: systemd is not this machine's init (run it in run-systemd)"
        );
        return;
    }
    let copy = LocalCopy::new(env!("CARGO_BIN_EXE_taskloom"));
    let tl = copy.0.to_str().unwrap();
    let mut g = c.benchmark_group("run /bin/true under systemd");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let user = if root() { None } else { Some("--user") };
    let mut sd: Vec<&str> = user.into_iter().collect();
    sd.extend(["--scope", "-q", "/bin/true"]);
    g.bench_function("systemd-run --scope", |b| {
        b.iter(|| run("systemd-run", &sd, &[]))
    });
    g.bench_function("taskloom run (a scope per job)", |b| {
        b.iter(|| run(tl, &["run", "-q", "--", "/bin/true"], &[]))
    });
    g.finish();

    // What containment costs (the job's cgroup namespace, and for a user
    // the user namespace around it): the same run without it.
    let mut g = c.benchmark_group("run /bin/true, contained or not");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("taskloom run (contained)", |b| {
        b.iter(|| run(tl, &["run", "-q", "--", "/bin/true"], &[]))
    });
    g.bench_function("taskloom run --uncontained", |b| {
        b.iter(|| run(tl, &["run", "-q", "--uncontained", "--", "/bin/true"], &[]))
    });
    g.finish();

    let mut g = c.benchmark_group("job create + delete");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    static N: AtomicU32 = AtomicU32::new(0);
    let cycle = |env: &'static [(&'static str, &'static str)]| {
        move || {
            let name = format!("bench{}", N.fetch_add(1, Ordering::Relaxed));
            run(tl, &["job", "create", &name], env);
            run(tl, &["job", "delete", &name], env);
        }
    };
    let systemd = cycle(&[("TASKLOOM_JOB_BACKEND", "systemd")]);
    g.bench_function("systemd scope", |b| b.iter(&systemd));
    if root() {
        // Root may also write below its own cgroup directly (what a
        // container or a delegated subtree allows): the floor.
        let direct = cycle(&[("TASKLOOM_JOB_BACKEND", "cgroup")]);
        g.bench_function("direct cgroup", |b| b.iter(&direct));
    } else {
        eprintln!("direct cgroup row not run: a login's own cgroup is systemd's, not the user's");
    }
    g.finish();
}

criterion_group!(benches, scope);
criterion_main!(benches);
