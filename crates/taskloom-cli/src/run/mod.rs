//! `taskloom run`: start a program in a job, supervise it, summarise.
//!
//! What both systems share is here: the exit codes, the option parsers,
//! the summary and its two forms. The supervision is each system's own:
//! `linux.rs` (signals forwarded, the job watcher, the debugger, logon)
//! and `windows.rs` (console control events, job objects).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use taskloom::job::{Job, JobBuilder};
use taskloom::process::{ExitStatus, ProcessBuilder};
use taskloom::units::format_size;

use crate::OrTrace;
use crate::limits::{LimitArgs, parse_duration};
use crate::output;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
mod pico;
#[cfg(windows)]
mod windows;

#[cfg(target_os = "linux")]
pub use linux::{RunArgs, main};
#[cfg(windows)]
pub use windows::{RunArgs, main};

/// Exit code when taskloom itself fails (as `env`, `nice` and `timeout` do).
pub const EXIT_FAILURE: i32 = 125;
/// The program exists but could not be executed.
pub(super) const EXIT_CANNOT_EXECUTE: i32 = 126;
/// The program was not found.
pub(super) const EXIT_NOT_FOUND: i32 = 127;
/// The run reached `--timeout` (as `timeout` exits).
pub(super) const EXIT_TIMED_OUT: i32 = 124;
/// Two SIGINTs closer than this terminate the job.
pub(super) const SECOND_INTERRUPT: Duration = Duration::from_secs(2);
/// How often a `--wait-all` run looks whether the job is empty yet.
pub(super) const EMPTY_TICK: Duration = Duration::from_millis(5);
/// The longest duration an option takes: past it, a deadline means nothing.
pub(super) const LONGEST: Duration = Duration::from_secs(366 * 24 * 3600);

pub(super) fn parse_env(s: &str) -> Result<(OsString, OsString), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.into(), v.into())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// A duration no longer than a year (longer ones are typing mistakes, and
/// would overflow a deadline).
pub(super) fn parse_bounded_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > LONGEST {
        return Err(format!("{s:?}: longer than a year"));
    }
    Ok(d)
}

pub(super) fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_bounded_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?}: a time-out must be above zero"));
    }
    Ok(d)
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

/// The options of `run` both systems have.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Working directory of the program.
    #[arg(long, value_name = "DIR")]
    pub(super) cwd: Option<PathBuf>,
    /// Set an environment variable (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub(super) env: Vec<(OsString, OsString)>,
    /// Start from an empty environment.
    #[arg(long)]
    pub(super) clear_env: bool,
    /// Start suspended (before its first instruction), resume after this long (e.g. 500ms, 2s).
    #[arg(long, value_name = "DURATION", value_parser = parse_bounded_duration)]
    pub(super) suspended_for: Option<Duration>,
    #[command(flatten)]
    pub(super) limits: LimitArgs,
    #[cfg_attr(
        target_os = "linux",
        doc = "Wall-clock limit for the run: at the deadline PROGRAM gets --signal, and\n--kill-after later the whole job is terminated; taskloom then exits 124."
    )]
    #[cfg_attr(
        windows,
        doc = "Wall-clock limit for the run: at the deadline the job is terminated;\ntaskloom then exits 124."
    )]
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub(super) timeout: Option<Duration>,
    /// Name of the job the program runs in (anonymous by default).
    #[arg(long, value_name = "NAME")]
    pub(super) name: Option<String>,
    /// Wait until every process in the job has ended, not only PROGRAM.
    #[arg(long)]
    pub(super) wait_all: bool,
    /// Run without a job: no limits, and processes PROGRAM leaves behind keep running.
    #[arg(long, conflicts_with_all = ["name", "wait_all"])]
    pub(super) no_job: bool,
    /// Print the summary as one JSON object on stdout instead of a line on stderr.
    #[arg(long)]
    pub(super) json: bool,
    /// Print no summary.
    #[arg(short, long, conflicts_with = "json")]
    pub(super) quiet: bool,
    /// The program and its arguments (options for taskloom come before it;
    /// `--` may separate them).
    #[arg(required = true, trailing_var_arg = true, value_name = "PROGRAM")]
    pub(super) command: Vec<OsString>,
}

impl CommonArgs {
    /// The program's builder: its arguments, environment, directory and a
    /// suspended start as asked.
    pub(super) fn builder(&self) -> anyhow::Result<ProcessBuilder> {
        let (program, rest) = self.command.split_first().context("no program given")?;
        let mut builder = ProcessBuilder::new(program).args(rest);
        if self.clear_env {
            builder = builder.env_clear();
        }
        for (k, v) in &self.env {
            builder = builder.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            builder = builder.current_dir(dir);
        }
        Ok(builder.suspended(self.suspended_for.is_some()))
    }

    /// The run's job, kill-on-close, with the limits asked (`None` with
    /// `--no-job`, when a lone process gets `--cpus` and `--priority`);
    /// `options` adds what one system's job builder has more.
    pub(super) fn job(
        &self,
        mut builder: ProcessBuilder,
        options: impl FnOnce(JobBuilder) -> JobBuilder,
    ) -> anyhow::Result<(Option<Job>, ProcessBuilder)> {
        if self.no_job {
            if self.limits.any_job_only() {
                bail!(
                    "--no-job takes no job limits (only --cpus and --priority apply to a lone process)"
                );
            }
            if let Some(cpus) = self.limits.cpus {
                builder = builder.affinity(cpus);
            }
            if let Some(class) = self.limits.priority {
                builder = builder.priority(class);
            }
            return Ok((None, builder));
        }
        let mut b = options(
            Job::builder()
                .limits(self.limits.apply_to(&Default::default()))
                .kill_on_close(true),
        );
        if let Some(name) = &self.name {
            b = b.name(name);
        }
        let job = b
            .create()
            .context("cannot create the job (use --no-job to run without one)")?;
        Ok((Some(job), builder))
    }
}

#[derive(Debug, Default, serde::Serialize)]
pub(super) struct JobSummary {
    pub(super) name: String,
    /// Whether PROGRAM and its children were kept in the job by a cgroup namespace.
    pub(super) contained: bool,
    pub(super) peak_processes: Option<u64>,
    /// Whether the kernel counted the peak (`pids.peak`) or taskloom sampled it (a lower bound).
    pub(super) peak_processes_exact: bool,
    pub(super) peak_memory_bytes: Option<u64>,
    /// The job's I/O at the close, where the system counts it.
    pub(super) io: Option<taskloom::job::JobIo>,
    pub(super) killed_at_close: usize,
    pub(super) limits_hit: Vec<&'static str>,
    /// Every process the job had (exact with the kernel's process-events connector, i.e. as root).
    pub(super) total_processes: u64,
    /// Members that ended by a signal or a non-zero code (known only with the connector).
    pub(super) abnormal_exits: u64,
    /// Whether the totals are exact (connector) or sampled.
    pub(super) totals_exact: bool,
}

/// Why taskloom ended the run before PROGRAM ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum EndedBy {
    /// `--timeout` passed.
    Timeout,
    /// A second SIGINT terminated the job.
    Interrupt,
    /// A signal reached taskloom after PROGRAM had ended (`--wait-all`).
    Signal,
}

#[derive(Debug, serde::Serialize)]
pub(super) struct Summary {
    pub(super) pid: i32,
    pub(super) status: ExitStatus,
    pub(super) exit_code: i32,
    /// Set when taskloom ended the run (a time-out, a second interrupt).
    pub(super) ended_by: Option<EndedBy>,
    /// Signals forwarded to PROGRAM, by name, in order.
    pub(super) signals_forwarded: Vec<String>,
    pub(super) wall_seconds: f64,
    pub(super) user_seconds: f64,
    pub(super) kernel_seconds: f64,
    /// The program's peak resident set (Linux: `wait4`'s; unknown on Windows).
    pub(super) peak_rss_bytes: Option<u64>,
    pub(super) suspended_seconds: Option<f64>,
    pub(super) job: Option<JobSummary>,
}

/// How a run ended, as each system's supervision saw it: what the summary
/// is made of.
pub(super) struct Outcome {
    pub(super) pid: i32,
    pub(super) status: ExitStatus,
    pub(super) ended_by: Option<EndedBy>,
    pub(super) signals_forwarded: Vec<String>,
    pub(super) wall: Duration,
    pub(super) user: Duration,
    pub(super) kernel: Duration,
    pub(super) peak_rss_bytes: Option<u64>,
    pub(super) job: Option<JobSummary>,
}

impl CommonArgs {
    /// The end of every run: the job removed, the exit code (124 after a
    /// time-out, else the program's), and the summary as asked.
    pub(super) fn conclude(&self, mut job: JobGuard, o: Outcome) -> anyhow::Result<i32> {
        if let Some(job) = job.0.take() {
            job.delete()?;
        }
        let exit_code = match o.ended_by {
            Some(EndedBy::Timeout) => EXIT_TIMED_OUT,
            _ => o.status.shell_code(),
        };
        let summary = Summary {
            pid: o.pid,
            status: o.status,
            exit_code,
            ended_by: o.ended_by,
            signals_forwarded: o.signals_forwarded,
            wall_seconds: o.wall.as_secs_f64(),
            user_seconds: o.user.as_secs_f64(),
            kernel_seconds: o.kernel.as_secs_f64(),
            peak_rss_bytes: o.peak_rss_bytes,
            suspended_seconds: self.suspended_for.map(|d| d.as_secs_f64()),
            job: o.job,
        };
        if self.json {
            println!("{}", serde_json::to_string(&summary)?);
        } else if !self.quiet {
            eprintln!("{}", human_summary(&summary, o.wall, o.user, o.kernel));
        }
        Ok(exit_code)
    }
}

/// The job `run` created: deleted when `main` leaves early (a failed spawn,
/// say), so that nothing `run` made is left behind.
pub(super) struct JobGuard(pub(super) Option<Job>);

impl Drop for JobGuard {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            let name = job.name();
            job.delete()
                .or_trace(|| format!("delete job {name} after a failed run"));
        }
    }
}

pub(super) fn human_summary(
    s: &Summary,
    wall: Duration,
    user: Duration,
    kernel: Duration,
) -> String {
    let ended = match s.ended_by {
        Some(EndedBy::Timeout) => "timed out, ",
        Some(EndedBy::Interrupt) => "interrupted twice, job terminated, ",
        Some(EndedBy::Signal) => "job terminated by a signal, ",
        None => "",
    };
    let mut line = format!(
        "taskloom: {ended}{} · wall {} · user {} · sys {} · peak {}",
        s.status,
        output::duration(wall),
        output::duration(user),
        output::duration(kernel),
        s.peak_rss_bytes.map_or_else(|| "-".into(), format_size),
    );
    if !s.signals_forwarded.is_empty() {
        line.push_str(&format!(" · forwarded {}", s.signals_forwarded.join(", ")));
    }
    if let Some(job) = &s.job {
        let all = if job.totals_exact { "" } else { "≥" };
        line.push_str(&format!(" · job {all}{} procs in all", job.total_processes));
        if let Some(p) = job.peak_processes {
            let at_least = if job.peak_processes_exact { "" } else { "≥" };
            line.push_str(&format!(", peak {at_least}{p}"));
        }
        if let Some(io) = &job.io
            && (io.read_bytes > 0 || io.write_bytes > 0)
        {
            line.push_str(&format!(
                ", io read {} written {}",
                format_size(io.read_bytes),
                format_size(io.write_bytes)
            ));
        }
        if let Some(m) = job.peak_memory_bytes {
            line.push_str(&format!(", {}", format_size(m)));
        }
        if job.killed_at_close > 0 {
            line.push_str(&format!(" · {} left behind, killed", job.killed_at_close));
        }
        if !job.limits_hit.is_empty() {
            line.push_str(&format!(" · limits hit: {}", job.limits_hit.join(", ")));
            if job.limits_hit.contains(&"process-memory") {
                line.push_str(&format!(
                    " (likely: {} under an address-space limit)",
                    s.status
                ));
            }
        }
    }
    line
}

/// The name a soft limit the job went over has among the limits hit: the
/// option that set it.
pub(super) fn soft_limit_hit(limit: taskloom::job::SoftLimit) -> &'static str {
    use taskloom::job::SoftLimit;
    match limit {
        SoftLimit::JobMemory => "notify-memory",
        SoftLimit::UserTime => "notify-user-time",
        SoftLimit::IoReadBytes => "notify-io-read",
        SoftLimit::IoWriteBytes => "notify-io-write",
    }
}
