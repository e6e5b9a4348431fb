//! `taskloom job …`: create, inspect and control jobs.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use taskloom::job::{Job, JobInfo};
use taskloom::units::format_size;

use crate::limits::{LimitArgs, describe};
use crate::output::{self, Align, table};

#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(subcommand)]
    command: JobCommand,
}

#[derive(Debug, Subcommand)]
enum JobCommand {
    /// Create a job that lasts until `job delete` (CreateJobObject).
    Create {
        /// Name: letters, digits, '-', '_' and '.'.
        name: String,
        /// Create it inside this job (nested).
        #[arg(long, value_name = "JOB")]
        parent: Option<String>,
        /// Permission bits of the job (who may open and manage it), e.g. 700.
        #[arg(long, value_name = "OCTAL", value_parser = parse_mode)]
        mode: Option<u32>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// List jobs with their usage and limits.
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show one job: limits, accounting, members.
    Show {
        /// The job's name.
        name: String,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Put running processes into a job (AssignProcessToJobObject).
    Assign {
        /// The job's name.
        name: String,
        /// Process ids.
        #[arg(required = true)]
        pids: Vec<i32>,
        /// Report per process as a JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Change a job's limits; limits not given stay as they are.
    Set {
        /// The job's name.
        name: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Kill every process in the job (TerminateJobObject).
    Terminate {
        /// The job's name.
        name: String,
    },
    /// Stop every process in the job.
    Freeze {
        /// The job's name.
        name: String,
    },
    /// Let a frozen job run again.
    Thaw {
        /// The job's name.
        name: String,
    },
    /// Print the job's notifications, one per line, until it is deleted.
    Watch {
        /// The job's name.
        name: String,
        /// JSON Lines on stdout.
        #[arg(long)]
        json: bool,
        /// How often to look.
        #[arg(long, default_value = "100ms", value_parser = parse_interval)]
        interval: Duration,
    },
    /// Terminate a job and remove it.
    Delete {
        /// The job's name.
        name: String,
    },
    /// Which job features the kernel enforces on this machine, and how.
    Caps {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// A watch interval: at least 10 ms (a shorter one only burns a CPU) and at
/// most an hour.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = crate::limits::parse_duration(s)?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(3600) {
        return Err(format!("{s:?}: the interval must be between 10ms and 1h"));
    }
    Ok(d)
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not permission bits in octal, such as 700 (0 to 777)"))
}

pub fn main(args: JobArgs) -> Result<i32> {
    match args.command {
        JobCommand::Create {
            name,
            parent,
            mode,
            limits,
        } => {
            let mut b = Job::builder()
                .name(&name)
                .limits(limits.apply_to(&Default::default()));
            if let Some(m) = mode {
                b = b.mode(m);
            }
            let job = match parent {
                Some(p) => b.create_in(&Job::open(&p)?)?,
                None => b.create()?,
            };
            println!("{}", job.name());
        }
        JobCommand::List { json } => {
            let infos: Vec<JobInfo> = Job::list()?
                .iter()
                .filter_map(|n| Job::open(n).and_then(|j| j.info()).ok())
                .collect();
            if json {
                println!("{}", serde_json::to_string(&infos)?);
            } else {
                let rows: Vec<Vec<String>> = infos
                    .iter()
                    .map(|i| {
                        vec![
                            i.name.clone(),
                            i.active_processes.to_string(),
                            i.memory_current
                                .map(format_size)
                                .unwrap_or_else(|| "-".into()),
                            output::duration(i.user_time),
                            output::duration(i.kernel_time),
                            if i.frozen {
                                "frozen".into()
                            } else {
                                "running".into()
                            },
                            describe(&i.limits),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(
                        &[
                            ("NAME", Align::Left),
                            ("PROCS", Align::Right),
                            ("MEM", Align::Right),
                            ("USER", Align::Right),
                            ("SYS", Align::Right),
                            ("STATE", Align::Left),
                            ("LIMITS", Align::Left),
                        ],
                        &rows
                    )
                );
            }
        }
        JobCommand::Show { name, json } => {
            let info = Job::open(&name)?.info()?;
            if json {
                println!("{}", serde_json::to_string(&info)?);
            } else {
                print!("{}", show(&info));
            }
        }
        JobCommand::Assign { name, pids, json } => {
            let job = Job::open(&name)?;
            // Every pid is tried (each through a pidfd opened first) and
            // reported: which were assigned, and why the others were not.
            let results: Vec<(i32, Result<(), taskloom::Error>)> =
                pids.iter().map(|&pid| (pid, job.assign_pid(pid))).collect();
            let failed = results.iter().filter(|(_, r)| r.is_err()).count();
            if json {
                let rows: Vec<serde_json::Value> = results
                    .iter()
                    .map(|(pid, r)| match r {
                        Ok(()) => serde_json::json!({"pid": pid, "assigned": true, "job": job.name()}),
                        Err(e) => serde_json::json!({"pid": pid, "assigned": false, "error": e.to_string()}),
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for (pid, r) in &results {
                    match r {
                        Ok(()) => eprintln!("taskloom: job {name}: assigned {pid}"),
                        Err(e) => eprintln!("taskloom: job {name}: not assigned {pid}: {e}"),
                    }
                }
            }
            // Assigning a member of another job nested this one in it.
            let now = job.name();
            if now != name {
                eprintln!(
                    "taskloom: job {name} was nested in the job of the process assigned to it: it is job {now} now"
                );
            }
            if failed > 0 {
                return Ok(1);
            }
        }
        JobCommand::Set { name, limits } => {
            if !limits.any() {
                bail!("no limit given: see `taskloom job set --help`");
            }
            let mut job = Job::open(&name)?;
            let merged = limits.apply_to(job.limits());
            job.set_limits(&merged)?;
        }
        JobCommand::Terminate { name } => {
            let n = Job::open(&name)?.terminate()?;
            eprintln!("taskloom: job {name}: {n} processes killed");
        }
        JobCommand::Freeze { name } => Job::open(&name)?.freeze()?,
        JobCommand::Thaw { name } => Job::open(&name)?.thaw()?,
        JobCommand::Watch {
            name,
            json,
            interval,
        } => {
            let job = Job::open(&name)?;
            for event in job.watch(interval)? {
                let event = event?;
                if json {
                    println!("{}", serde_json::to_string(&event)?);
                } else {
                    println!("{}", human_event(&event));
                }
            }
        }
        JobCommand::Delete { name } => {
            let n = Job::open(&name)?.delete()?;
            if n > 0 {
                eprintln!("taskloom: job {name}: {n} processes killed");
            }
        }
        JobCommand::Caps { json } => {
            let caps = Job::capabilities();
            if json {
                println!("{}", serde_json::to_string(&caps)?);
            } else {
                // On a terminal the HOW column wraps under itself, as
                // `systemctl` and `apt` wrap long descriptions.
                let indent = caps
                    .iter()
                    .map(|c| c.feature.len())
                    .chain(["FEATURE".len()])
                    .max()
                    .unwrap_or(0)
                    + 2
                    + "ENFORCED".len()
                    + 2;
                let how_width = output::stdout_width()
                    .map(|w| w.saturating_sub(indent))
                    .filter(|&w| w >= 30);
                let mut rows: Vec<Vec<String>> = Vec::new();
                for c in &caps {
                    let enforced = if c.enforced { "yes" } else { "no" };
                    let lines = match how_width {
                        Some(w) => output::wrap(&c.detail, w),
                        None => vec![c.detail.clone()],
                    };
                    for (i, line) in lines.into_iter().enumerate() {
                        rows.push(if i == 0 {
                            vec![c.feature.to_string(), enforced.into(), line]
                        } else {
                            vec![String::new(), String::new(), line]
                        });
                    }
                }
                print!(
                    "{}",
                    table(
                        &[
                            ("FEATURE", Align::Left),
                            ("ENFORCED", Align::Left),
                            ("HOW", Align::Left)
                        ],
                        &rows
                    )
                );
            }
        }
    }
    Ok(0)
}

fn human_event(e: &taskloom::job::JobEvent) -> String {
    use taskloom::job::JobEvent as E;
    match e {
        E::NewProcess { pid } => format!("new-process    pid {pid}"),
        E::ProcessExited {
            pid,
            status: Some(st),
        } => format!("process-exit   pid {pid}: {st}"),
        E::ProcessExited { pid, status: None } => format!("process-exit   pid {pid}"),
        E::ActiveProcessLimit { hits } => format!("process-limit  {hits} forks refused so far"),
        E::MemoryLimit { oom_kills } => format!("memory-limit   {oom_kills} OOM kills so far"),
        E::JobTimeLimit { user_time_ms } => {
            format!("job-time-limit {user_time_ms} ms user time; job terminated")
        }
        E::JobEmpty => "job-empty".to_string(),
        E::NotificationLimit(v) => format!("notification   {}", violation(v)),
    }
}

/// `job-memory 40M over 8M`, `user-time 2.1s over 1s`.
fn violation(v: &taskloom::job::LimitViolation) -> String {
    use taskloom::job::SoftLimit;
    let amount = |x: u64| match v.limit {
        SoftLimit::UserTime => output::duration(Duration::from_millis(x)),
        _ => format_size(x),
    };
    format!(
        "{} {} over {}",
        v.limit.name(),
        amount(v.value),
        amount(v.limit_value)
    )
}

fn show(i: &JobInfo) -> String {
    let opt = |v: Option<u64>| v.map(format_size).unwrap_or_else(|| "-".into());
    let mut s = String::new();
    s.push_str(&format!("job {}\n", output::escape_control(&i.name)));
    s.push_str(&format!(
        "  state        {}\n",
        if i.frozen { "frozen" } else { "running" }
    ));
    s.push_str(&format!("  limits       {}\n", describe(&i.limits)));
    s.push_str(&format!(
        "  processes    {} now, peak {}, {} in all\n",
        i.active_processes,
        i.peak_processes
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into()),
        i.total_processes
            .map(|p| p.to_string())
            .unwrap_or_else(|| "-".into())
    ));
    s.push_str(&format!(
        "  cpu          user {}, sys {}\n",
        output::duration(i.user_time),
        output::duration(i.kernel_time)
    ));
    s.push_str(&format!(
        "  memory       {} now, peak {}\n",
        opt(i.memory_current),
        opt(i.memory_peak)
    ));
    if let Some(io) = &i.io {
        s.push_str(&format!(
            "  io           read {} in {} ops, written {} in {} ops\n",
            format_size(io.read_bytes),
            io.read_operations,
            format_size(io.write_bytes),
            io.write_operations
        ));
    }
    if let Some(p) = &i.pressure {
        let pct = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.1}%"));
        s.push_str(&format!(
            "  pressure     cpu {}, memory {} (all {}), io {} (all {}) over 10 s\n",
            pct(p.cpu_some),
            pct(p.memory_some),
            pct(p.memory_full),
            pct(p.io_some),
            pct(p.io_full)
        ));
    }
    let n = |v: Option<u64>| v.map_or_else(|| "-".into(), |v| v.to_string());
    s.push_str(&format!(
        "  limits hit   {} OOM kills, {} forks refused, {} times over memory-high\n",
        n(i.oom_kills),
        n(i.process_limit_hits),
        n(i.memory_high_hits)
    ));
    if !i.violations.is_empty() {
        let v: Vec<String> = i.violations.iter().map(violation).collect();
        s.push_str(&format!("  soft limits  {}\n", v.join(", ")));
    }
    let pids: Vec<String> = i.pids.iter().map(|p| p.to_string()).collect();
    s.push_str(&format!(
        "  members      {}\n",
        if pids.is_empty() {
            "-".into()
        } else {
            pids.join(" ")
        }
    ));
    s
}
