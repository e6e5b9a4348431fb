//! Async jobs (feature `tokio`): one job, 200 children started and awaited
//! concurrently on a current-thread runtime, their output read as it
//! comes, the job's events printed as they happen, and a `setsid`
//! grandchild that dies when the job is dropped.
//!
//! Run: `cargo run -p taskloom --example async_jobs --features tokio`
//! (needs jobs: root, a delegated subtree, or a systemd user session).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::time::Duration;

use taskloom::job::{Job, JobEvent};
use taskloom::process::{Process, ProcessBuilder, Stdio};
use tokio::io::AsyncBufReadExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let job = Job::builder().kill_on_close(true).create()?;
        // The job's events, printed as they come, by a task of their own.
        let mut events = job.watch(Duration::from_millis(50))?;
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let stopped = std::sync::Arc::clone(&stop);
        let watcher = tokio::spawn(async move {
            let mut counts = (0u32, 0u32);
            loop {
                let e = tokio::select! {
                    e = events.next_event() => e,
                    () = stopped.notified() => break,
                };
                match e {
                    Some(Ok(JobEvent::NewProcess { .. })) => counts.0 += 1,
                    Some(Ok(JobEvent::ProcessExited { .. })) => counts.1 += 1,
                    Some(Ok(other)) => println!("event: {other:?}"),
                    Some(Err(_)) | None => break,
                }
                if (counts.0 + counts.1).is_multiple_of(100) {
                    println!(
                        "events so far: {} new processes, {} exits",
                        counts.0, counts.1
                    );
                }
            }
            counts
        });

        // A grandchild that leaves its session: it stays in the job.
        let mut sh = job.spawn_async(
            ProcessBuilder::new("sh")
                .args(["-c", "setsid sleep 300 & echo $!"])
                .stdout(Stdio::Piped),
        )?;
        let mut line = String::new();
        tokio::io::BufReader::new(sh.stdout.take().unwrap())
            .read_line(&mut line)
            .await?;
        sh.wait().await?;
        let escaper: i32 = line.trim().parse()?;
        println!(
            "setsid grandchild {escaper} is in the job: {}",
            job.contains(escaper)?
        );

        // 200 children at once, each line of output as it comes.
        let mut tasks = Vec::new();
        for i in 0..200 {
            let mut child = job.spawn_async(
                ProcessBuilder::new("sh")
                    .args([
                        "-c",
                        &format!("sleep 0.$((RANDOM % 5)); echo child {i} done"),
                    ])
                    .stdout(Stdio::Piped),
            )?;
            let out = child.stdout.take().unwrap();
            tasks.push(tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(out).lines();
                let mut last = String::new();
                while let Ok(Some(l)) = lines.next_line().await {
                    last = l;
                }
                (last, child.wait().await)
            }));
        }
        let (mut ok, mut printed) = (0, 0);
        for t in tasks {
            let (last, status) = t.await?;
            if status?.success() {
                ok += 1;
            }
            if printed < 3 {
                println!("{last}");
                printed += 1;
            }
        }
        println!("{ok} of 200 children succeeded");

        // Give the watcher a last look, then stop it (it holds a handle).
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.notify_one();
        let (new, exits) = watcher.await?;
        println!("events: {new} new processes, {exits} exits");

        // Dropping the only handle closes the job: the grandchild dies.
        drop(job);
        let mut gone = Process::open(escaper)?.into_async()?;
        tokio::time::timeout(Duration::from_secs(10), gone.wait()).await??;
        println!("the setsid grandchild ended with the job");
        Ok(())
    })
}
