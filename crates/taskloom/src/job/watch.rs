//! Job notifications (`JOB_OBJECT_MSG_*`), gathered by polling the job's cgroup files.
//!
//! Linux has no single job message port. The watcher scans, every interval,
//! the member list (new and ended processes), `pids.events` (fork refused by
//! the active-process limit), the memory controller's OOM-kill counter,
//! `cgroup.events` (job empty) and CPU accounting (job time limit, which it
//! enforces by terminating the job). Events between two scans are reported
//! at the next scan; a process that starts and ends between two scans is not
//! seen.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use super::Job;
use crate::error::Result;

/// One job notification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum JobEvent {
    /// `JOB_OBJECT_MSG_NEW_PROCESS`.
    NewProcess {
        /// The new member.
        pid: i32,
    },
    /// `JOB_OBJECT_MSG_EXIT_PROCESS` (the status is known only to the process's parent).
    ProcessExited {
        /// The member that ended.
        pid: i32,
    },
    /// `JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT`: forks refused so far.
    ActiveProcessLimit {
        /// Total refusals.
        hits: u64,
    },
    /// `JOB_OBJECT_MSG_JOB_MEMORY_LIMIT`: the OOM killer ended a member.
    MemoryLimit {
        /// Total OOM kills in the job.
        oom_kills: u64,
    },
    /// `JOB_OBJECT_MSG_END_OF_JOB_TIME`: the job used its user time; it was terminated.
    JobTimeLimit {
        /// User time used.
        user_time_ms: u64,
    },
    /// `JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO`.
    JobEmpty,
}

/// An iterator of job events; blocks between scans. Ends when the job is deleted.
#[derive(Debug)]
pub struct JobWatcher {
    job: Job,
    interval: Duration,
    known: BTreeSet<i32>,
    pid_hits: u64,
    oom_kills: u64,
    was_empty: bool,
    time_hit: bool,
    pending: VecDeque<JobEvent>,
}

impl JobWatcher {
    pub(super) fn new(job: Job, interval: Duration) -> Result<Self> {
        let info = job.info()?;
        Ok(JobWatcher {
            known: info.pids.iter().copied().collect(),
            pid_hits: info.process_limit_hits.unwrap_or(0),
            oom_kills: info.oom_kills.unwrap_or(0),
            was_empty: info.pids.is_empty(),
            time_hit: false,
            pending: VecDeque::new(),
            job,
            interval,
        })
    }

    /// One scan, without waiting: the events since the last scan.
    pub fn poll_once(&mut self) -> Result<Vec<JobEvent>> {
        let info = self.job.info()?;
        let mut events = Vec::new();
        let now: BTreeSet<i32> = info.pids.iter().copied().collect();
        events.extend(
            now.difference(&self.known)
                .map(|&pid| JobEvent::NewProcess { pid }),
        );
        events.extend(
            self.known
                .difference(&now)
                .map(|&pid| JobEvent::ProcessExited { pid }),
        );
        self.known = now;
        if let Some(hits) = info.process_limit_hits.filter(|&h| h > self.pid_hits) {
            self.pid_hits = hits;
            events.push(JobEvent::ActiveProcessLimit { hits });
        }
        if let Some(kills) = info.oom_kills.filter(|&k| k > self.oom_kills) {
            self.oom_kills = kills;
            events.push(JobEvent::MemoryLimit { oom_kills: kills });
        }
        if let Some(limit) = self.job.limits.job_time
            && !self.time_hit
            && info.user_time > limit
        {
            self.time_hit = true;
            self.job.terminate()?;
            events.push(JobEvent::JobTimeLimit {
                user_time_ms: info.user_time.as_millis() as u64,
            });
        }
        let empty = self.known.is_empty();
        if empty && !self.was_empty {
            events.push(JobEvent::JobEmpty);
        }
        self.was_empty = empty;
        Ok(events)
    }

    /// How many members the last scan saw.
    pub fn members(&self) -> usize {
        self.known.len()
    }

    /// Whether the job time limit was hit (and the job terminated for it).
    pub fn job_time_hit(&self) -> bool {
        self.time_hit
    }
}

impl Iterator for JobWatcher {
    type Item = Result<JobEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(Ok(e));
            }
            match self.poll_once() {
                Ok(events) if events.is_empty() => std::thread::sleep(self.interval),
                Ok(events) => self.pending.extend(events),
                Err(crate::Error::NoSuchJob(_)) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
