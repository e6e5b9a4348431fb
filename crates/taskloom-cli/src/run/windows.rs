//! `taskloom run` on Windows: the program in a kill-on-close job object,
//! supervised by one loop on the library's [`ControlEvents`] (the
//! program's end, console control events, deadlines).
//!
//! Ctrl-C and Ctrl-Break reach every process on the console, the program
//! among them, so nothing is forwarded; a second Ctrl-C within
//! [`SECOND_INTERRUPT`] terminates the job. Windows has no signal to send
//! first at a time-out: at `--timeout` the job (or the lone program) is
//! terminated, and taskloom exits 124.

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use taskloom::job::Job;
use taskloom::process::{ControlEvents, ExitStatus, Process, signals};

use super::{
    CommonArgs, EMPTY_TICK, EndedBy, JobGuard, JobSummary, LONGEST, Outcome, SECOND_INTERRUPT,
};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
}

pub fn main(args: RunArgs) -> Result<i32> {
    let events = ControlEvents::catch(&[signals::INT, signals::QUIT])?;
    let args = args.common;
    let builder = args.builder()?;
    let (job, builder) = args.job(builder, |b| b)?;
    // From here on, every way out of `main` removes the job `run` created.
    let job = JobGuard(job);
    let start = Instant::now();
    let mut child = match &job.0 {
        Some(job) => job.spawn(builder)?,
        None => builder.spawn()?,
    };
    let (status, ended_by) = supervise(&events, job.0.as_ref(), &mut child, start, &args)?;
    finish(args, job, child, status, ended_by, start)
}

/// Runs until PROGRAM (with `--wait-all`, the whole job) has ended.
fn supervise(
    events: &ControlEvents,
    job: Option<&Job>,
    child: &mut Process,
    start: Instant,
    args: &CommonArgs,
) -> Result<(ExitStatus, Option<EndedBy>)> {
    let terminate = |child: &Process| -> Result<()> {
        match job {
            Some(job) => {
                job.terminate()?;
            }
            None => child.terminate()?,
        }
        Ok(())
    };
    let mut resume_at = args.suspended_for.map(|d| start + d);
    let mut deadline = args.timeout.map(|t| start + t);
    let mut last_interrupt: Option<Instant> = None;
    let mut status = None;
    let mut ended_by = None;
    loop {
        let now = Instant::now();
        if resume_at.is_some_and(|t| now >= t) {
            resume_at = None;
            if status.is_none() {
                child.resume()?;
            }
        }
        if deadline.is_some_and(|d| now >= d) {
            deadline = None;
            ended_by = Some(EndedBy::Timeout);
            terminate(child)?;
        }
        if status.is_none() {
            status = child.try_wait()?;
        }
        if let Some(status) = status {
            let done = match (job, args.wait_all) {
                (Some(job), true) => job.wait_empty(Duration::ZERO)?,
                _ => true,
            };
            if done {
                return Ok((status, ended_by));
            }
        }
        let mut wake = [resume_at, deadline]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + LONGEST);
        if status.is_some() {
            wake = wake.min(now + EMPTY_TICK);
        }
        events.wait(status.is_none().then_some(&*child), Some(wake))?;
        while let Some(event) = events.next()? {
            let now = Instant::now();
            if status.is_some() {
                // PROGRAM is gone; the rest of the job is what remains.
                ended_by.get_or_insert(EndedBy::Signal);
                terminate(child)?;
                continue;
            }
            if event.signal == signals::INT {
                if last_interrupt.is_some_and(|t| now.duration_since(t) < SECOND_INTERRUPT) {
                    ended_by = Some(EndedBy::Interrupt);
                    terminate(child)?;
                    continue;
                }
                last_interrupt = Some(now);
            }
            // The console gave PROGRAM the event itself: nothing to forward.
        }
    }
}

/// Accounting, the job's removal, the summary.
fn finish(
    args: CommonArgs,
    job: JobGuard,
    child: Process,
    status: ExitStatus,
    ended_by: Option<EndedBy>,
    start: Instant,
) -> Result<i32> {
    let wall = start.elapsed();
    let times = child.times()?;
    let (mut user, mut kernel) = (times.user, times.kernel);
    let mut job_summary = None;
    if let Some(job) = &job.0 {
        let info = job.info()?;
        let killed = if info.pids.is_empty() {
            0
        } else {
            job.terminate()?
        };
        user = user.max(info.user_time);
        kernel = kernel.max(info.kernel_time);
        job_summary = Some(JobSummary {
            name: info.name,
            contained: job.is_contained(),
            peak_processes: None,
            peak_processes_exact: false,
            peak_memory_bytes: info.memory_peak,
            io: info.io,
            killed_at_close: killed,
            limits_hit: info
                .violations
                .iter()
                .map(|v| super::soft_limit_hit(v.limit))
                .collect(),
            total_processes: info.total_processes.unwrap_or(0).max(killed as u64 + 1),
            abnormal_exits: 0,
            totals_exact: info.total_processes.is_some(),
        });
    }
    args.conclude(
        job,
        Outcome {
            pid: child.pid(),
            status,
            ended_by,
            signals_forwarded: Vec::new(),
            wall,
            user,
            kernel,
            peak_rss_bytes: None,
            job: job_summary,
        },
    )
}
