//! The debugger's event loop against strace's: a child that starts and
//! ends 1,000 threads (one after another), traced to its end. Both are
//! ptrace loops over the same stops; taskloom also turns each into an
//! event and reads the loader's list.
//!
//! ```sh
//! cargo bench -p taskloom --bench debug
//! ```
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use taskloom::debug::{Continue, DebugMode, Debugger};
use taskloom::process::{ProcessBuilder, Stdio};

const PROGRAM: &str = r#"
#include <pthread.h>
#include <stdlib.h>
static void *run(void *a) { return a; }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    for (int i = 0; i < n; i++) {
        pthread_t t;
        pthread_create(&t, 0, run, 0);
        pthread_join(t, 0);
    }
    return 0;
}
"#;

fn build() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("taskloom-debug-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("threads.c"), PROGRAM).unwrap();
    let exe = dir.join("threads");
    let ok = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&exe)
        .arg(dir.join("threads.c"))
        .arg("-lpthread")
        .status()
        .expect("cc is needed to build the bench's program")
        .success();
    assert!(ok);
    exe
}

fn debug(c: &mut Criterion) {
    let exe = build();
    // Events per run, printed once so that events per second can be worked out.
    let count = |timeout: Option<Duration>| {
        let mut d = Debugger::spawn(
            ProcessBuilder::new(&exe).arg("1000").stdout(Stdio::Null),
            DebugMode::Process,
        )
        .unwrap();
        let mut n = 0u64;
        while d.wait_event(timeout).unwrap().is_some() {
            n += 1;
            d.continue_event(Continue::NotHandled).unwrap();
        }
        assert!(d.process().exit_status().unwrap().success());
        n
    };
    eprintln!("taskloom debugger: {} events per run", count(None));
    let mut g = c.benchmark_group("trace a child that starts and ends 1000 threads");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.bench_function("taskloom Debugger (every event, blocking waits)", |b| {
        b.iter(|| count(None))
    });
    g.bench_function("taskloom Debugger (every event, 100 ms time-outs)", |b| {
        b.iter(|| count(Some(Duration::from_millis(100))))
    });
    if Command::new("strace").arg("-V").output().is_ok() {
        g.bench_function("strace -f -e trace=none", |b| {
            b.iter(|| {
                let ok = Command::new("strace")
                    .args(["-f", "-e", "trace=none", "-o", "/dev/null"])
                    .arg(&exe)
                    .arg("1000")
                    .status()
                    .unwrap()
                    .success();
                assert!(ok);
            })
        });
    } else {
        eprintln!("strace row not run: strace is not installed (apt-get install strace)");
    }
    g.bench_function("untraced (the floor)", |b| {
        b.iter(|| {
            let ok = Command::new(&exe).arg("1000").status().unwrap().success();
            assert!(ok);
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(exe.parent().unwrap());
}

criterion_group!(benches, debug);
criterion_main!(benches);
