//! Spawn and await 1,000 `/bin/true`, 64 at a time, on a current-thread
//! runtime: `tokio::process::Command` against taskloom's async handles,
//! alone and into one job, interleaved rounds in one run, medians.
//!
//! Run: `cargo bench -p taskloom --features tokio --bench aio`. Ratios go
//! to BENCHMARKS.md.
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use taskloom::job::Job;
use taskloom::process::{ProcessBuilder, Stdio};
use tokio::sync::Semaphore;

const N: usize = 1000;
const CONCURRENCY: usize = 64;
const ROUNDS: usize = 7;

async fn tokio_round() {
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = Vec::with_capacity(N);
    for _ in 0..N {
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let s = tokio::process::Command::new("/bin/true")
                .stdin(std::process::Stdio::null())
                .status()
                .await
                .unwrap();
            assert!(s.success());
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn taskloom_round(job: Option<Arc<Job>>) {
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = Vec::with_capacity(N);
    for _ in 0..N {
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        let b = ProcessBuilder::new("/bin/true").stdin(Stdio::Null);
        let mut child = match &job {
            Some(j) => j.spawn_async(b).unwrap(),
            None => b.spawn_async().unwrap(),
        };
        tasks.push(tokio::spawn(async move {
            assert!(child.wait().await.unwrap().success());
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let job = Job::builder()
        .kill_on_close(true)
        .create()
        .ok()
        .map(Arc::new);
    if job.is_none() {
        eprintln!("no job here: the into-a-job row is left out");
    }
    let (mut t, mut a, mut j) = (Vec::new(), Vec::new(), Vec::new());
    rt.block_on(async {
        // One warm-up round each, then interleaved rounds.
        tokio_round().await;
        taskloom_round(None).await;
        for _ in 0..ROUNDS {
            let s = Instant::now();
            tokio_round().await;
            t.push(s.elapsed());
            let s = Instant::now();
            taskloom_round(None).await;
            a.push(s.elapsed());
            if let Some(job) = &job {
                let s = Instant::now();
                taskloom_round(Some(Arc::clone(job))).await;
                j.push(s.elapsed());
            }
        }
    });
    let (t, a) = (median(t), median(a));
    println!("{N} × /bin/true, {CONCURRENCY} at a time, median of {ROUNDS} interleaved rounds");
    println!("tokio::process::Command      {t:>10.1?}  1.00");
    println!(
        "taskloom spawn_async         {a:>10.1?}  {:.2}",
        a.as_secs_f64() / t.as_secs_f64()
    );
    if !j.is_empty() {
        let j = median(j);
        println!(
            "taskloom Job::spawn_async    {j:>10.1?}  {:.2}",
            j.as_secs_f64() / t.as_secs_f64()
        );
    }
}
