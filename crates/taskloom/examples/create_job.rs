//! The reference document's "Creating a Job Object", with taskloom.
//!
//! Windows creates the job "Unemployed" with KILL_ON_JOB_CLOSE, starts
//! notepad and dvdplay suspended, assigns both, resumes them, lets them run
//! a minute and terminates the job. Here two `sleep`s (`ping`s on Windows)
//! play the programs and they run for one second. On Linux it needs a
//! writable cgroup (root, or a delegated subtree). Run: `cargo run -p
//! taskloom --example create_job` (under Wine: add `--target
//! x86_64-pc-windows-gnu`).

use std::time::Duration;

use taskloom::job::Job;
use taskloom::process::{ProcessBuilder, Stdio};

/// A process that sleeps about `secs` seconds, on either system.
fn sleeper(secs: u32) -> ProcessBuilder {
    if cfg!(windows) {
        ProcessBuilder::new("ping")
            .args(["-n", &(secs + 1).to_string(), "127.0.0.1"])
            .stdout(Stdio::Null)
    } else {
        ProcessBuilder::new("sleep").arg(secs.to_string())
    }
}

fn main() -> Result<(), taskloom::Error> {
    // A named job whose processes die when its last handle closes.
    let job = Job::builder()
        .name("Unemployed")
        .kill_on_close(true)
        .create()?;

    // Two processes created suspended, then assigned (as the Windows example does).
    let first = sleeper(60).suspended(true).spawn()?;
    let second = sleeper(61).suspended(true).spawn()?;
    job.assign(&first)?;
    job.assign(&second)?;
    first.resume()?;
    second.resume()?;
    println!("Job created and processes added!");
    for p in [&first, &second] {
        println!(
            "  pid {} is in job {}: {}",
            p.pid(),
            job.name(),
            job.contains(p.pid())?
        );
    }

    std::thread::sleep(Duration::from_secs(1));
    let killed = job.terminate()?;
    println!("Job terminated: {killed} processes killed");
    job.delete()?;
    Ok(())
}
