//! The collector: snapshots of every process and every job, with CPU rates
//! from the difference between two snapshots. It runs on a thread of its
//! own, so the screen answers keys while a scan of thousands of processes
//! is under way.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use taskloom::inspect::{self, Classification, ProcEntry, SnapshotOptions};
use taskloom::job::{Job, JobInfo};

/// One process as the view shows it.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub user: String,
    /// The kernel's name (`comm`), raw bytes.
    pub name: Vec<u8>,
    /// The command line, arguments joined by spaces (lossy, for display).
    pub command: String,
    /// The arguments as the kernel has them.
    pub argv: Vec<Vec<u8>>,
    pub state: char,
    pub threads: i64,
    pub rss: u64,
    /// CPU use since the last snapshot, in percent of one CPU.
    pub cpu: f64,
    pub start_time: SystemTime,
    pub job: Option<String>,
    pub kernel_thread: bool,
    /// How Windows would classify it (taken once per process: it hardly changes).
    pub class: Classification,
    /// Not in the previous snapshot.
    pub new: bool,
}

/// One job as the view shows it.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub info: JobInfo,
    /// CPU use since the last snapshot, in percent of one CPU.
    pub cpu: f64,
}

/// Everything one refresh shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub procs: Vec<Proc>,
    /// Processes of the previous snapshot that are gone (pid, name, kernel thread).
    pub ended: Vec<(i32, Vec<u8>, bool)>,
    pub jobs: Vec<JobRow>,
    /// Why jobs could not be listed, if they could not.
    pub jobs_error: Option<String>,
    pub taken: Option<SystemTime>,
}

/// Keeps what the next snapshot's rates need.
#[derive(Debug, Default)]
pub struct Collector {
    last: Option<Instant>,
    cpu: HashMap<i32, (Duration, SystemTime, Vec<u8>, bool)>,
    job_cpu: HashMap<String, Duration>,
    /// Each process's classification, by pid and start time.
    classes: HashMap<i32, (SystemTime, Classification)>,
}

impl Collector {
    /// Takes a snapshot. A process that ends during the scan is simply not
    /// in it (the library skips it), never an error.
    pub fn collect(&mut self) -> Snapshot {
        let now = Instant::now();
        let elapsed = self.last.map(|l| now - l);
        self.last = Some(now);
        let rate = |total: Duration, before: Option<Duration>| match (elapsed, before) {
            (Some(e), Some(b)) if !e.is_zero() => {
                total.saturating_sub(b).as_secs_f64() * 100.0 / e.as_secs_f64()
            }
            _ => 0.0,
        };
        let entries = inspect::snapshot(SnapshotOptions {
            cmdline: true,
            job: true,
            threads: false,
        })
        .unwrap_or_default();
        let first = self.cpu.is_empty();
        let mut seen = HashMap::with_capacity(entries.len());
        let procs: Vec<Proc> = entries
            .into_iter()
            .map(|e: ProcEntry| {
                let total = e.user_time + e.kernel_time;
                // The same pid with another start time is another process.
                let before = self
                    .cpu
                    .get(&e.pid)
                    .filter(|(_, start, _, _)| *start == e.start_time);
                let class = match self.classes.get(&e.pid) {
                    Some((start, c)) if *start == e.start_time => c.clone(),
                    _ if e.kernel_thread => Classification::Minimal,
                    _ if e.state == 'Z' => Classification::Zombie,
                    _ => inspect::classification(e.pid)
                        .map(|(c, _)| c)
                        .unwrap_or(Classification::Normal),
                };
                // A zombie is one until it is gone: asked again each time.
                if class != Classification::Zombie {
                    self.classes.insert(e.pid, (e.start_time, class.clone()));
                }
                let p = Proc {
                    pid: e.pid,
                    ppid: e.ppid,
                    user: e
                        .uid
                        .map(|u| inspect::user_name(u).map_or_else(|| u.to_string(), str::to_owned))
                        .unwrap_or_else(|| "?".into()),
                    command: e
                        .cmdline
                        .iter()
                        .map(|a| String::from_utf8_lossy(a))
                        .collect::<Vec<_>>()
                        .join(" "),
                    cpu: rate(total, before.map(|b| b.0)),
                    new: !first && before.is_none(),
                    state: e.state,
                    threads: e.threads,
                    rss: e.rss,
                    start_time: e.start_time,
                    job: e.job,
                    kernel_thread: e.kernel_thread,
                    class,
                    name: e.name,
                    argv: e.cmdline,
                };
                seen.insert(
                    p.pid,
                    (total, p.start_time, p.name.clone(), p.kernel_thread),
                );
                p
            })
            .collect();
        let ended = self
            .cpu
            .iter()
            .filter(|(pid, (_, start, _, _))| seen.get(pid).is_none_or(|(_, s, _, _)| s != start))
            .map(|(pid, (_, _, name, kernel))| (*pid, name.clone(), *kernel))
            .collect();
        self.classes.retain(|pid, _| seen.contains_key(pid));
        self.cpu = seen;
        let (jobs, jobs_error) = match Job::list() {
            Ok(names) => {
                let mut rows = Vec::with_capacity(names.len());
                let mut cpu = HashMap::with_capacity(names.len());
                for name in names {
                    // A job deleted between the list and the query is left out.
                    let Ok(info) = Job::open(&name).and_then(|j| j.info()) else {
                        continue;
                    };
                    let total = info.user_time + info.kernel_time;
                    let row = JobRow {
                        cpu: rate(total, self.job_cpu.get(&name).copied()),
                        info,
                    };
                    cpu.insert(name, total);
                    rows.push(row);
                }
                self.job_cpu = cpu;
                (rows, None)
            }
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        Snapshot {
            procs,
            ended,
            jobs,
            jobs_error,
            taken: Some(SystemTime::now()),
        }
    }
}
