//! Job notifications on Windows: the job object's own completion port
//! (`JobObjectAssociateCompletionPortInformation`), whose messages the
//! kernel posts in order: every new member, every exit (abnormal ones
//! apart), limits hit, the job empty. Nothing is scanned or missed.
//!
//! A job object takes one completion port for good, so a job has at most
//! one watcher; a second `watch` is an error that says so. The watcher
//! holds the port, not a handle to the job: as on Linux, it does not keep
//! a kill-on-close job alive after its owner closes it.
//!
//! One of the fenced unsafe modules: every block is one Win32 call on live
//! values of the sizes passed.
#![allow(unsafe_code)] // fenced: ARCHITECTURE.md, "Invariants"

use std::collections::{BTreeSet, VecDeque};
use std::os::windows::io::OwnedHandle;
use std::ptr;
use std::time::Duration;

use windows_sys::Win32::Foundation::{INVALID_HANDLE_VALUE, STILL_ACTIVE};
use windows_sys::Win32::System::IO::{
    CreateIoCompletionPort, GetQueuedCompletionStatus, OVERLAPPED,
};
use windows_sys::Win32::System::JobObjects::{
    JOBOBJECT_ASSOCIATE_COMPLETION_PORT, JobObjectAssociateCompletionPortInformation,
    SetInformationJobObject,
};
use windows_sys::Win32::System::SystemServices::{
    JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS, JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT,
    JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO, JOB_OBJECT_MSG_END_OF_JOB_TIME,
    JOB_OBJECT_MSG_END_OF_PROCESS_TIME, JOB_OBJECT_MSG_EXIT_PROCESS,
    JOB_OBJECT_MSG_JOB_MEMORY_LIMIT, JOB_OBJECT_MSG_NEW_PROCESS, JOB_OBJECT_MSG_NOTIFICATION_LIMIT,
    JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT,
};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::{JobCounts, JobEvent};
use crate::error::Result;
use crate::job::{Job, SoftLimit};
use crate::process::ExitStatus;
use crate::windows::{last_os, owned, raw};

/// A job's notifications, read from its completion port. As an iterator it
/// blocks until the next message (checking every `interval` whether the
/// job still exists), and ends once the job object is gone (its last
/// handle closed: [`Job::delete`], or dropping every handle) and every
/// message was read.
#[derive(Debug)]
pub struct JobWatcher {
    name: String,
    job_time: Option<Duration>,
    port: OwnedHandle,
    interval: Duration,
    pending: VecDeque<JobEvent>,
    known: BTreeSet<i32>,
    total: u64,
    exited: u64,
    abnormal: u64,
    peak: usize,
    limit_hits: u64,
    memory_hits: u64,
    time_hit: bool,
    /// Soft limits already reported (each is reported once).
    notified: BTreeSet<SoftLimit>,
}

impl JobWatcher {
    pub(in crate::job) fn new(job: &Job, interval: Duration) -> Result<Self> {
        // SAFETY: a new port, not tied to a file; NULL or a handle we own.
        let port = unsafe {
            owned(
                CreateIoCompletionPort(INVALID_HANDLE_VALUE, ptr::null_mut(), 0, 1),
                format!("create a completion port for job {}", job.name()),
            )?
        };
        let assoc = JOBOBJECT_ASSOCIATE_COMPLETION_PORT {
            CompletionKey: ptr::null_mut(),
            CompletionPort: raw(&port),
        };
        // SAFETY: a live job handle and a struct of the size passed.
        let ok = unsafe {
            SetInformationJobObject(
                raw(&job.handle),
                JobObjectAssociateCompletionPortInformation,
                (&raw const assoc).cast(),
                size_of::<JOBOBJECT_ASSOCIATE_COMPLETION_PORT>() as u32,
            )
        };
        if ok == 0 {
            return Err(last_os(format!(
                "watch job {} (a job object takes one completion port, so one watcher)",
                job.name()
            )));
        }
        // The members it has already: reported first, as the Linux watcher does.
        let pids = job.pids()?;
        Ok(JobWatcher {
            pending: pids
                .iter()
                .map(|&pid| JobEvent::NewProcess { pid })
                .collect(),
            known: pids.iter().copied().collect(),
            total: pids.len() as u64,
            peak: pids.len(),
            exited: 0,
            abnormal: 0,
            limit_hits: 0,
            memory_hits: 0,
            time_hit: false,
            notified: BTreeSet::new(),
            name: job.name(),
            job_time: job.limits().job_time,
            port,
            interval,
        })
    }

    /// One message from the port, waiting at most `ms` milliseconds.
    fn message(&self, ms: u32) -> Option<(u32, usize)> {
        let mut code = 0u32;
        let mut key = 0usize;
        let mut ov: *mut OVERLAPPED = ptr::null_mut();
        // SAFETY: a live port and out-pointers of the right types; for a
        // job's messages the "overlapped" pointer carries a process id.
        let ok =
            unsafe { GetQueuedCompletionStatus(raw(&self.port), &mut code, &mut key, &mut ov, ms) };
        (ok != 0).then_some((code, ov as usize))
    }

    /// Turns one message into the event it means, keeping the counts.
    fn event(&mut self, code: u32, value: usize) -> Option<JobEvent> {
        let pid = value as i32;
        match code {
            JOB_OBJECT_MSG_NEW_PROCESS => {
                // The members present when the port was tied may be posted too.
                if !self.known.insert(pid) {
                    return None;
                }
                self.total += 1;
                self.peak = self.peak.max(self.known.len());
                Some(JobEvent::NewProcess { pid })
            }
            JOB_OBJECT_MSG_EXIT_PROCESS
            | JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS
            | JOB_OBJECT_MSG_END_OF_PROCESS_TIME => {
                self.known.remove(&pid);
                self.exited += 1;
                let status = exit_status(pid);
                if code != JOB_OBJECT_MSG_EXIT_PROCESS || status.is_some_and(|s| !s.success()) {
                    self.abnormal += 1;
                }
                Some(JobEvent::ProcessExited { pid, status })
            }
            JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT => {
                self.limit_hits += 1;
                Some(JobEvent::ActiveProcessLimit {
                    hits: self.limit_hits,
                })
            }
            JOB_OBJECT_MSG_JOB_MEMORY_LIMIT | JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT => {
                self.memory_hits += 1;
                Some(JobEvent::MemoryLimit {
                    oom_kills: self.memory_hits,
                })
            }
            JOB_OBJECT_MSG_END_OF_JOB_TIME => {
                // The kernel ends the job when its user time reaches the
                // limit: the time used is the limit (the watcher holds no
                // handle to ask the job).
                self.time_hit = true;
                Some(JobEvent::JobTimeLimit {
                    user_time_ms: self.job_time.unwrap_or_default().as_millis() as u64,
                })
            }
            JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO => Some(JobEvent::JobEmpty),
            JOB_OBJECT_MSG_NOTIFICATION_LIMIT => {
                // Which one: the job's own answer, through a handle held
                // only for the question.
                let info = Job::open(&self.name).and_then(|j| j.info()).ok()?;
                let v = info
                    .violations
                    .into_iter()
                    .find(|v| !self.notified.contains(&v.limit))?;
                self.notified.insert(v.limit);
                Some(JobEvent::NotificationLimit(v))
            }
            _ => None,
        }
    }

    /// The events queued now, without waiting.
    pub fn poll_once(&mut self) -> Result<Vec<JobEvent>> {
        let mut events: Vec<JobEvent> = self.pending.drain(..).collect();
        while let Some((code, value)) = self.message(0) {
            events.extend(self.event(code, value));
        }
        Ok(events)
    }

    /// The counts kept so far (exact: the kernel posts every message).
    pub fn counts(&self) -> JobCounts {
        JobCounts {
            total_processes: self.total,
            exited_processes: self.exited,
            abnormal_exits: self.abnormal,
            peak_processes: self.peak as u64,
            exact: true,
        }
    }

    /// How many members are alive, by the messages read so far.
    pub fn members(&self) -> usize {
        self.known.len()
    }

    /// Whether the job time limit was hit (the kernel then terminates the job).
    pub fn job_time_hit(&self) -> bool {
        self.time_hit
    }
}

/// How member `pid` ended, when its process object can still be opened
/// (a handle to it is held somewhere) and has ended; `None` otherwise.
fn exit_status(pid: i32) -> Option<ExitStatus> {
    // SAFETY: no pointers; NULL or a handle we own.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid as u32) };
    // SAFETY: as above.
    let h = unsafe { owned(h, "open") }.ok()?;
    let mut code = 0u32;
    // SAFETY: a live handle and an out-pointer.
    if unsafe { GetExitCodeProcess(raw(&h), &mut code) } == 0 || code == STILL_ACTIVE as u32 {
        // Still running: the pid was reused by a process that has not ended.
        return None;
    }
    Some(ExitStatus::Exited { code: code as i32 })
}

impl Iterator for JobWatcher {
    type Item = Result<JobEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        let ms = self.interval.as_millis().clamp(1, u128::from(u32::MAX - 1)) as u32;
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(Ok(e));
            }
            if let Some((code, value)) = self.message(ms) {
                if let Some(e) = self.event(code, value) {
                    return Some(Ok(e));
                }
                continue;
            }
            match Job::exists(&self.name) {
                Ok(false) => {
                    // Gone: what the kernel posted before it went is still read.
                    while let Some((code, value)) = self.message(0) {
                        let e = self.event(code, value);
                        self.pending.extend(e);
                    }
                    if self.pending.is_empty() {
                        return None;
                    }
                }
                Ok(true) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
