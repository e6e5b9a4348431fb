//! The Linux job: the Windows-shaped front over a [backend](super::backend)
//! (cgroup directories, a systemd scope, a process group): handles and
//! their duplicates, the limits in force, kill-on-close (the guardian), the
//! exit code of a terminate, the per-process limits, nesting on assign.

use std::collections::VecDeque;
use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use super::backend::{self, JobBackend, Mark};
use super::limits::{check_limits, check_mode};
use super::watch::JobWatcher;
use super::{
    Capability, JobBuilder, JobInfo, JobLimits, guardian, process_time_secs, validate_name,
};

use crate::error::{Error, OrLog, Result};
use crate::process::{Process, ProcessBuilder, ResourceLimit};

/// The `RLIMIT_CORE` of a die-on-unhandled-exception job's members: one
/// byte is below the smallest core an ELF dump writes (a page), and the
/// value at which the kernel refuses to start a `core_pattern` pipe handler
/// ("has RLIMIT_CORE set to 1, aborting core"), where 0 would still start it.
const NO_CORE: u64 = 1;
/// A handle to a job.
///
/// Cloning with [`Job::duplicate`] (`DuplicateHandle`) gives another holder;
/// a holder descriptor can also be passed to a child process
/// ([`Job::holder_fd`]) to keep a kill-on-close job alive.
///
/// Lifetime: a kill-on-close job is killed and removed when its last holder
/// is gone. A job without kill-on-close is a named object that outlives its
/// handles (so `taskloom job create` and a later `taskloom job assign` can
/// meet); remove it with [`Job::delete`]. Windows would destroy an empty job
/// with no handles, but Linux cannot tell when the last handle in another
/// process is gone without a guardian, which is what kill-on-close is.
#[derive(Debug)]
pub struct Job {
    /// Where the job is: shared by the handle, its duplicates and its
    /// watchers, so that all of them follow it when an assignment nests it
    /// in another job ([`Job::assign`]).
    site: Arc<RwLock<Site>>,
    pub(super) limits: JobLimits,
    pub(super) holder: Option<OwnedFd>,
    /// Pids this handle (and its duplicates) spawned, for watchers to recognise
    /// their fork events even when they end before a scan.
    pub(super) spawned: Spawned,
    /// The exit code of the last `terminate_with` through this handle (or a
    /// duplicate), for the members it spawned to report.
    kill_code: KillCode,
}

/// Where a job is kept, and what its handles share about it.
#[derive(Debug)]
pub(super) struct Site {
    pub(super) name: String,
    /// How the job is kept on this machine (cgroup directories, a systemd
    /// scope, a process group): `backend/mod.rs`.
    pub(super) backend: Box<dyn JobBackend>,
    /// The read end of the kill-on-close guardian's pipe, kept so that a
    /// second guardian can watch the same write ends when the job moves.
    pub(super) guard_rx: Option<OwnedFd>,
}

/// An exit code set by [`Job::terminate_with`], shared by a handle, its
/// duplicates and the processes it spawned (`i64::MIN`: none).
#[derive(Debug, Clone)]
pub(super) struct KillCode(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl Default for KillCode {
    fn default() -> Self {
        KillCode(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(
            i64::MIN,
        )))
    }
}

impl KillCode {
    fn get(&self) -> Option<i32> {
        let v = self.0.load(std::sync::atomic::Ordering::Acquire);
        (v != i64::MIN).then_some(v as i32)
    }

    fn set(&self, code: Option<i32>) {
        let v = code.map_or(i64::MIN, i64::from);
        self.0.store(v, std::sync::atomic::Ordering::Release);
    }
}

/// Recently spawned members, shared by a handle, its duplicates and its watchers.
pub(crate) type Spawned = std::sync::Arc<std::sync::Mutex<VecDeque<i32>>>;

impl Job {
    /// A handle over a backend object (made or opened).
    pub(super) fn with_backend(
        name: String,
        limits: JobLimits,
        backend: Box<dyn JobBackend>,
    ) -> Job {
        Job {
            site: Arc::new(RwLock::new(Site {
                name,
                backend,
                guard_rx: None,
            })),
            limits,
            holder: None,
            spawned: Spawned::default(),
            kill_code: KillCode::default(),
        }
    }

    pub(super) fn create_at(parent: Option<&Job>, b: JobBuilder) -> Result<Job> {
        // Before anything is made on disk.
        check_limits(&b.limits)?;
        check_mode(b.mode)?;
        let leaf = b.leaf_name()?;
        // Members of a job that allows breakaway may leave it: no namespace
        // keeps them in (a nested one stays in its parent's, if any).
        let contain = (!b.uncontained && !b.limits.breakaway_ok).then_some(backend::Containment {
            hide_services: b.hide_services,
        });
        let (name, made, waiting) = match parent {
            // A nested job sits inside its parent, whatever made the parent.
            Some(p) => {
                let parent = p.site();
                let name = format!("{}/{leaf}", parent.name);
                let made = parent.backend.create_nested(&name, &leaf, contain)?;
                (name, made, None)
            }
            None => {
                let (made, waiting) = backend::create(&leaf, contain)?;
                (leaf, made, waiting)
            }
        };
        let mut job = Job::with_backend(name, JobLimits::default(), made);
        // Security, limits, kill-on-close; on any failure the job goes again.
        let finished = (|| -> Result<()> {
            if b.hide_services && !job.site().backend.hides_services() {
                return Err(Error::JobsUnavailable(format!(
                    "job {} cannot hide the service manager from its members: it has no mount namespace of its own here (`taskloom job caps`, row containment, says why; -vv shows the cause)",
                    job.name()
                )));
            }
            if let Some(mode) = b.mode {
                job.site().backend.secure(mode)?;
            }
            job.set_limits(&b.limits)?;
            job.arm_guardian(waiting, b.kill_on_close)
        })();
        if let Err(e) = finished {
            let site = job.site();
            site.backend
                .remove()
                .or_log(|| format!("remove job {} after a failed creation", site.name));
            return Err(e);
        }
        Ok(job)
    }

    /// `OpenJobObject`: a handle to an existing job by name (`a` or `a/b` for a nested one).
    ///
    /// Fails with a permission error when this user may not see the job
    /// (read and search its directory). Each later operation is checked by
    /// the kernel against the job's mode when it is made: others may
    /// assign, terminate and freeze only where the mode's write bits let
    /// them ([`JobBuilder::mode`]), and only the owner changes limits.
    pub fn open(name: &str) -> Result<Job> {
        for part in name.split('/') {
            validate_name(part)?;
        }
        let (b, limits) = backend::open(name)?;
        Ok(Job::with_backend(name.to_owned(), limits, b))
    }

    /// Every job this process can name (below its job root; nested ones as `a/b`).
    pub fn list() -> Result<Vec<String>> {
        backend::list()
    }

    /// The job's name (`a/b` for a nested one). It changes when an
    /// assignment nests the job in another ([`Job::assign`]).
    pub fn name(&self) -> String {
        self.site().name.clone()
    }

    /// Where the job is now (the guard lives for one statement: never
    /// hold it across another call that reads the site).
    pub(super) fn site(&self) -> RwLockReadGuard<'_, Site> {
        self.site.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The limits in force.
    pub fn limits(&self) -> &JobLimits {
        &self.limits
    }

    /// Whether this handle holds the job's kill-on-close: when it and every
    /// duplicate are gone, the job's processes are killed.
    pub fn kill_on_close(&self) -> bool {
        self.holder.is_some()
    }

    /// Whether the processes this handle spawns are kept in the job by a
    /// cgroup namespace rooted at it (or at an enclosing job):
    /// [`JobBuilder::contain`].
    pub fn is_contained(&self) -> bool {
        self.site().backend.containment().is_some()
    }

    /// `SetInformationJobObject`: applies limits, to current members too.
    ///
    /// Breakaway cannot be allowed later on a contained job: its members
    /// started in a namespace rooted at it, which no child of theirs can
    /// leave (create the job with `breakaway_ok` instead).
    pub fn set_limits(&mut self, limits: &JobLimits) -> Result<()> {
        check_limits(limits)?;
        if limits.breakaway_ok
            && !self.limits.breakaway_ok
            && self.site().backend.containment() == Some(true)
        {
            return Err(Error::InvalidInput {
                what: "breakaway_ok",
                reason: format!(
                    "job {} is contained: its members started in a cgroup namespace rooted at it, which their children cannot leave; create the job with breakaway allowed",
                    self.name()
                ),
            });
        }
        self.site().backend.apply_limits(limits, &self.limits)?;
        self.limits = limits.clone();
        self.apply_to_members()
    }

    /// Applies the per-process limits to every member. A member that ended
    /// meanwhile is skipped; one the kernel refuses (raising the priority
    /// needs CAP_SYS_NICE) is reported, after the others were done.
    fn apply_to_members(&self) -> Result<()> {
        let mut refused = None;
        for pid in self.pids()? {
            match self.apply_process_limits(pid) {
                Ok(()) => {}
                Err(Error::Os { source, .. }) if source.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => {
                    refused.get_or_insert((pid, e));
                }
            }
        }
        match refused {
            None => Ok(()),
            Some((pid, e)) => Err(Error::PermissionDenied {
                what: format!(
                    "apply the limits of job {} to its member {pid} (the job keeps them; new members get them)",
                    self.name()
                ),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }

    /// Per-process limits that are not cgroup files: rlimits and priority.
    fn apply_process_limits(&self, pid: i32) -> Result<()> {
        let Some(rpid) = rustix::process::Pid::from_raw(pid) else {
            return Ok(());
        };
        if let Some(bytes) = self.limits.process_memory {
            let lim = rustix::process::Rlimit {
                current: Some(bytes),
                maximum: Some(bytes),
            };
            rustix::process::prlimit(Some(rpid), rustix::process::Resource::As, lim)
                .map_err(|e| Error::os(format!("set RLIMIT_AS of member {pid}"), e.into()))?;
        }
        if let Some(t) = self.limits.process_time {
            let secs = process_time_secs(t);
            let lim = rustix::process::Rlimit {
                current: Some(secs),
                maximum: Some(secs),
            };
            rustix::process::prlimit(Some(rpid), rustix::process::Resource::Cpu, lim)
                .map_err(|e| Error::os(format!("set RLIMIT_CPU of member {pid}"), e.into()))?;
        }
        if self.limits.die_on_unhandled_exception {
            let lim = rustix::process::Rlimit {
                current: Some(NO_CORE),
                maximum: Some(NO_CORE),
            };
            rustix::process::prlimit(Some(rpid), rustix::process::Resource::Core, lim)
                .map_err(|e| Error::os(format!("set RLIMIT_CORE of member {pid}"), e.into()))?;
        }
        if let Some(class) = self.limits.priority {
            rustix::process::setpriority_process(Some(rpid), class.nice())
                .map_err(|e| Error::os(format!("set the priority of member {pid}"), e.into()))?;
        }
        Ok(())
    }

    /// Gives the job its guardian: `waiting` when one already runs (the
    /// process a systemd scope was started with), else a new one. With
    /// kill-on-close this handle holds it; without, it only keeps the scope.
    fn arm_guardian(
        &mut self,
        waiting: Option<guardian::Waiting>,
        kill_on_close: bool,
    ) -> Result<()> {
        if self.holder.is_some() {
            return Ok(());
        }
        let (mut plan, count) = {
            let site = self.site();
            (site.backend.guardian_plan(), site.backend.counted_at())
        };
        // An outermost cgroup job counts its processes (a nested one is
        // counted by its top job's): its guardian does, or a counter of its
        // own where it has none. Where this machine gives no process events
        // nothing counts (`info` then has no total); a counter that does not
        // start is traced, not fatal.
        if let Some((top, shown)) = &count {
            plan.count(top, shown);
        }
        let recorded = |pid: i32| {
            if let Some((top, _)) = &count {
                guardian::record(top, pid)
                    .or_log(|| format!("count the processes of job {}", self.name()));
            }
        };
        let armed = match waiting {
            Some(w) => {
                let (pid, counting) = (w.pid, w.counting());
                let armed = w.arm(&plan, kill_on_close)?;
                if counting {
                    recorded(pid);
                }
                armed
            }
            None if kill_on_close => {
                let (armed, counting) = guardian::start(&plan)?;
                if counting {
                    recorded(armed.pid);
                }
                Some(armed)
            }
            None => {
                if let Some((top, shown)) = &count {
                    guardian::start_counting(top, shown)
                        .or_log(|| format!("start the process counter of job {}", self.name()));
                }
                None
            }
        };
        // The pid namespace's init (a contained job's) ends with the last
        // handle too where the job is kill-on-close, else with the job.
        self.site().backend.arm_init(
            armed
                .as_ref()
                .filter(|_| kill_on_close)
                .map(|a| a.holder_rx.as_fd()),
        )?;
        if let Some(armed) = armed {
            self.site()
                .backend
                .marks()
                .set(Mark::KillOnClose, Some(b"1"));
            self.holder = Some(armed.holder);
            self.site
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .guard_rx = Some(armed.holder_rx);
        }
        Ok(())
    }

    /// The kill-on-close holder descriptor, to pass to a child that should keep the job alive.
    pub fn holder_fd(&self) -> Option<BorrowedFd<'_>> {
        self.holder.as_ref().map(|h| h.as_fd())
    }

    /// `DuplicateHandle`: another handle to the same job (another kill-on-close holder).
    pub fn duplicate(&self) -> Result<Job> {
        let holder = match &self.holder {
            Some(h) => Some(h.try_clone().map_err(|e| {
                Error::os(format!("duplicate the handle of job {}", self.name()), e)
            })?),
            None => None,
        };
        Ok(Job {
            site: self.site.clone(),
            limits: self.limits.clone(),
            holder,
            spawned: self.spawned.clone(),
            kill_code: self.kill_code.clone(),
        })
    }

    /// `CreateProcess` straight into the job: the child is a member before its
    /// first instruction, with the job's per-process limits.
    pub fn spawn(&self, builder: ProcessBuilder) -> Result<Process> {
        let builder = self.with_process_limits(builder);
        let (mut child, chain) = {
            let site = self.site();
            (
                site.backend.spawn(builder, &self.limits)?,
                site.backend.chain(),
            )
        };
        guardian::count_entered(&chain, backend::own_v2_dir);
        self.remember_spawn(child.pid());
        self.report_kills(&mut child);
        Ok(child)
    }

    /// [`Job::spawn`] returning an async handle (feature `tokio`): its wait
    /// takes no thread (see [`AsyncProcess`](crate::process::AsyncProcess)).
    #[cfg(feature = "tokio")]
    pub fn spawn_async(&self, builder: ProcessBuilder) -> Result<crate::process::AsyncProcess> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Unsupported {
                what: "spawning an async process",
                reason: "no tokio runtime with its IO driver is running on this thread".into(),
            });
        }
        self.spawn(builder)?.into_async()
    }

    /// [`Job::wait_empty`] without blocking a thread (feature `tokio`): the
    /// job is looked at after 1 ms, then at doubling intervals up to 20 ms,
    /// on the runtime's timer. `true` once empty, `false` at `timeout`.
    #[cfg(feature = "tokio")]
    pub async fn wait_empty_async(&self, timeout: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if self.site().backend.is_empty()? {
                return Ok(true);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// The job's per-process limits, set in the child before `execve`.
    fn with_process_limits(&self, mut builder: ProcessBuilder) -> ProcessBuilder {
        if let Some(bytes) = self.limits.process_memory {
            builder = builder.rlimit(ResourceLimit::AddressSpace, bytes, bytes);
        }
        if let Some(t) = self.limits.process_time {
            let secs = process_time_secs(t);
            builder = builder.rlimit(ResourceLimit::CpuTime, secs, secs);
        }
        if self.limits.die_on_unhandled_exception {
            builder = builder.rlimit(ResourceLimit::CoreSize, NO_CORE, NO_CORE);
        }
        if let Some(class) = self.limits.priority {
            builder = builder.priority(class);
        }
        builder
    }

    /// Makes a member this handle spawned report the code of a
    /// `terminate_with` (this handle's, or one recorded on the job) when it
    /// is killed.
    fn report_kills(&self, child: &mut Process) {
        let code = self.kill_code.clone();
        let (marks, name) = {
            let site = self.site();
            (site.backend.marks(), site.name.clone())
        };
        child.report_kills_as(move || {
            code.get()
                .or_else(|| marks.get(Mark::ExitCode, &name).ok()??.trim().parse().ok())
        });
    }

    /// Records a pid this handle spawned, for watchers to recognise its forks.
    fn remember_spawn(&self, pid: i32) {
        let mut spawned = self.spawned.lock().unwrap_or_else(|e| e.into_inner());
        if spawned.len() >= 4096 {
            spawned.pop_front();
        }
        spawned.push_back(pid);
    }

    /// `AssignProcessToJobObject`: moves the process (its threads and future
    /// children follow) into the job.
    ///
    /// As on Windows, a process never leaves a job: one that is in job P
    /// may be assigned to P itself or a job nested in P (it stays in P). If
    /// this job is empty, top-level and has no nested jobs, it is nested in
    /// P's innermost job first — made again there as `P/<name>` with its
    /// limits, security, containment and kill-on-close, its old place
    /// removed — and the process is then in both; every handle in this
    /// process to it (this one, duplicates, watchers) follows, and
    /// [`Job::name`] says the new name (handles other processes opened by
    /// the old name lose it; a job whose kill-on-close another process
    /// holds is not moved). To any other job outside P's subtree the call
    /// fails with a permission error and the process stays where it was. A
    /// process already in this job (or a job nested in it) stays where it is.
    ///
    /// The pidfd proves the identity: the pid is written only while the
    /// process is known to hold it, and if it ended during the write (so
    /// the number could have gone to a newcomer), whatever process then has
    /// that number in the job is moved back out and `NoSuchProcess` returned.
    pub fn assign(&self, process: &Process) -> Result<()> {
        let pid = process.pid();
        // Signal 0 through the pidfd: fails with ESRCH only once the process
        // is reaped, i.e. only once its number could be someone else's.
        let alive = || !matches!(process.signal(0), Err(Error::NoSuchProcess { .. }));
        if !alive() {
            return Err(Error::NoSuchProcess { pid });
        }
        let stat =
            fs::read(format!("/proc/{pid}/stat")).map_err(|_| Error::NoSuchProcess { pid })?;
        let stat =
            crate::linux::parse::parse_stat(&stat).map_err(|_| Error::NoSuchProcess { pid })?;
        if stat.state == 'Z' || stat.state == 'X' {
            return Err(Error::InvalidInput {
                what: "assign",
                reason: format!(
                    "process {pid} has exited (a zombie waiting for its parent): there is nothing to assign"
                ),
            });
        }
        if stat.flags & 0x0020_0000 != 0 {
            return Err(Error::InvalidInput {
                what: "assign",
                reason: format!("process {pid} is a kernel thread: it belongs to no job"),
            });
        }
        let foreign = self.site().backend.foreign_job_of(pid)?;
        // Where it was, for the process counts (read before it moves).
        let came_from = backend::v2_dir_of(pid);
        match foreign {
            Some(theirs) => self.nest_and_assign(pid, &theirs, came_from, &alive)?,
            None => {
                let site = self.site();
                guardian::counted_move(&site.backend.chain(), came_from, || {
                    site.backend.assign(pid, &self.limits, &alive)
                })?;
            }
        }
        self.apply_process_limits(pid)
    }

    /// `AssignProcessToJobObject` of a member of job `theirs` that this job
    /// is not nested in. As on Windows, an empty top-level job is nested in
    /// `theirs` first: it is made again as `theirs/<name>` with the same
    /// limits, security, containment and kill-on-close, the process is moved
    /// in, the old place is removed, and every handle to it (this one, its
    /// duplicates, its watchers) follows. Anything else is refused, and the
    /// process stays where it was.
    fn nest_and_assign(
        &self,
        pid: i32,
        theirs: &str,
        came_from: Option<PathBuf>,
        alive: &dyn Fn() -> bool,
    ) -> Result<()> {
        let mut site = self.site.write().unwrap_or_else(|e| e.into_inner());
        let name = site.name.clone();
        let refuse = |why: String| Error::PermissionDenied {
            what: format!(
                "assign process {pid} to job {name}: it is in job {theirs}, which job {name} is not nested in, and a process never leaves its job; {why}"
            ),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        if name.contains('/') {
            return Err(refuse(format!(
                "{name} has a parent already, so it cannot be nested in {theirs} (make the job inside {theirs} instead)"
            )));
        }
        if !site.backend.is_empty()? {
            return Err(refuse(format!(
                "{name} has processes, and only an empty job is nested in the process's job"
            )));
        }
        if site.guard_rx.is_none()
            && site
                .backend
                .marks()
                .get(Mark::KillOnClose, &name)?
                .is_some()
        {
            return Err(refuse(format!(
                "{name} is kill-on-close, held by another handle, whose guardian could not follow it (nest it through the handle that created it)"
            )));
        }
        let prefix = format!("{name}/");
        if backend::list()?.iter().any(|n| n.starts_with(&prefix)) {
            return Err(refuse(format!(
                "{name} has nested jobs, and only a job without any is nested in the process's job"
            )));
        }
        let (parent, _) = backend::open(theirs).map_err(|e| {
            refuse(format!(
                "{name} could not be nested in {theirs}, which this process cannot open: {e}"
            ))
        })?;
        let new_name = format!("{theirs}/{name}");
        let contain = (site.backend.containment() == Some(true)).then_some(backend::Containment {
            hide_services: site.backend.hides_services(),
        });
        let made = parent
            .create_nested(&new_name, &name, contain)
            .map_err(|e| refuse(format!("{name} could not be nested in {theirs}: {e}")))?;
        let finished = (|| -> Result<()> {
            if let Some(mode) = site.backend.mode() {
                made.secure(mode)?;
            }
            made.apply_limits(&self.limits, &JobLimits::default())?;
            // Kill-on-close moves with the job: a second guardian waits on the
            // same holders (this handle's, its duplicates', its children's).
            if let Some(rx) = &site.guard_rx {
                guardian::watch_same(rx, &made.guardian_plan())?;
            }
            let chain = made.chain();
            // Its count so far goes with it (it had no counter of its own
            // there once nested: its new top job's counts on).
            if let (Some(from), Some(to)) = (site.backend.chain().last(), chain.last()) {
                guardian::carry_over(from, to);
            }
            guardian::counted_move(&chain, came_from, || made.assign(pid, &self.limits, alive))
        })();
        if let Err(e) = finished {
            made.remove()
                .or_log(|| format!("remove job {new_name} after a failed nesting"));
            return Err(e);
        }
        let old = std::mem::replace(&mut site.backend, made);
        site.name = new_name;
        // Someone may have put a process into the old place meanwhile: it
        // stays there, a job of its own for whoever holds it.
        old.remove()
            .or_log(|| format!("remove job {name}'s old place after nesting it in {theirs}"));
        Ok(())
    }

    /// Assigns a process by pid: opens a pidfd first, so the process meant is
    /// the one assigned (see [`Job::assign`]).
    pub fn assign_pid(&self, pid: i32) -> Result<()> {
        if pid <= 0 {
            return Err(Error::InvalidInput {
                what: "assign",
                reason: format!("{pid} is not a process id"),
            });
        }
        // Opened to wait only: assign checks what it is (a kernel thread, a
        // zombie) before the kernel is asked to move it.
        let process = Process::open(pid)?;
        self.assign(&process)
    }

    /// The pids of every process in the job (nested jobs included).
    pub fn pids(&self) -> Result<Vec<i32>> {
        self.site().backend.pids()
    }

    /// `IsProcessInJob(process, job)`.
    pub fn contains(&self, pid: i32) -> Result<bool> {
        Ok(self.pids()?.contains(&pid))
    }

    /// `QueryInformationJobObject`: accounting and the limits in force.
    pub fn info(&self) -> Result<JobInfo> {
        let (a, name, chain) = {
            let site = self.site();
            let a = site.backend.accounting(&self.limits)?;
            (a, site.name.clone(), site.backend.chain())
        };
        let mut info = JobInfo {
            name,
            active_processes: a.pids.len(),
            pids: a.pids,
            peak_processes: a.peak_processes,
            total_processes: guardian::total(&chain),
            user_time: a.user_time,
            kernel_time: a.kernel_time,
            memory_current: a.memory_current,
            memory_peak: a.memory_peak,
            io: a.io,
            pressure: a.pressure,
            oom_kills: a.oom_kills,
            memory_high_hits: a.memory_high_hits,
            violations: Vec::new(),
            process_limit_hits: a.process_limit_hits,
            frozen: a.frozen,
            limits: self.limits.clone(),
            kill_on_close: self.holder.is_some(),
        };
        info.violations = super::limits::violations_of(&info);
        Ok(info)
    }

    /// `TerminateJobObject(job, code)`: kills every process of the job (and
    /// its nested jobs) and returns once none is left, as [`Job::terminate`];
    /// the members' handles then report exit code `code` instead of SIGKILL:
    /// those this handle (or a duplicate) spawned, and, while the job exists,
    /// those spawned through other handles. Returns how many were killed.
    pub fn terminate_with(&self, code: i32) -> Result<usize> {
        self.kill_code.set(Some(code));
        self.site()
            .backend
            .marks()
            .set(Mark::ExitCode, Some(code.to_string().as_bytes()));
        self.kill_members()
    }

    /// `TerminateJobObject`: kills every process of the job and its nested
    /// jobs, and returns once none is left. Returns how many were killed.
    pub fn terminate(&self) -> Result<usize> {
        // Killed members report SIGKILL (no code of an earlier terminate_with).
        self.kill_code.set(None);
        self.site().backend.marks().set(Mark::ExitCode, None);
        self.kill_members()
    }

    /// Kills every member until none is left; the job is signalled.
    pub(crate) fn kill_members(&self) -> Result<usize> {
        // The job's object is signalled from now on (`Job::wait`).
        self.site()
            .backend
            .marks()
            .set(Mark::Terminated, Some(b"1"));
        self.site().backend.kill_all()
    }

    /// Whether the job has been terminated ([`Job::terminate`], or its job
    /// time limit), by any handle in any process.
    pub fn is_terminated(&self) -> Result<bool> {
        let site = self.site();
        Ok(site
            .backend
            .marks()
            .get(Mark::Terminated, &site.name)?
            .is_some())
    }

    /// `WaitForSingleObject(job)`: waits until the job has been terminated
    /// (by [`Job::terminate`] from any handle, or by its job time limit).
    /// As on Windows, a job that merely runs out of processes is not
    /// signalled: [`Job::wait_empty`] waits for that. `Ok(false)` on time-out.
    pub fn wait(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now().checked_add(timeout);
        let mut pause = Duration::from_micros(200);
        loop {
            if self.is_terminated()? {
                return Ok(true);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(false);
            }
            let left = deadline.map_or(pause, |d| d - now);
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Waits until the job has no process left (cgroup2 `populated 0`, or an empty pid list).
    pub fn wait_empty(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.site().backend.is_empty()? {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// Freezes every process of the job (they stop; even SIGKILL waits for the thaw on v1).
    pub fn freeze(&self) -> Result<()> {
        self.site().backend.set_frozen(true)
    }

    /// Thaws a frozen job.
    pub fn thaw(&self) -> Result<()> {
        self.site().backend.set_frozen(false)
    }

    /// Watches the job: new and ended processes, limits hit, job empty; and
    /// enforces the job time limit while it runs.
    pub fn watch(&self, interval: Duration) -> Result<JobWatcher> {
        let job = Job {
            site: self.site.clone(),
            limits: self.limits.clone(),
            holder: None,
            spawned: self.spawned.clone(),
            kill_code: self.kill_code.clone(),
        };
        JobWatcher::new(job, interval)
    }

    /// Terminates the job (if it has members) and removes it.
    pub fn delete(self) -> Result<usize> {
        let killed = if self.pids()?.is_empty() {
            0
        } else {
            self.kill_members()?
        };
        self.site().backend.remove()?;
        Ok(killed)
    }

    /// How each job feature is enforced on this machine.
    pub fn capabilities() -> Vec<Capability> {
        backend::capabilities()
    }
}

/// `IsProcessInJob(process, NULL)`: the name of the taskloom job `pid` is in, if any.
pub fn job_of(pid: i32) -> Result<Option<String>> {
    backend::job_of(pid)
}
