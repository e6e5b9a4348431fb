//! Async handles (feature `tokio`): waits that take no thread, on a
//! current-thread runtime.
#![cfg(target_os = "linux")]

use std::time::Duration;

use taskloom::process::{Process, ProcessBuilder, Stdio};
use tokio::io::AsyncReadExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn output_is_read_as_it_comes_and_the_status_awaited() {
    runtime().block_on(async {
        let mut child = ProcessBuilder::new("sh")
            .args(["-c", "echo one; sleep 0.1; echo two; exit 4"])
            .stdout(Stdio::Piped)
            .spawn_async()
            .unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        assert_eq!(out, "one\ntwo\n");
        assert_eq!(child.wait().await.unwrap().code(), Some(4));
    });
}

#[test]
fn a_process_opened_by_pid_is_awaited() {
    // Not our child: a shell's background sleep, orphaned when the shell ends.
    let mut sh = ProcessBuilder::new("sh")
        .args(["-c", "sleep 2 >/dev/null & echo $!"])
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(sh.stdout.as_mut().unwrap(), &mut out).unwrap();
    sh.wait().unwrap();
    let pid: i32 = out.trim().parse().unwrap();
    runtime().block_on(async {
        let mut p = Process::open(pid).unwrap().into_async().unwrap();
        assert_eq!(p.try_wait().unwrap(), None, "still sleeping");
        tokio::time::timeout(Duration::from_secs(10), p.wait())
            .await
            .expect("woken when it ended")
            .unwrap();
    });
}

#[test]
fn a_dropped_handle_kills_when_asked_and_leaves_no_zombie() {
    runtime().block_on(async {
        let child = ProcessBuilder::new("sleep")
            .arg("60")
            .spawn_async()
            .unwrap()
            .kill_on_drop(true);
        let pid = child.pid();
        drop(child);
        // The runtime reaps it: its /proc entry goes (no zombie stays).
        let gone = tokio::time::timeout(Duration::from_secs(10), async {
            while std::fs::metadata(format!("/proc/{pid}")).is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(gone.is_ok(), "process {pid} was left behind");
    });
}

#[test]
fn outside_a_runtime_the_error_says_so() {
    let e = ProcessBuilder::new("true").spawn_async().unwrap_err();
    assert_eq!(e.kind(), taskloom::ErrorKind::Unsupported, "{e}");
}

#[test]
fn a_jobs_events_are_awaited_without_a_thread() {
    let job = match taskloom::job::Job::builder().kill_on_close(true).create() {
        Ok(j) => j,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "CI must make jobs: {e}");
            eprintln!("not run: no jobs here ({e})");
            return;
        }
    };
    runtime().block_on(async {
        let mut events = job.watch(Duration::from_millis(50)).unwrap();
        // Long enough for a scan to see them where no process events come.
        let mut children: Vec<_> = (0..3)
            .map(|_| {
                job.spawn_async(ProcessBuilder::new("sleep").arg("0.3"))
                    .unwrap()
            })
            .collect();
        let pids: Vec<i32> = children.iter().map(|c| c.pid()).collect();
        for c in &mut children {
            c.wait().await.unwrap();
        }
        let mut seen_new = Vec::new();
        let mut seen_exit = Vec::new();
        let got = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(e) = events.next_event().await {
                match e.unwrap() {
                    taskloom::job::JobEvent::NewProcess { pid } => seen_new.push(pid),
                    taskloom::job::JobEvent::ProcessExited { pid, .. } => seen_exit.push(pid),
                    taskloom::job::JobEvent::JobEmpty if seen_exit.len() >= 3 => break,
                    _ => {}
                }
            }
        })
        .await;
        assert!(
            got.is_ok(),
            "events: new {seen_new:?}, exited {seen_exit:?}"
        );
        for pid in &pids {
            assert!(seen_exit.contains(pid), "no exit of {pid}: {seen_exit:?}");
        }
    });
    job.delete().unwrap();
}

#[test]
fn a_jobs_events_are_a_stream() {
    use futures_core::Stream;
    let job = match taskloom::job::Job::builder().kill_on_close(true).create() {
        Ok(j) => j,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "CI must make jobs: {e}");
            eprintln!("not run: no jobs here ({e})");
            return;
        }
    };
    runtime().block_on(async {
        let mut stream = job.watch(Duration::from_millis(50)).unwrap().into_stream();
        let mut child = job
            .spawn_async(ProcessBuilder::new("sleep").arg("0.3"))
            .unwrap();
        let pid = child.pid();
        let first = tokio::time::timeout(
            Duration::from_secs(10),
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx)),
        )
        .await
        .expect("an event within ten seconds");
        assert_eq!(
            first.unwrap().unwrap(),
            taskloom::job::JobEvent::NewProcess { pid }
        );
        child.wait().await.unwrap();
    });
    job.delete().unwrap();
}
