//! `taskloom run`: start a program, wait, summarise.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use taskloom::process::{ExitStatus, ProcessBuilder};
use taskloom::units::format_size;
use taskloom::{CpuSet, PriorityClass};

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
    /// Priority class: idle, below-normal, normal, above-normal, high, realtime.
    #[arg(long, value_name = "CLASS")]
    priority: Option<PriorityClass>,
    /// CPUs the program may run on, as a list such as 0-3,5.
    #[arg(long, value_name = "LIST")]
    cpus: Option<CpuSet>,
    /// Start suspended (before its first instruction), resume after this long (e.g. 500ms, 2s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    suspended_for: Option<Duration>,
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

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))
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
    if let Some(class) = args.priority {
        builder = builder.priority(class);
    }
    if let Some(cpus) = args.cpus {
        builder = builder.affinity(cpus);
    }
    builder = builder.suspended(args.suspended_for.is_some());

    let start = Instant::now();
    let mut child = builder.spawn()?;
    if let Some(pause) = args.suspended_for {
        std::thread::sleep(pause);
        child.resume()?;
    }
    let status = child.wait()?;
    let wall = start.elapsed();
    let usage = child.resource_usage().unwrap_or_default();
    let summary = Summary {
        pid: child.pid(),
        status,
        exit_code: status.shell_code(),
        wall_seconds: wall.as_secs_f64(),
        user_seconds: usage.user.as_secs_f64(),
        kernel_seconds: usage.kernel.as_secs_f64(),
        peak_rss_bytes: usage.peak_rss,
        suspended_seconds: args.suspended_for.map(|d| d.as_secs_f64()),
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        eprintln!(
            "taskloom: {status} · wall {} · user {} · sys {} · peak {}",
            output::duration(wall),
            output::duration(usage.user),
            output::duration(usage.kernel),
            format_size(usage.peak_rss),
        );
    }
    Ok(status.shell_code())
}
