//! Jobs on Windows: the kernel's own job objects (`CreateJobObjectW` and its
//! family), behind the same [`Job`] and [`JobBuilder`] as on Linux.
//!
//! A job named `build` is the object `Local\taskloom.build` (the session's
//! namespace), so `taskloom job` and a program using the crate meet under
//! one name; a nested job `a/b` is `Local\taskloom.a.b` (a `.` cannot be
//! confused: names never hold `/`). The kernel does all the enforcing:
//! limits (`JOBOBJECT_EXTENDED_LIMIT_INFORMATION`, CPU rate control),
//! accounting, membership no member can leave, kill-on-close when the last
//! handle to the job closes, terminate with an exit code. A process is
//! spawned suspended, assigned (outermost job first, so nested jobs nest),
//! then resumed: it is a member before its first instruction.
//!
//! One of the fenced unsafe modules: every block is one Win32 call on live
//! values of the sizes passed.
#![allow(unsafe_code)] // fenced: ARCHITECTURE.md, "Invariants"

use std::ffi::c_void;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::ptr;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_ALREADY_EXISTS, ERROR_FILE_NOT_FOUND, GetLastError, HANDLE, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, IsProcessInJob, JOB_OBJECT_CPU_RATE_CONTROL_ENABLE,
    JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP, JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED,
    JOB_OBJECT_LIMIT_ACTIVE_PROCESS, JOB_OBJECT_LIMIT_AFFINITY, JOB_OBJECT_LIMIT_BREAKAWAY_OK,
    JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION, JOB_OBJECT_LIMIT_JOB_MEMORY,
    JOB_OBJECT_LIMIT_JOB_READ_BYTES, JOB_OBJECT_LIMIT_JOB_TIME, JOB_OBJECT_LIMIT_JOB_WRITE_BYTES,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, JOB_OBJECT_LIMIT_PRIORITY_CLASS,
    JOB_OBJECT_LIMIT_PROCESS_MEMORY, JOB_OBJECT_LIMIT_PROCESS_TIME,
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION, JOBOBJECT_BASIC_AND_IO_ACCOUNTING_INFORMATION,
    JOBOBJECT_BASIC_PROCESS_ID_LIST, JOBOBJECT_CPU_RATE_CONTROL_INFORMATION,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOBOBJECT_NOTIFICATION_LIMIT_INFORMATION,
    JobObjectBasicAccountingInformation, JobObjectBasicAndIoAccountingInformation,
    JobObjectBasicProcessIdList, JobObjectCpuRateControlInformation,
    JobObjectExtendedLimitInformation, JobObjectNotificationLimitInformation, OpenJobObjectW,
    QueryInformationJobObject, SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};
use windows_sys::Win32::System::Threading::IO_COUNTERS;
use windows_sys::Win32::System::Threading::{
    OpenProcess, PROCESS_QUERY_INFORMATION, WaitForSingleObject,
};

use super::limits::check_limits;
use super::{Capability, JobBuilder, JobInfo, JobLimits, JobWatcher, validate_name};
use crate::error::{Error, Result};
use crate::process::{Process, ProcessBuilder, priority_flag, spawn_then};
use crate::windows::{duplicate, hundred_ns, last_error, last_os, owned, raw, wide};

/// `JOB_OBJECT_ALL_ACCESS`.
const JOB_ALL_ACCESS: u32 = 0x1F001F;
/// The exit code members of a terminated job report (as `terminate` on a
/// process does).
const TERMINATED: u32 = 1;

/// The object name of job `name`.
fn object_name(name: &str) -> Vec<u16> {
    wide(format!("Local\\taskloom.{}", name.replace('/', ".")))
}

/// A job object handle.
#[derive(Debug)]
pub struct Job {
    name: String,
    pub(super) handle: OwnedHandle,
    /// The jobs this one is nested in, outermost first: a spawn is
    /// assigned to each before this one, which is what nests it.
    parents: Vec<OwnedHandle>,
    limits: JobLimits,
    kill_on_close: bool,
}

/// The number of logical CPUs (what a CPU rate is a share of).
fn cpu_count() -> u32 {
    // SAFETY: SYSTEM_INFO is a plain C struct GetSystemInfo fills.
    let mut si: SYSTEM_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: a live out-pointer.
    unsafe { GetSystemInfo(&mut si) };
    si.dwNumberOfProcessors.max(1)
}

impl Job {
    pub(super) fn create_at(parent: Option<&Job>, b: JobBuilder) -> Result<Job> {
        check_limits(&b.limits)?;
        let leaf = b.leaf_name()?;
        let name = match parent {
            Some(p) => format!("{}/{leaf}", p.name),
            None => leaf,
        };
        let object = object_name(&name);
        // SAFETY: a NUL-terminated name and default security; a new handle or NULL.
        let h = unsafe { CreateJobObjectW(ptr::null(), object.as_ptr()) };
        // SAFETY: read right after the call, on the same thread.
        let existed = unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
        // SAFETY: a new handle (or NULL) we own.
        let handle = unsafe { owned(h, format!("create job {name}"))? };
        if existed {
            return Err(Error::JobExists(name));
        }
        let mut parents = Vec::new();
        if let Some(p) = parent {
            for h in p.parents.iter().chain(Some(&p.handle)) {
                parents.push(duplicate(h, false)?);
            }
        }
        let job = Job {
            name,
            handle,
            parents,
            limits: b.limits.clone(),
            kill_on_close: b.kill_on_close,
        };
        job.apply(&b.limits)?;
        Ok(job)
    }

    /// `OpenJobObject`: a handle to the job named `name`.
    pub fn open(name: &str) -> Result<Job> {
        for part in name.split('/') {
            validate_name(part)?;
        }
        let object = object_name(name);
        // SAFETY: a NUL-terminated name; a new handle or NULL.
        let h = unsafe { OpenJobObjectW(JOB_ALL_ACCESS, 0, object.as_ptr()) };
        if h.is_null() {
            let e = last_error();
            return Err(match e.raw_os_error().map(|c| c as u32) {
                Some(ERROR_FILE_NOT_FOUND) => Error::NoSuchJob(name.to_owned()),
                _ => Error::os(format!("open job {name}"), e),
            });
        }
        // SAFETY: a new handle we own.
        let handle = unsafe { owned(h, format!("open job {name}"))? };
        let mut job = Job {
            name: name.to_owned(),
            handle,
            parents: Vec::new(),
            limits: JobLimits::default(),
            kill_on_close: false,
        };
        let (limits, kill_on_close) = job.read_limits()?;
        job.limits = limits;
        job.kill_on_close = kill_on_close;
        Ok(job)
    }

    /// Whether a job object of this name exists (someone holds a handle):
    /// opened for query and closed at once.
    pub(super) fn exists(name: &str) -> Result<bool> {
        const JOB_OBJECT_QUERY: u32 = 0x0004;
        let object = object_name(name);
        // SAFETY: a NUL-terminated name; a new handle or NULL.
        let h = unsafe { OpenJobObjectW(JOB_OBJECT_QUERY, 0, object.as_ptr()) };
        if h.is_null() {
            let e = last_error();
            return match e.raw_os_error().map(|c| c as u32) {
                Some(ERROR_FILE_NOT_FOUND) => Ok(false),
                _ => Err(Error::os(format!("open job {name}"), e)),
            };
        }
        // SAFETY: a new handle we own, closed here.
        drop(unsafe { owned(h, format!("open job {name}"))? });
        Ok(true)
    }

    /// Watches the job through its completion port: new and ended
    /// processes, limits hit, job empty (see [`JobWatcher`]). A job object
    /// takes one port, so a second watcher is refused.
    pub fn watch(&self, interval: Duration) -> Result<JobWatcher> {
        JobWatcher::new(self, interval)
    }

    /// Windows keeps no list of job objects a program may read: listing
    /// is not supported there.
    pub fn list() -> Result<Vec<String>> {
        Err(Error::Unsupported {
            what: "listing jobs",
            reason: "Windows offers no call that lists job objects by name".into(),
        })
    }

    /// The job's name.
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// The limits in force.
    pub fn limits(&self) -> &JobLimits {
        &self.limits
    }

    /// Whether the job kills its members when its last handle closes.
    pub fn kill_on_close(&self) -> bool {
        self.kill_on_close
    }

    /// Always: on Windows no member can leave its job or change it (a
    /// member gets no handle to it).
    pub fn is_contained(&self) -> bool {
        true
    }

    /// `SetInformationJobObject`: replaces the limits.
    pub fn set_limits(&mut self, limits: &JobLimits) -> Result<()> {
        check_limits(limits)?;
        self.apply(limits)?;
        self.limits = limits.clone();
        Ok(())
    }

    fn apply(&self, l: &JobLimits) -> Result<()> {
        if l.memory_low.is_some() || l.memory_high.is_some() {
            return Err(Error::Unsupported {
                what: "a memory floor or ceiling (memory_low, memory_high)",
                reason: "a Windows job's memory is a hard limit (job_memory); its low-memory \
                         limit only notifies"
                    .into(),
            });
        }
        if !l.io_rates.is_empty() {
            return Err(Error::Unsupported {
                what: "an I/O rate limit",
                reason: "not implemented on Windows yet (JobObjectIoRateControlInformation)".into(),
            });
        }
        if l.cpu_rate_percent.is_some() && l.cpu_weight.is_some() {
            return Err(Error::InvalidInput {
                what: "job limit",
                reason: "a Windows job takes one CPU rate control: a rate or a weight, not both"
                    .into(),
            });
        }
        // SAFETY: a plain C struct; zero is "no limit".
        let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        let basic = &mut info.BasicLimitInformation;
        if let Some(n) = l.active_processes {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
            basic.ActiveProcessLimit = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(bytes) = l.job_memory {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
            info.JobMemoryLimit = usize::try_from(bytes).unwrap_or(usize::MAX);
        }
        let basic = &mut info.BasicLimitInformation;
        if let Some(bytes) = l.process_memory {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_PROCESS_MEMORY;
            info.ProcessMemoryLimit = usize::try_from(bytes).unwrap_or(usize::MAX);
        }
        let basic = &mut info.BasicLimitInformation;
        if let Some(cpus) = &l.affinity {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_AFFINITY;
            basic.Affinity = cpus.to_mask()?;
        }
        if let Some(class) = l.priority {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_PRIORITY_CLASS;
            basic.PriorityClass = priority_flag(class);
        }
        if let Some(t) = l.job_time {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_JOB_TIME;
            basic.PerJobUserTimeLimit = hundred_ns(t);
        }
        if let Some(t) = l.process_time {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_PROCESS_TIME;
            basic.PerProcessUserTimeLimit = hundred_ns(t);
        }
        if l.breakaway_ok {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_BREAKAWAY_OK;
        }
        if l.die_on_unhandled_exception {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
        }
        if self.kill_on_close {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        }
        // SAFETY: a live job handle and a struct of the size passed.
        let ok = unsafe {
            SetInformationJobObject(
                raw(&self.handle),
                JobObjectExtendedLimitInformation,
                &info as *const _ as *const c_void,
                std::mem::size_of_val(&info) as u32,
            )
        };
        if ok == 0 {
            return Err(last_os(format!("set the limits of job {}", self.name)));
        }
        if l.notify.any() || self.limits.notify.any() {
            let n = &l.notify;
            // SAFETY: a plain C struct; zero flags switch the soft limits off.
            let mut soft: JOBOBJECT_NOTIFICATION_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
            if let Some(b) = n.job_memory {
                soft.LimitFlags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
                soft.JobMemoryLimit = b;
            }
            if let Some(t) = n.user_time {
                soft.LimitFlags |= JOB_OBJECT_LIMIT_JOB_TIME;
                soft.PerJobUserTimeLimit = hundred_ns(t);
            }
            if let Some(b) = n.io_read_bytes {
                soft.LimitFlags |= JOB_OBJECT_LIMIT_JOB_READ_BYTES;
                soft.IoReadBytesLimit = b;
            }
            if let Some(b) = n.io_write_bytes {
                soft.LimitFlags |= JOB_OBJECT_LIMIT_JOB_WRITE_BYTES;
                soft.IoWriteBytesLimit = b;
            }
            // SAFETY: a live job handle and a struct of the size passed.
            let ok = unsafe {
                SetInformationJobObject(
                    raw(&self.handle),
                    JobObjectNotificationLimitInformation,
                    &soft as *const _ as *const c_void,
                    std::mem::size_of_val(&soft) as u32,
                )
            };
            if ok == 0 {
                return Err(last_os(format!("set the soft limits of job {}", self.name)));
            }
        }
        let rate_asked = l.cpu_rate_percent.is_some() || l.cpu_weight.is_some();
        let rate_was = self.limits.cpu_rate_percent.is_some() || self.limits.cpu_weight.is_some();
        if rate_asked || rate_was {
            // SAFETY: a plain C struct; zero switches rate control off.
            let mut rate: JOBOBJECT_CPU_RATE_CONTROL_INFORMATION = unsafe { std::mem::zeroed() };
            if let Some(p) = l.cpu_rate_percent {
                rate.ControlFlags =
                    JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP;
                // In 1/100 of a percent of all CPUs; ours is a percent of one CPU.
                rate.Anonymous.CpuRate = (p.saturating_mul(100) / cpu_count()).clamp(1, 10_000);
            } else if let Some(w) = l.cpu_weight {
                rate.ControlFlags =
                    JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED;
                rate.Anonymous.Weight = w;
            }
            // SAFETY: as above.
            let ok = unsafe {
                SetInformationJobObject(
                    raw(&self.handle),
                    JobObjectCpuRateControlInformation,
                    &rate as *const _ as *const c_void,
                    std::mem::size_of_val(&rate) as u32,
                )
            };
            if ok == 0 {
                return Err(last_os(format!("set the CPU rate of job {}", self.name)));
            }
        }
        Ok(())
    }

    fn extended(&self) -> Result<JOBOBJECT_EXTENDED_LIMIT_INFORMATION> {
        // SAFETY: a plain C struct the call fills.
        let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: a live job handle and a struct of the size passed.
        let ok = unsafe {
            QueryInformationJobObject(
                raw(&self.handle),
                JobObjectExtendedLimitInformation,
                &mut info as *mut _ as *mut c_void,
                std::mem::size_of_val(&info) as u32,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(last_os(format!("read the limits of job {}", self.name)));
        }
        Ok(info)
    }

    /// The limits as the kernel holds them (for a handle opened by name).
    fn read_limits(&self) -> Result<(JobLimits, bool)> {
        let info = self.extended()?;
        let b = &info.BasicLimitInformation;
        let f = b.LimitFlags;
        let has = |flag| f & flag != 0;
        let from_100ns = |t: i64| Duration::from_nanos(u64::try_from(t).unwrap_or(0) * 100);
        let mut affinity = None;
        if has(JOB_OBJECT_LIMIT_AFFINITY) {
            affinity = Some(crate::cpuset::CpuSet::from_mask(b.Affinity));
        }
        let priority = has(JOB_OBJECT_LIMIT_PRIORITY_CLASS)
            .then(|| {
                crate::priority::PriorityClass::ALL
                    .into_iter()
                    .find(|c| priority_flag(*c) == b.PriorityClass)
            })
            .flatten();
        let limits = JobLimits {
            active_processes: has(JOB_OBJECT_LIMIT_ACTIVE_PROCESS)
                .then_some(u64::from(b.ActiveProcessLimit)),
            job_memory: has(JOB_OBJECT_LIMIT_JOB_MEMORY).then_some(info.JobMemoryLimit as u64),
            process_memory: has(JOB_OBJECT_LIMIT_PROCESS_MEMORY)
                .then_some(info.ProcessMemoryLimit as u64),
            affinity,
            priority,
            cpu_rate_percent: None,
            cpu_weight: None,
            memory_low: None,
            memory_high: None,
            notify: Default::default(),
            io_rates: Vec::new(),
            job_time: has(JOB_OBJECT_LIMIT_JOB_TIME).then(|| from_100ns(b.PerJobUserTimeLimit)),
            process_time: has(JOB_OBJECT_LIMIT_PROCESS_TIME)
                .then(|| from_100ns(b.PerProcessUserTimeLimit)),
            breakaway_ok: has(JOB_OBJECT_LIMIT_BREAKAWAY_OK),
            die_on_unhandled_exception: has(JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION),
        };
        Ok((limits, has(JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE)))
    }

    /// `DuplicateHandle`: another handle to the same job.
    pub fn duplicate(&self) -> Result<Job> {
        Ok(Job {
            name: self.name.clone(),
            handle: duplicate(&self.handle, false)?,
            parents: self
                .parents
                .iter()
                .map(|h| duplicate(h, false))
                .collect::<Result<_>>()?,
            limits: self.limits.clone(),
            kill_on_close: self.kill_on_close,
        })
    }

    /// `CreateProcess` straight into the job: started suspended, assigned
    /// (to the enclosing jobs first), then let run, so the child is a
    /// member before its first instruction.
    pub fn spawn(&self, builder: ProcessBuilder) -> Result<Process> {
        spawn_then(builder, |child| {
            for h in self.parents.iter().chain(Some(&self.handle)) {
                self.assign_handle(h, child)?;
            }
            Ok(())
        })
    }

    fn assign_handle(&self, job: &OwnedHandle, process: &Process) -> Result<()> {
        // SAFETY: a live job handle and a live process handle.
        if unsafe { AssignProcessToJobObject(raw(job), process.as_raw_handle() as _) } == 0 {
            return Err(last_os(format!(
                "assign process {} to job {}",
                process.pid(),
                self.name
            )));
        }
        Ok(())
    }

    /// `AssignProcessToJobObject`.
    pub fn assign(&self, process: &Process) -> Result<()> {
        for h in self.parents.iter().chain(Some(&self.handle)) {
            if !self.handle_holds(h, process)? {
                self.assign_handle(h, process)?;
            }
        }
        Ok(())
    }

    fn handle_holds(&self, job: &OwnedHandle, process: &Process) -> Result<bool> {
        let ask = |h: HANDLE| {
            let mut inside = 0;
            // SAFETY: live handles and an out-pointer.
            (unsafe { IsProcessInJob(h, raw(job), &mut inside) } != 0).then_some(inside != 0)
        };
        if let Some(inside) = ask(process.as_raw_handle() as HANDLE) {
            return Ok(inside);
        }
        // Some systems (Wine) want PROCESS_QUERY_INFORMATION for the question,
        // which a handle opened for assigning lacks: ask through a second
        // handle. The process cannot have ended and its id been reused
        // meanwhile: `process` holds it.
        // SAFETY: OpenProcess takes plain integers; a new handle or NULL.
        let h = unsafe { OpenProcess(PROCESS_QUERY_INFORMATION, 0, process.pid() as u32) };
        // SAFETY: a new handle we own (or NULL, an error).
        let query = unsafe { owned(h, format!("open process {} to query it", process.pid()))? };
        ask(raw(&query)).ok_or_else(|| {
            last_os(format!(
                "ask whether process {} is in job {}",
                process.pid(),
                self.name
            ))
        })
    }

    /// Assigns a process by pid.
    pub fn assign_pid(&self, pid: i32) -> Result<()> {
        let process = Process::open_with_access(
            pid,
            crate::process::ProcessAccess::TERMINATE
                | crate::process::ProcessAccess::SET_INFORMATION,
        )?;
        self.assign(&process)
    }

    /// `JobObjectBasicProcessIdList`: every member's pid, sorted.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut room = 64usize;
        loop {
            // The struct's header (two u32) and `room` pid slots, 8-aligned.
            let words = 1 + room;
            let mut buf = vec![0u64; words];
            // SAFETY: a live job handle and a buffer of the size passed.
            let ok = unsafe {
                QueryInformationJobObject(
                    raw(&self.handle),
                    JobObjectBasicProcessIdList,
                    buf.as_mut_ptr() as *mut c_void,
                    (words * 8) as u32,
                    ptr::null_mut(),
                )
            };
            // SAFETY: the buffer starts with the list's header, filled by the call.
            let list = unsafe { &*(buf.as_ptr() as *const JOBOBJECT_BASIC_PROCESS_ID_LIST) };
            let (assigned, listed) = (
                list.NumberOfAssignedProcesses as usize,
                list.NumberOfProcessIdsInList as usize,
            );
            if ok == 0 && assigned <= room {
                return Err(last_os(format!("list the processes of job {}", self.name)));
            }
            if assigned > room {
                room = assigned + 16;
                continue;
            }
            // SAFETY: `listed` pid slots (usize each) follow the header, within `buf`.
            let ids = unsafe {
                std::slice::from_raw_parts(list.ProcessIdList.as_ptr(), listed.min(room))
            };
            let mut pids: Vec<i32> = ids.iter().map(|&p| p as i32).collect();
            pids.sort_unstable();
            return Ok(pids);
        }
    }

    /// `IsProcessInJob(process, job)`.
    pub fn contains(&self, pid: i32) -> Result<bool> {
        Ok(self.pids()?.contains(&pid))
    }

    /// The job's accounting and, where the system answers it, its I/O
    /// (`JobObjectBasicAndIoAccountingInformation`; Wine answers only the
    /// basic class, so the I/O is `None` there).
    fn accounting(&self) -> Result<(JOBOBJECT_BASIC_ACCOUNTING_INFORMATION, Option<IO_COUNTERS>)> {
        // SAFETY: a plain C struct the call fills.
        let mut both: JOBOBJECT_BASIC_AND_IO_ACCOUNTING_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: a live job handle and a struct of the size passed.
        let ok = unsafe {
            QueryInformationJobObject(
                raw(&self.handle),
                JobObjectBasicAndIoAccountingInformation,
                &mut both as *mut _ as *mut c_void,
                std::mem::size_of_val(&both) as u32,
                ptr::null_mut(),
            )
        };
        if ok != 0 {
            return Ok((both.BasicInfo, Some(both.IoInfo)));
        }
        // SAFETY: as above.
        let mut a: JOBOBJECT_BASIC_ACCOUNTING_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let ok = unsafe {
            QueryInformationJobObject(
                raw(&self.handle),
                JobObjectBasicAccountingInformation,
                &mut a as *mut _ as *mut c_void,
                std::mem::size_of_val(&a) as u32,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(last_os(format!("read the accounting of job {}", self.name)));
        }
        Ok((a, None))
    }

    /// `QueryInformationJobObject`: accounting and the limits in force.
    pub fn info(&self) -> Result<JobInfo> {
        let (a, io) = self.accounting()?;
        let ext = self.extended()?;
        let pids = self.pids()?;
        let from_100ns = |t: i64| Duration::from_nanos(u64::try_from(t).unwrap_or(0) * 100);
        let mut info = JobInfo {
            name: self.name.clone(),
            active_processes: pids.len(),
            pids,
            peak_processes: None,
            total_processes: Some(u64::from(a.TotalProcesses)),
            user_time: from_100ns(a.TotalUserTime),
            kernel_time: from_100ns(a.TotalKernelTime),
            memory_current: None,
            memory_peak: (ext.PeakJobMemoryUsed > 0).then_some(ext.PeakJobMemoryUsed as u64),
            oom_kills: None,
            memory_high_hits: None,
            violations: Vec::new(),
            process_limit_hits: None,
            frozen: false,
            io: io.map(|io| super::JobIo {
                read_operations: io.ReadOperationCount,
                write_operations: io.WriteOperationCount,
                other_operations: io.OtherOperationCount,
                read_bytes: io.ReadTransferCount,
                write_bytes: io.WriteTransferCount,
                other_bytes: io.OtherTransferCount,
            }),
            pressure: None,
            limits: self.limits.clone(),
            kill_on_close: self.kill_on_close,
        };
        info.violations = super::limits::violations_of(&info);
        Ok(info)
    }

    /// `TerminateJobObject(job, code)`: ends every member (nested jobs'
    /// too) with exit code `code`, and returns once none is left (bounded:
    /// 10 s). Returns how many there were.
    pub fn terminate_with(&self, code: i32) -> Result<usize> {
        let n = self.pids()?.len();
        // SAFETY: a live job handle.
        if unsafe { TerminateJobObject(raw(&self.handle), code as u32) } == 0 {
            return Err(last_os(format!("terminate job {}", self.name)));
        }
        self.wait_empty(Duration::from_secs(10))?;
        Ok(n)
    }

    /// `TerminateJobObject(job, 1)`: as [`Job::terminate_with`].
    pub fn terminate(&self) -> Result<usize> {
        self.terminate_with(TERMINATED as i32)
    }

    /// Whether the job object is signalled (terminated, or its job time
    /// limit ended it).
    pub fn is_terminated(&self) -> Result<bool> {
        self.wait(Duration::ZERO)
    }

    /// Waits until the job object is signalled, at most `timeout`: as on
    /// Windows, when it was terminated, not merely when it became empty
    /// (see [`Job::wait_empty`]).
    pub fn wait(&self, timeout: Duration) -> Result<bool> {
        let ms = timeout.as_millis().min(u128::from(u32::MAX - 1)) as u32;
        // SAFETY: a live job handle.
        match unsafe { WaitForSingleObject(raw(&self.handle), ms) } {
            WAIT_OBJECT_0 => Ok(true),
            WAIT_TIMEOUT => Ok(false),
            _ => Err(last_os(format!("wait for job {}", self.name))),
        }
    }

    /// Waits until the job has no process left, at most `timeout`.
    pub fn wait_empty(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if self.accounting()?.0.ActiveProcesses == 0 {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Freezing a job (`JobObjectFreezeInformation`) is not offered yet.
    pub fn freeze(&self) -> Result<()> {
        Err(Error::Unsupported {
            what: "freezing a job",
            reason: "not implemented on Windows yet (JobObjectFreezeInformation)".into(),
        })
    }

    /// See [`Job::freeze`].
    pub fn thaw(&self) -> Result<()> {
        Err(Error::Unsupported {
            what: "thawing a job",
            reason: "not implemented on Windows yet (JobObjectFreezeInformation)".into(),
        })
    }

    /// Ends every member and closes this handle; the object goes with its
    /// last handle, as every Windows object does. Returns how many there were.
    pub fn delete(self) -> Result<usize> {
        self.terminate()
    }

    /// How each job feature is enforced here: by the job object, all of them.
    pub fn capabilities() -> Vec<Capability> {
        let row = |feature, detail: &str| Capability {
            feature,
            enforced: true,
            detail: detail.to_owned(),
        };
        vec![
            row(
                "membership",
                "job objects (AssignProcessToJobObject; no member can leave)",
            ),
            row("active-processes", "JOB_OBJECT_LIMIT_ACTIVE_PROCESS"),
            row("job-memory", "JOB_OBJECT_LIMIT_JOB_MEMORY"),
            row("process-memory", "JOB_OBJECT_LIMIT_PROCESS_MEMORY"),
            row("affinity", "JOB_OBJECT_LIMIT_AFFINITY (processor group 0)"),
            row("cpu-rate", "JobObjectCpuRateControlInformation, hard cap"),
            row(
                "cpu-weight",
                "JobObjectCpuRateControlInformation, weight-based (not with a rate)",
            ),
            Capability {
                feature: "io-rate",
                enforced: false,
                detail: "not implemented on Windows yet (JobObjectIoRateControlInformation)".into(),
            },
            Capability {
                feature: "memory-low",
                enforced: false,
                detail: "no protection on Windows (JobLowMemoryLimit only notifies)".into(),
            },
            Capability {
                feature: "memory-high",
                enforced: false,
                detail: "no throttling ceiling on Windows (job memory is a hard limit)".into(),
            },
            row("priority", "JOB_OBJECT_LIMIT_PRIORITY_CLASS"),
            row("job-time", "JOB_OBJECT_LIMIT_JOB_TIME (user time)"),
            row("process-time", "JOB_OBJECT_LIMIT_PROCESS_TIME (user time)"),
            row("kill-on-close", "JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE"),
            row(
                "die-on-unhandled-exception",
                "JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION (no error report, no debugger)",
            ),
            row("total-processes", "JOBOBJECT_BASIC_ACCOUNTING_INFORMATION"),
            row(
                "notification-limits",
                "JobObjectNotificationLimitInformation: job memory, user time, I/O bytes",
            ),
            row(
                "io-accounting",
                "JOBOBJECT_BASIC_AND_IO_ACCOUNTING_INFORMATION",
            ),
        ]
    }
}

/// `IsProcessInJob(process, NULL)`: Windows tells whether a process is in
/// some job, not which, so a name cannot be given: `Unsupported`. Ask a
/// job handle ([`Job::contains`]) instead.
pub fn job_of(pid: i32) -> Result<Option<String>> {
    let _ = pid;
    Err(Error::Unsupported {
        what: "naming the job a process is in",
        reason: "Windows tells whether a process is in a job, not which (ask Job::contains)".into(),
    })
}
