//! A thousand concurrent async waits take no thread (feature `tokio`): alone
//! in its test binary, so that no other test's thread is counted.
#![cfg(target_os = "linux")]

use std::time::Duration;

use taskloom::job::{Job, JobLimits};
use taskloom::process::{ProcessBuilder, Stdio};

/// Threads of this process now (`/proc/self/status`).
fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_thousand_concurrent_waits_take_no_thread() {
    runtime().block_on(async {
        // Bounded: a job of at most 1,100 processes, and a minute in all.
        let job = Job::builder()
            .limits(JobLimits {
                active_processes: Some(1100),
                ..Default::default()
            })
            .kill_on_close(true)
            .create();
        let job = match job {
            Ok(j) => Some(j),
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("without a job here ({e}): the children run alone");
                None
            }
            Err(e) => panic!("CI must make jobs: {e}"),
        };
        let before = threads();
        let mut children = Vec::new();
        for _ in 0..1000 {
            let b = ProcessBuilder::new("sleep").arg("0.3").stdin(Stdio::Null);
            children.push(match &job {
                Some(j) => j.spawn_async(b).unwrap(),
                None => b.spawn_async().unwrap(),
            });
        }
        let during = threads();
        let waits = children.iter_mut().map(|c| c.wait());
        let all = tokio::time::timeout(Duration::from_secs(60), futures_join_all(waits))
            .await
            .expect("every child ended within a minute");
        assert!(all.iter().all(|r| r.as_ref().is_ok_and(|s| s.success())));
        assert_eq!(during, before, "spawning took threads");
        assert_eq!(threads(), before, "waiting took threads");
        if let Some(j) = &job {
            assert!(j.wait_empty_async(Duration::from_secs(10)).await.unwrap());
        }
    });
}

/// Polls every future to completion on this task (no `futures` crate).
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..futs.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}
