//! Job limit options shared by `run`, `job create` and `job set`.

use std::time::Duration;

use clap::Args;
use taskloom::{CpuSet, JobLimits, PriorityClass};

#[derive(Debug, Args, Default, Clone)]
pub struct LimitArgs {
    /// Most processes (and threads) alive at once in the job.
    #[arg(long, value_name = "N")]
    pub max_processes: Option<u64>,
    /// Memory for the whole job, e.g. 512M; the OOM killer acts inside the job only.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,
    /// Address space per process, e.g. 1G.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub process_memory: Option<u64>,
    /// CPUs the job may use, as a list such as 0-3,5.
    #[arg(long, value_name = "LIST")]
    pub cpus: Option<CpuSet>,
    /// Priority class: idle, below-normal, normal, above-normal, high, realtime.
    #[arg(long, value_name = "CLASS")]
    pub priority: Option<PriorityClass>,
    /// Hard CPU cap as a percentage of one CPU (150 = one and a half CPUs).
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u32).range(1..))]
    pub cpu_rate: Option<u32>,
    /// User CPU time for the whole job (e.g. 10s); the job is terminated past it.
    #[arg(long, value_name = "DURATION", value_parser = parse_cpu_time)]
    pub job_time: Option<Duration>,
    /// CPU time per process (e.g. 5s); a process past it is killed.
    #[arg(long, value_name = "DURATION", value_parser = parse_cpu_time)]
    pub process_time: Option<Duration>,
    /// Let members start children outside the job (JOB_OBJECT_LIMIT_BREAKAWAY_OK).
    #[arg(long)]
    pub breakaway_ok: bool,
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    taskloom::units::parse_size(s).map_err(|e| e.to_string())
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))
}

/// A CPU-time limit: a duration above zero (a zero limit would end every
/// process at once, which no one means).
pub fn parse_cpu_time(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?}: a CPU-time limit must be above zero"));
    }
    Ok(d)
}

impl LimitArgs {
    /// Whether any limit was given.
    #[cfg_attr(windows, allow(dead_code))] // for `job set`, Linux only yet
    pub fn any(&self) -> bool {
        self.max_processes.is_some()
            || self.memory.is_some()
            || self.process_memory.is_some()
            || self.cpus.is_some()
            || self.priority.is_some()
            || self.cpu_rate.is_some()
            || self.job_time.is_some()
            || self.process_time.is_some()
            || self.breakaway_ok
    }

    /// Whether a limit that only a job can enforce was given.
    pub fn any_job_only(&self) -> bool {
        self.max_processes.is_some()
            || self.memory.is_some()
            || self.process_memory.is_some()
            || self.cpu_rate.is_some()
            || self.job_time.is_some()
            || self.process_time.is_some()
    }

    /// These limits laid over `base` (given ones replace, others stay).
    pub fn apply_to(&self, base: &JobLimits) -> JobLimits {
        let mut l = base.clone();
        l.active_processes = self.max_processes.or(l.active_processes);
        l.job_memory = self.memory.or(l.job_memory);
        l.process_memory = self.process_memory.or(l.process_memory);
        l.affinity = self.cpus.or(l.affinity);
        l.priority = self.priority.or(l.priority);
        l.cpu_rate_percent = self.cpu_rate.or(l.cpu_rate_percent);
        l.job_time = self.job_time.or(l.job_time);
        l.process_time = self.process_time.or(l.process_time);
        l.breakaway_ok |= self.breakaway_ok;
        l
    }
}

/// A short human list of the limits in force: `procs 10, mem 512M, cpus 0-1`.
#[cfg_attr(windows, allow(dead_code))] // for `job`, Linux only yet
pub fn describe(l: &JobLimits) -> String {
    use taskloom::units::format_size;
    let mut parts = Vec::new();
    if let Some(n) = l.active_processes {
        parts.push(format!("procs {n}"));
    }
    if let Some(b) = l.job_memory {
        parts.push(format!("mem {}", format_size(b)));
    }
    if let Some(b) = l.process_memory {
        parts.push(format!("proc-mem {}", format_size(b)));
    }
    if let Some(c) = l.affinity {
        parts.push(format!("cpus {c}"));
    }
    if let Some(p) = l.priority {
        parts.push(format!("priority {p}"));
    }
    if let Some(r) = l.cpu_rate_percent {
        parts.push(format!("cpu-rate {r}%"));
    }
    if let Some(t) = l.job_time {
        parts.push(format!("job-time {}", humantime::format_duration(t)));
    }
    if let Some(t) = l.process_time {
        parts.push(format!("proc-time {}", humantime::format_duration(t)));
    }
    if l.breakaway_ok {
        parts.push("breakaway-ok".into());
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}
