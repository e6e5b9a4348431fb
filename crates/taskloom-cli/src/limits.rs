//! Job limit options shared by `run`, `job create` and `job set`.

use std::time::Duration;

use clap::Args;
use taskloom::{CpuSet, JobLimits, PriorityClass};

#[derive(Debug, Args, Default, Clone)]
pub struct LimitArgs {
    /// Most processes (and threads) alive at once in the job.
    #[arg(long, value_name = "N", help_heading = "Processes")]
    pub max_processes: Option<u64>,
    /// CPU time per process (e.g. 5s); a process past it is killed.
    #[arg(long, value_name = "DURATION", value_parser = parse_cpu_time, help_heading = "Processes")]
    pub process_time: Option<Duration>,
    /// Let members start children outside the job (JOB_OBJECT_LIMIT_BREAKAWAY_OK).
    #[arg(long, help_heading = "Processes")]
    pub breakaway_ok: bool,
    /// A member that crashes just dies: no core file, no crash handler started (JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION).
    #[arg(long, help_heading = "Processes")]
    pub die_on_unhandled_exception: bool,
    /// Memory for the whole job, e.g. 512M; the OOM killer acts inside the job only.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Memory")]
    pub memory: Option<u64>,
    /// A soft ceiling, e.g. 256M: above it the job is reclaimed and slowed, never killed (cgroup2 memory.high).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Memory")]
    pub memory_high: Option<u64>,
    /// Memory protected from reclaim while others have some to give, e.g. 64M (cgroup2 memory.low).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Memory")]
    pub memory_low: Option<u64>,
    /// Notify (`job watch`, the summary) when the job's memory passes SIZE; nothing is stopped.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Soft limits (notify only)")]
    pub notify_memory: Option<u64>,
    /// Notify when the job's user CPU time passes DURATION; nothing is stopped.
    #[arg(long, value_name = "DURATION", value_parser = parse_cpu_time, help_heading = "Soft limits (notify only)")]
    pub notify_user_time: Option<Duration>,
    /// Notify when the job has read SIZE from devices; nothing is stopped.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Soft limits (notify only)")]
    pub notify_io_read: Option<u64>,
    /// Notify when the job has written SIZE to devices; nothing is stopped.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Soft limits (notify only)")]
    pub notify_io_write: Option<u64>,
    /// Bytes read per second from the disk holding PATH, e.g. /dev/vda=10M (repeatable).
    #[arg(long, value_name = "PATH=RATE", value_parser = parse_rate, help_heading = "I/O")]
    pub io_read_bandwidth: Vec<(std::path::PathBuf, u64)>,
    /// Bytes written per second to the disk holding PATH, e.g. /var/tmp=2M (repeatable).
    #[arg(long, value_name = "PATH=RATE", value_parser = parse_rate, help_heading = "I/O")]
    pub io_write_bandwidth: Vec<(std::path::PathBuf, u64)>,
    /// Read operations per second on the disk holding PATH, e.g. /=500 (repeatable).
    #[arg(long, value_name = "PATH=N", value_parser = parse_count_rate, help_heading = "I/O")]
    pub io_read_iops: Vec<(std::path::PathBuf, u64)>,
    /// Write operations per second on the disk holding PATH (repeatable).
    #[arg(long, value_name = "PATH=N", value_parser = parse_count_rate, help_heading = "I/O")]
    pub io_write_iops: Vec<(std::path::PathBuf, u64)>,
    /// Address space per process, e.g. 1G.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Memory")]
    pub process_memory: Option<u64>,
    /// CPUs the job may use, as a list such as 0-3,5.
    #[arg(long, value_name = "LIST", help_heading = "CPU")]
    pub cpus: Option<CpuSet>,
    /// Priority class: idle, below-normal, normal, above-normal, high, realtime.
    #[arg(long, value_name = "CLASS", help_heading = "CPU")]
    pub priority: Option<PriorityClass>,
    /// Hard CPU cap as a percentage of one CPU (150 = one and a half CPUs).
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u32).range(1..), help_heading = "CPU")]
    pub cpu_rate: Option<u32>,
    /// Share of the CPUs against other busy work, 1 (least) to 9 (most); 5 is everyone's default.
    #[arg(long, value_name = "1-9", value_parser = clap::value_parser!(u32).range(1..=9), help_heading = "CPU")]
    pub cpu_weight: Option<u32>,
    /// User CPU time for the whole job (e.g. 10s); the job is terminated past it.
    #[arg(long, value_name = "DURATION", value_parser = parse_cpu_time, help_heading = "CPU")]
    pub job_time: Option<Duration>,
}

/// A path and a rate, as `--io-*` take them.
type PathRate = (std::path::PathBuf, u64);
/// Which of a device's rates an `--io-*` option sets.
type SetRate = fn(&mut taskloom::job::IoRateLimit, u64);

/// `PATH=SIZE`: a path and a byte rate (per second), above zero.
fn parse_rate(s: &str) -> Result<(std::path::PathBuf, u64), String> {
    let (path, rate) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?}: write PATH=RATE, e.g. /dev/vda=10M"))?;
    let rate = parse_size(rate)?;
    if rate == 0 || path.is_empty() {
        return Err(format!("{s:?}: a path and a rate above zero"));
    }
    Ok((path.into(), rate))
}

/// `PATH=N`: a path and operations per second, above zero.
fn parse_count_rate(s: &str) -> Result<(std::path::PathBuf, u64), String> {
    let (path, n) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?}: write PATH=N, e.g. /=500"))?;
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: {n:?} is not a number"))?;
    if n == 0 || path.is_empty() {
        return Err(format!("{s:?}: a path and a rate above zero"));
    }
    Ok((path.into(), n))
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
        // The job-only limits, and those a lone process takes too.
        self.any_job_only() || self.cpus.is_some() || self.priority.is_some() || self.breakaway_ok
    }

    fn any_io_rate(&self) -> bool {
        !self.io_read_bandwidth.is_empty()
            || !self.io_write_bandwidth.is_empty()
            || !self.io_read_iops.is_empty()
            || !self.io_write_iops.is_empty()
    }

    fn any_notify(&self) -> bool {
        self.notify_memory.is_some()
            || self.notify_user_time.is_some()
            || self.notify_io_read.is_some()
            || self.notify_io_write.is_some()
    }

    /// Whether a limit that only a job can enforce was given.
    pub fn any_job_only(&self) -> bool {
        self.max_processes.is_some()
            || self.memory.is_some()
            || self.process_memory.is_some()
            || self.cpu_rate.is_some()
            || self.cpu_weight.is_some()
            || self.memory_low.is_some()
            || self.memory_high.is_some()
            || self.any_notify()
            || self.any_io_rate()
            || self.job_time.is_some()
            || self.process_time.is_some()
            || self.die_on_unhandled_exception
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
        l.cpu_weight = self.cpu_weight.or(l.cpu_weight);
        l.memory_low = self.memory_low.or(l.memory_low);
        l.memory_high = self.memory_high.or(l.memory_high);
        l.notify.job_memory = self.notify_memory.or(l.notify.job_memory);
        l.notify.user_time = self.notify_user_time.or(l.notify.user_time);
        l.notify.io_read_bytes = self.notify_io_read.or(l.notify.io_read_bytes);
        l.notify.io_write_bytes = self.notify_io_write.or(l.notify.io_write_bytes);
        // Each device's rates: given ones replace, the others of that device stay.
        let sets: [(&Vec<PathRate>, SetRate); 4] = [
            (&self.io_read_bandwidth, |r, v| {
                r.read_bytes_per_sec = Some(v)
            }),
            (&self.io_write_bandwidth, |r, v| {
                r.write_bytes_per_sec = Some(v)
            }),
            (&self.io_read_iops, |r, v| r.read_iops = Some(v)),
            (&self.io_write_iops, |r, v| r.write_iops = Some(v)),
        ];
        for (given, set) in sets {
            for (path, v) in given {
                let i = match l.io_rates.iter().position(|r| &r.device == path) {
                    Some(i) => i,
                    None => {
                        l.io_rates.push(taskloom::job::IoRateLimit {
                            device: path.clone(),
                            ..Default::default()
                        });
                        l.io_rates.len() - 1
                    }
                };
                set(&mut l.io_rates[i], *v);
            }
        }
        l.job_time = self.job_time.or(l.job_time);
        l.process_time = self.process_time.or(l.process_time);
        l.breakaway_ok |= self.breakaway_ok;
        l.die_on_unhandled_exception |= self.die_on_unhandled_exception;
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
    if let Some(b) = l.memory_high {
        parts.push(format!("mem-high {}", format_size(b)));
    }
    if let Some(b) = l.memory_low {
        parts.push(format!("mem-low {}", format_size(b)));
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
    if let Some(w) = l.cpu_weight {
        parts.push(format!("cpu-weight {w}"));
    }
    if let Some(t) = l.job_time {
        parts.push(format!("job-time {}", humantime::format_duration(t)));
    }
    if let Some(t) = l.process_time {
        parts.push(format!("proc-time {}", humantime::format_duration(t)));
    }
    let n = &l.notify;
    if let Some(b) = n.job_memory {
        parts.push(format!("notify-mem {}", format_size(b)));
    }
    if let Some(t) = n.user_time {
        parts.push(format!(
            "notify-user-time {}",
            humantime::format_duration(t)
        ));
    }
    if let Some(b) = n.io_read_bytes {
        parts.push(format!("notify-io-read {}", format_size(b)));
    }
    if let Some(b) = n.io_write_bytes {
        parts.push(format!("notify-io-write {}", format_size(b)));
    }
    for r in &l.io_rates {
        let mut io = Vec::new();
        if let Some(b) = r.read_bytes_per_sec {
            io.push(format!("read {}/s", format_size(b)));
        }
        if let Some(b) = r.write_bytes_per_sec {
            io.push(format!("write {}/s", format_size(b)));
        }
        if let Some(n) = r.read_iops {
            io.push(format!("{n} reads/s"));
        }
        if let Some(n) = r.write_iops {
            io.push(format!("{n} writes/s"));
        }
        parts.push(format!("io {} {}", r.device.display(), io.join(" ")));
    }
    if l.breakaway_ok {
        parts.push("breakaway-ok".into());
    }
    if l.die_on_unhandled_exception {
        parts.push("die-on-crash".into());
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}
