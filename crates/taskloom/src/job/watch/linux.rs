//! Job notifications on Linux. There is no single job message port: the
//! watcher listens to the kernel's process-events connector where it may
//! (root): every fork of a member and every exit, with its status, in
//! order, so even a process that lives for a microsecond is counted. Every
//! interval it also scans the member list (processes assigned from outside,
//! and exits when no connector is available: then without status, and a
//! process that starts and ends between two scans is missed),
//! `pids.events` (forks refused by the active-process limit), the OOM-kill
//! counter, and CPU accounting (the job time limit, which it enforces by
//! terminating the job).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::{JobCounts, JobEvent};
use crate::error::Result;
use crate::job::Job;
use crate::job::SoftLimit;
use crate::job::connector::{Connector, ProcEvent};
use crate::process::ExitStatus;

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
    connector: Option<Connector>,
    /// The connector's socket registered with tokio's reactor, once an
    /// async wait has asked for it.
    #[cfg(feature = "tokio")]
    ready: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
    /// Members gone from a scan but not yet reported by the connector, with the scans since.
    suspects: BTreeMap<i32, u32>,
    /// Soft limits already reported (each is reported once).
    notified: BTreeSet<SoftLimit>,
    total: u64,
    exited: u64,
    abnormal: u64,
    peak: usize,
}

impl JobWatcher {
    pub(in crate::job) fn new(job: Job, interval: Duration) -> Result<Self> {
        // Subscribe before the first scan so that no fork falls between them.
        let connector = Connector::open().ok();
        let info = job.info()?;
        // As a completion port associated with a job does, the first events
        // are the members it already has.
        let pending = info
            .pids
            .iter()
            .map(|&pid| JobEvent::NewProcess { pid })
            .collect();
        Ok(JobWatcher {
            known: info.pids.iter().copied().collect(),
            total: info.pids.len() as u64,
            pid_hits: info.process_limit_hits.unwrap_or(0),
            oom_kills: info.oom_kills.unwrap_or(0),
            was_empty: info.pids.is_empty(),
            time_hit: false,
            pending,
            connector,
            #[cfg(feature = "tokio")]
            ready: None,
            suspects: BTreeMap::new(),
            notified: BTreeSet::new(),
            exited: 0,
            abnormal: 0,
            peak: info.pids.len(),
            job,
            interval,
        })
    }

    /// Whether `pid` belongs to the watched job now.
    fn is_member(&self, pid: i32) -> bool {
        match crate::job::job_of(pid) {
            Ok(Some(name)) => {
                let job = self.job.name();
                name == job || name.starts_with(&format!("{job}/"))
            }
            _ => false,
        }
    }

    fn exited(&mut self, pid: i32, status: Option<ExitStatus>, events: &mut Vec<JobEvent>) {
        self.known.remove(&pid);
        self.suspects.remove(&pid);
        self.exited += 1;
        if status.is_some_and(|s| !s.success()) {
            self.abnormal += 1;
        }
        events.push(JobEvent::ProcessExited { pid, status });
    }

    /// One scan, without waiting: the events since the last scan.
    pub fn poll_once(&mut self) -> Result<Vec<JobEvent>> {
        // Events not yet handed out (the members present at the start) come first.
        let mut events: Vec<JobEvent> = self.pending.drain(..).collect();
        let mut lost = false;
        if let Some(c) = &self.connector {
            let mut raw = Vec::new();
            lost = c.drain(&mut raw).is_err();
            for e in raw {
                match e {
                    ProcEvent::Fork { parent, child } => {
                        let spawned = {
                            let mut list =
                                self.job.spawned.lock().unwrap_or_else(|e| e.into_inner());
                            let hit = list.iter().position(|&p| p == child);
                            hit.and_then(|i| list.remove(i)).is_some()
                        };
                        let member =
                            spawned || self.known.contains(&parent) || self.is_member(child);
                        if member && self.known.insert(child) {
                            self.total += 1;
                            self.peak = self.peak.max(self.known.len());
                            events.push(JobEvent::NewProcess { pid: child });
                        }
                    }
                    ProcEvent::Exit { pid, wait_status } if self.known.contains(&pid) => {
                        let status = wait_status_to_exit(wait_status);
                        self.exited(pid, Some(status), &mut events);
                    }
                    ProcEvent::Exit { .. } => {}
                }
            }
        }
        let info = self.job.info()?;
        let now: BTreeSet<i32> = info.pids.iter().copied().collect();
        for &pid in now.difference(&self.known.clone()) {
            self.known.insert(pid);
            self.suspects.remove(&pid);
            self.total += 1;
            self.peak = self.peak.max(self.known.len());
            events.push(JobEvent::NewProcess { pid });
        }
        let gone: Vec<i32> = self.known.difference(&now).copied().collect();
        for pid in gone {
            if self.connector.is_none() || lost {
                self.exited(pid, None, &mut events);
            } else {
                // The connector reports it with its status at the next drain; if it
                // does not within two scans, report it without one.
                let scans = self.suspects.entry(pid).or_insert(0);
                *scans += 1;
                if *scans > 2 {
                    self.exited(pid, None, &mut events);
                }
            }
        }
        if let Some(hits) = info.process_limit_hits.filter(|&h| h > self.pid_hits) {
            self.pid_hits = hits;
            events.push(JobEvent::ActiveProcessLimit { hits });
        }
        for v in &info.violations {
            if self.notified.insert(v.limit) {
                events.push(JobEvent::NotificationLimit(*v));
            }
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
        // Empty after having had members (also members that came and went between two scans).
        let had_members = !self.was_empty
            || events
                .iter()
                .any(|e| matches!(e, JobEvent::NewProcess { .. }));
        let empty = now.is_empty() && self.known.is_empty();
        if empty && had_members {
            events.push(JobEvent::JobEmpty);
        }
        self.was_empty = empty;
        Ok(events)
    }

    /// The counts kept so far.
    pub fn counts(&self) -> JobCounts {
        JobCounts {
            total_processes: self.total,
            exited_processes: self.exited,
            abnormal_exits: self.abnormal,
            peak_processes: self.peak as u64,
            exact: self.connector.is_some(),
        }
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

#[cfg(feature = "tokio")]
impl JobWatcher {
    /// The next event without blocking a thread (feature `tokio`): the
    /// watcher sleeps on the kernel's process-events socket where it has one
    /// (woken by each fork and exit) and on the runtime's timer for its
    /// scans (every `interval`). `None` once the job is gone. Must be
    /// awaited inside a runtime with its IO driver and timer.
    ///
    /// ```no_run
    /// # async fn f(job: &taskloom::job::Job) -> taskloom::Result<()> {
    /// let mut events = job.watch(std::time::Duration::from_millis(50))?;
    /// while let Some(e) = events.next_event().await {
    ///     println!("{:?}", e?);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_event(&mut self) -> Option<Result<JobEvent>> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(Ok(e));
            }
            match self.poll_once() {
                Ok(events) if events.is_empty() => {}
                Ok(events) => {
                    self.pending.extend(events);
                    continue;
                }
                Err(crate::Error::NoSuchJob(_)) => return None,
                Err(e) => return Some(Err(e)),
            }
            if self.ready.is_none()
                && let Some(c) = &self.connector
            {
                self.ready = c.register_async().ok();
            }
            let tick = tokio::time::sleep(self.interval);
            match &self.ready {
                Some(ready) => {
                    tokio::select! {
                        r = ready.readable() => {
                            if let Ok(mut guard) = r {
                                // poll_once drains the socket; readiness is re-armed.
                                guard.clear_ready();
                            }
                        }
                        () = tick => {}
                    }
                }
                None => tick.await,
            }
        }
    }
}

#[cfg(feature = "tokio")]
impl JobWatcher {
    /// The watcher as a `futures` [`Stream`](futures_core::Stream) of
    /// events (feature `tokio`): [`next_event`](Self::next_event) for each
    /// item, ending when the job is gone.
    pub fn into_stream(self) -> JobEventStream {
        JobEventStream {
            state: StreamState::Idle(Box::new(self)),
        }
    }
}

/// A job's events as a [`Stream`](futures_core::Stream) (feature `tokio`):
/// see [`JobWatcher::into_stream`].
#[cfg(feature = "tokio")]
pub struct JobEventStream {
    state: StreamState,
}

#[cfg(feature = "tokio")]
type NextEvent = std::pin::Pin<
    Box<dyn std::future::Future<Output = (Option<Result<JobEvent>>, Box<JobWatcher>)> + Send>,
>;

#[cfg(feature = "tokio")]
enum StreamState {
    Idle(Box<JobWatcher>),
    Waiting(NextEvent),
    Done,
}

#[cfg(feature = "tokio")]
impl std::fmt::Debug for JobEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobEventStream")
    }
}

#[cfg(feature = "tokio")]
impl futures_core::Stream for JobEventStream {
    type Item = Result<JobEvent>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        loop {
            match std::mem::replace(&mut self.state, StreamState::Done) {
                StreamState::Idle(mut w) => {
                    self.state = StreamState::Waiting(Box::pin(async move {
                        let e = w.next_event().await;
                        (e, w)
                    }));
                }
                StreamState::Waiting(mut next) => {
                    return match next.as_mut().poll(cx) {
                        Poll::Ready((Some(e), w)) => {
                            self.state = StreamState::Idle(w);
                            Poll::Ready(Some(e))
                        }
                        Poll::Ready((None, _)) => Poll::Ready(None),
                        Poll::Pending => {
                            self.state = StreamState::Waiting(next);
                            Poll::Pending
                        }
                    };
                }
                StreamState::Done => return Poll::Ready(None),
            }
        }
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

fn wait_status_to_exit(w: u32) -> ExitStatus {
    let w = w as i32;
    if libc::WIFEXITED(w) {
        ExitStatus::Exited {
            code: libc::WEXITSTATUS(w),
        }
    } else {
        ExitStatus::Signaled {
            signal: libc::WTERMSIG(w),
            core_dumped: libc::WCOREDUMP(w),
        }
    }
}
