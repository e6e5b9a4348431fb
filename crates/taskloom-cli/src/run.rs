//! `taskloom run`: start a program in a job, wait, summarise.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use taskloom::job::{Job, JobEvent};
use taskloom::process::{ExitStatus, ProcessBuilder};
use taskloom::units::format_size;

use crate::limits::{LimitArgs, parse_duration};
use crate::output;

/// Exit code when taskloom itself fails (as `env`, `nice` and `timeout` do).
const EXIT_FAILURE: i32 = 125;
/// The program exists but could not be executed.
const EXIT_CANNOT_EXECUTE: i32 = 126;
/// The program was not found.
const EXIT_NOT_FOUND: i32 = 127;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Working directory of the program.
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// Set an environment variable (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(OsString, OsString)>,
    /// Start from an empty environment.
    #[arg(long)]
    clear_env: bool,
    /// Start suspended (before its first instruction), resume after this long (e.g. 500ms, 2s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    suspended_for: Option<Duration>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Name of the job the program runs in (anonymous by default).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Wait until every process in the job has ended, not only PROGRAM.
    #[arg(long)]
    wait_all: bool,
    /// Run without a job: no limits, and processes PROGRAM leaves behind keep running.
    #[arg(long, conflicts_with_all = ["name", "wait_all"])]
    no_job: bool,
    /// Print the summary as one JSON object on stdout instead of a line on stderr.
    #[arg(long)]
    json: bool,
    /// The program and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM"
    )]
    command: Vec<OsString>,
}

fn parse_env(s: &str) -> Result<(OsString, OsString), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.into(), v.into())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// The exit code for a failure of taskloom itself.
pub fn failure_code(err: &anyhow::Error) -> i32 {
    match err.downcast_ref::<taskloom::Error>() {
        Some(taskloom::Error::ProgramNotFound { .. } | taskloom::Error::NoSuchFile { .. }) => {
            EXIT_NOT_FOUND
        }
        Some(taskloom::Error::Exec { .. } | taskloom::Error::IsADirectory { .. }) => {
            EXIT_CANNOT_EXECUTE
        }
        _ => EXIT_FAILURE,
    }
}

#[derive(Debug, Default, serde::Serialize)]
struct JobSummary {
    name: String,
    peak_processes: Option<u64>,
    /// Whether the kernel counted the peak (`pids.peak`) or taskloom sampled it (a lower bound).
    peak_processes_exact: bool,
    peak_memory_bytes: Option<u64>,
    killed_at_close: usize,
    limits_hit: Vec<&'static str>,
    /// Every process the job had (exact with the kernel's process-events connector, i.e. as root).
    total_processes: u64,
    /// Members that ended by a signal or a non-zero code (known only with the connector).
    abnormal_exits: u64,
    /// Whether the totals are exact (connector) or sampled.
    totals_exact: bool,
}

#[derive(Debug, serde::Serialize)]
struct Summary {
    pid: i32,
    status: ExitStatus,
    exit_code: i32,
    wall_seconds: f64,
    user_seconds: f64,
    kernel_seconds: f64,
    peak_rss_bytes: u64,
    suspended_seconds: Option<f64>,
    job: Option<JobSummary>,
}

/// The job `run` created: deleted when `main` leaves early (a failed spawn,
/// say), so that nothing `run` made is left behind.
struct JobGuard(Option<Job>);

impl Drop for JobGuard {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            let _ = job.delete();
        }
    }
}

pub fn main(args: RunArgs) -> Result<i32> {
    let (program, rest) = args.command.split_first().context("no program given")?;
    let mut builder = ProcessBuilder::new(program).args(rest);
    if args.clear_env {
        builder = builder.env_clear();
    }
    for (k, v) in &args.env {
        builder = builder.env(k, v);
    }
    if let Some(dir) = &args.cwd {
        builder = builder.current_dir(dir);
    }
    builder = builder.suspended(args.suspended_for.is_some());

    let job = if args.no_job {
        if args.limits.any_job_only() {
            bail!(
                "--no-job takes no job limits (only --cpus and --priority apply to a lone process)"
            );
        }
        if let Some(cpus) = args.limits.cpus {
            builder = builder.affinity(cpus);
        }
        if let Some(class) = args.limits.priority {
            builder = builder.priority(class);
        }
        None
    } else {
        let mut b = Job::builder()
            .kill_on_close(true)
            .limits(args.limits.apply_to(&Default::default()));
        if let Some(name) = &args.name {
            b = b.name(name);
        }
        Some(
            b.create()
                .context("cannot create the job (use --no-job to run without one)")?,
        )
    };
    // From here on, every way out of `main` removes the job `run` created.
    let mut job = JobGuard(job);

    let start = Instant::now();
    let mut child = match &job.0 {
        Some(job) => job.spawn(builder)?,
        None => builder.spawn()?,
    };
    // Watch the job while it runs: limits hit, job time enforced.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = match &job.0 {
        Some(job) => {
            let mut w = job.watch(Duration::from_millis(50))?;
            let stop = stop.clone();
            Some(std::thread::spawn(move || {
                let mut hits: Vec<&'static str> = Vec::new();
                let mut peak = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(events) = w.poll_once() {
                        for e in events {
                            let hit = match e {
                                JobEvent::ActiveProcessLimit { .. } => "max-processes",
                                JobEvent::MemoryLimit { .. } => "memory",
                                JobEvent::JobTimeLimit { .. } => "job-time",
                                _ => continue,
                            };
                            if !hits.contains(&hit) {
                                hits.push(hit);
                            }
                        }
                    }
                    peak = peak.max(w.members());
                    std::thread::sleep(Duration::from_millis(50));
                }
                // One last look: forks and exits up to the close.
                let _ = w.poll_once();
                (hits, peak, w.counts())
            }))
        }
        None => None,
    };
    if let Some(pause) = args.suspended_for {
        std::thread::sleep(pause);
        child.resume()?;
    }
    let status = child.wait()?;
    if let (Some(job), true) = (&job.0, args.wait_all) {
        while !job.wait_empty(Duration::from_secs(3600))? {}
    }
    let wall = start.elapsed();
    let usage = child.resource_usage().unwrap_or_default();
    let mut job_summary = None;
    let (mut user, mut kernel) = (usage.user, usage.kernel);
    if let Some(job) = &job.0 {
        let info = job.info()?;
        let killed = job.terminate()?;
        stop.store(true, Ordering::Relaxed);
        let (mut hits, sampled_peak, counts) = watcher
            .map(|w| w.join().unwrap_or_default())
            .unwrap_or_default();
        if let Some(limit) = info.limits.process_time
            && status.signal().is_some_and(|s| s == 9 || s == 24)
            && usage.user + usage.kernel >= limit.saturating_sub(Duration::from_millis(10))
        {
            hits.push("process-time");
        }
        // Counters the kernel kept settle what a 50 ms poll may have missed.
        for (count, hit) in [
            (info.oom_kills, "memory"),
            (info.process_limit_hits, "max-processes"),
        ] {
            if count.unwrap_or(0) > 0 && !hits.contains(&hit) {
                hits.push(hit);
            }
        }
        user = user.max(info.user_time);
        kernel = kernel.max(info.kernel_time);
        job_summary = Some(JobSummary {
            name: info.name,
            peak_processes: info.peak_processes.or(Some(if counts.exact {
                counts.peak_processes
            } else {
                sampled_peak.max(killed + 1) as u64
            })),
            peak_processes_exact: info.peak_processes.is_some() || counts.exact,
            peak_memory_bytes: info.memory_peak,
            killed_at_close: killed,
            limits_hit: hits,
            total_processes: counts.total_processes.max(killed as u64 + 1),
            abnormal_exits: counts.abnormal_exits,
            totals_exact: counts.exact,
        });
    }
    if let Some(job) = job.0.take() {
        job.delete()?;
    }
    let summary = Summary {
        pid: child.pid(),
        status,
        exit_code: status.shell_code(),
        wall_seconds: wall.as_secs_f64(),
        user_seconds: user.as_secs_f64(),
        kernel_seconds: kernel.as_secs_f64(),
        peak_rss_bytes: usage.peak_rss,
        suspended_seconds: args.suspended_for.map(|d| d.as_secs_f64()),
        job: job_summary,
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        eprintln!("{}", human_summary(&summary, wall, user, kernel));
    }
    Ok(status.shell_code())
}

fn human_summary(s: &Summary, wall: Duration, user: Duration, kernel: Duration) -> String {
    let mut line = format!(
        "taskloom: {} · wall {} · user {} · sys {} · peak {}",
        s.status,
        output::duration(wall),
        output::duration(user),
        output::duration(kernel),
        format_size(s.peak_rss_bytes),
    );
    if let Some(job) = &s.job {
        let all = if job.totals_exact { "" } else { "≥" };
        line.push_str(&format!(" · job {all}{} procs in all", job.total_processes));
        if let Some(p) = job.peak_processes {
            let at_least = if job.peak_processes_exact { "" } else { "≥" };
            line.push_str(&format!(", peak {at_least}{p}"));
        }
        if let Some(m) = job.peak_memory_bytes {
            line.push_str(&format!(", {}", format_size(m)));
        }
        if job.killed_at_close > 0 {
            line.push_str(&format!(" · {} left behind, killed", job.killed_at_close));
        }
        if !job.limits_hit.is_empty() {
            line.push_str(&format!(" · limits hit: {}", job.limits_hit.join(", ")));
        }
    }
    line
}
