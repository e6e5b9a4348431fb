//! The reference document's "Creating a Job Object", with taskloom.
//!
//! Windows creates the job "Unemployed" with KILL_ON_JOB_CLOSE, starts
//! notepad and dvdplay suspended, assigns both, resumes them, lets them run
//! a minute and terminates the job. Here two `sleep`s play the programs and
//! they run for one second. Needs a writable cgroup (root, or a delegated
//! subtree). Run: `cargo run -p taskloom --example create_job`.
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

use std::time::Duration;

use taskloom::job::{self, Job};
use taskloom::process::ProcessBuilder;

fn main() -> Result<(), taskloom::Error> {
    // A named job whose processes die when its last handle closes.
    let job = Job::builder()
        .name("Unemployed")
        .kill_on_close(true)
        .create()?;

    // Two processes created suspended, then assigned (as the Windows example does).
    let first = ProcessBuilder::new("sleep")
        .arg("60")
        .suspended(true)
        .spawn()?;
    let second = ProcessBuilder::new("sleep")
        .arg("61")
        .suspended(true)
        .spawn()?;
    job.assign(&first)?;
    job.assign(&second)?;
    first.resume()?;
    second.resume()?;
    println!("Job created and processes added!");
    for p in [&first, &second] {
        println!("  pid {} is in job {:?}", p.pid(), job::job_of(p.pid())?);
    }

    std::thread::sleep(Duration::from_secs(1));
    let killed = job.terminate()?;
    println!("Job terminated: {killed} processes killed");
    job.delete()?;
    Ok(())
}
