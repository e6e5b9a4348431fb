//! Job objects on cgroups: named, nestable, securable groups of processes
//! whose limits the kernel enforces.
//!
//! | Windows                              | taskloom                                   |
//! |--------------------------------------|--------------------------------------------|
//! | `CreateJobObject`                    | [`Job::create`], [`JobBuilder`]            |
//! | `OpenJobObject`                      | [`Job::open`]                              |
//! | `AssignProcessToJobObject`           | [`Job::assign`]                            |
//! | `CreateProcess` into a job           | [`Job::spawn`] (placed before its first instruction) |
//! | `SetInformationJobObject`            | [`Job::set_limits`]                        |
//! | `QueryInformationJobObject`          | [`Job::info`], [`Job::pids`]               |
//! | `TerminateJobObject`                 | [`Job::terminate`]                         |
//! | `IsProcessInJob`                     | [`Job::contains`], [`job_of`]              |
//! | `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE` | [`JobBuilder::kill_on_close`] (a guardian process) |
//! | job notifications                    | [`Job::watch`]                             |
//!
//! A job is a directory named after it in each cgroup hierarchy taskloom
//! uses, below this process's own cgroup (`<own>/taskloom/<name>`). On
//! cgroup2 its processes live in a leaf `@N` below the job directory, so
//! nested jobs sit beside the leaf and a fresh leaf can be made after a
//! terminate (see "the CLONE_INTO_CGROUP bug" in ARCHITECTURE.md).
//! Membership is inherited by every fork, so nothing started in a job leaves
//! it by double-forking, `setsid` or daemonizing; only a process allowed to
//! write another cgroup's `cgroup.procs` (root, or the owner of that cgroup)
//! can move itself out.

mod cgroup;
mod connector;
mod guardian;
pub mod layout;
mod pgroup;
mod systemd;
mod watch;

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use cgroup::parse_keyed;
pub use layout::Controller;
pub use watch::{JobCounts, JobEvent, JobWatcher};

use crate::cpuset::CpuSet;
use crate::error::{Error, Result};
use crate::priority::PriorityClass;
use crate::process::{CgroupPlacement, Process, ProcessBuilder, ResourceLimit};

/// The longest job name accepted.
pub const MAX_NAME_LEN: usize = 128;

/// Limits of a job (`JOBOBJECT_EXTENDED_LIMIT_INFORMATION` and friends).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct JobLimits {
    /// Most processes (and threads: `pids.max` counts tasks) alive at once.
    pub active_processes: Option<u64>,
    /// Memory for the whole job, in bytes (`memory.max`); the OOM killer acts inside the job only.
    pub job_memory: Option<u64>,
    /// Address space per process, in bytes (`RLIMIT_AS`).
    pub process_memory: Option<u64>,
    /// CPUs the job may use (`cpuset.cpus`).
    pub affinity: Option<CpuSet>,
    /// Priority class of every process (nice values, set on members).
    pub priority: Option<PriorityClass>,
    /// Hard CPU cap as a percentage of one CPU (150 = one and a half CPUs; `cpu.max`).
    pub cpu_rate_percent: Option<u32>,
    /// User-mode CPU time for the whole job; the job is terminated past it (enforced by a watcher).
    #[serde(with = "crate::units::serde_opt_secs", rename = "job_time_seconds")]
    pub job_time: Option<Duration>,
    /// User+kernel CPU time per process (`RLIMIT_CPU`, SIGKILL at the limit).
    /// The kernel counts whole seconds: a fraction is rounded up
    /// ([`process_time_secs`]), so no process is stopped before its limit.
    #[serde(with = "crate::units::serde_opt_secs", rename = "process_time_seconds")]
    pub process_time: Option<Duration>,
    /// Members may start children outside the job (`JOB_OBJECT_LIMIT_BREAKAWAY_OK`,
    /// with [`ProcessBuilder::breakaway_from_job`]).
    pub breakaway_ok: bool,
}

/// What [`Job::info`] reports (`JOBOBJECT_BASIC_AND_IO_ACCOUNTING_INFORMATION` and more).
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobInfo {
    /// The job's name (a path such as `build/tests` for a nested job).
    pub name: String,
    /// Processes in the job now (nested jobs included).
    pub active_processes: usize,
    /// Their pids.
    pub pids: Vec<i32>,
    /// Most tasks alive at once (`pids.peak`), when the kernel keeps it.
    pub peak_processes: Option<u64>,
    /// User CPU time of every process that ever ran in the job.
    #[serde(with = "crate::units::serde_secs", rename = "user_seconds")]
    pub user_time: Duration,
    /// Kernel CPU time, likewise.
    #[serde(with = "crate::units::serde_secs", rename = "kernel_seconds")]
    pub kernel_time: Duration,
    /// Memory in use now, in bytes.
    pub memory_current: Option<u64>,
    /// Most memory in use at once, in bytes.
    pub memory_peak: Option<u64>,
    /// Processes the OOM killer ended inside the job.
    pub oom_kills: Option<u64>,
    /// Forks refused by the active-process limit.
    pub process_limit_hits: Option<u64>,
    /// Whether the job is frozen.
    pub frozen: bool,
    /// The limits in force.
    pub limits: JobLimits,
    /// Whether this handle holds the job's kill-on-close (`JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`).
    pub kill_on_close: bool,
}

/// How one limit is enforced on this machine (`taskloom job caps`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Capability {
    /// The limit or feature.
    pub feature: &'static str,
    /// Whether the kernel enforces it here.
    pub enforced: bool,
    /// The mechanism, or why it is unavailable.
    pub detail: String,
}

/// Checks that `name` is one safe path component.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidJobName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 128 bytes");
    }
    if name.contains('/') {
        return bad("contains '/'");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not names");
    }
    if name.starts_with('.') {
        return bad("starts with '.'");
    }
    if name.contains('\0') {
        return bad("contains a NUL byte");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad("only letters, digits, '-', '_' and '.' are allowed");
    }
    if name == cgroup::ROOT_NAME {
        return bad("is reserved: it holds the jobs a job's members make");
    }
    // Control files are named `<controller>.<file>` (cgroup v1 and v2) or
    // are one of v1's few bare names: a job of such a name would clash in
    // some hierarchy, now or when a controller is mounted later.
    const CONTROLLERS: [&str; 17] = [
        "cgroup",
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "pids",
        "io",
        "blkio",
        "freezer",
        "devices",
        "net_cls",
        "net_prio",
        "hugetlb",
        "perf_event",
        "rdma",
        "misc",
        "dmem",
    ];
    let prefix = name.split('.').next().unwrap_or(name);
    if (name.contains('.') && CONTROLLERS.contains(&prefix))
        || name.contains(".max")
        || ["tasks", "notify_on_release", "release_agent"].contains(&name)
    {
        return bad("clashes with a cgroup control file");
    }
    Ok(())
}

/// Builds a job: `CreateJobObject` with its options.
///
/// Every option is its own setting: the order of the calls never matters
/// (kill-on-close is not one of the [`JobLimits`], so setting the limits
/// cannot switch it off).
///
/// ```
/// use taskloom::job::{Job, JobLimits};
/// let limits = JobLimits { active_processes: Some(8), ..Default::default() };
/// let a = Job::builder().kill_on_close(true).limits(limits.clone());
/// let b = Job::builder().limits(limits).kill_on_close(true);
/// assert!(a.is_kill_on_close() && b.is_kill_on_close());
/// ```
#[derive(Debug, Default)]
pub struct JobBuilder {
    name: Option<String>,
    limits: JobLimits,
    kill_on_close: bool,
    mode: Option<u32>,
}

impl JobBuilder {
    /// A named job (`lpName`); anonymous when not called.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Limits applied before any process joins (they replace earlier
    /// `limits` calls; kill-on-close and the other options stay as set).
    pub fn limits(mut self, limits: JobLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Kill every member when the last handle closes
    /// (`JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`): a guardian process holds the
    /// job, so this holds even when the owner is SIGKILLed.
    pub fn kill_on_close(mut self, yes: bool) -> Self {
        self.kill_on_close = yes;
        self
    }

    /// Whether the job will be created with kill-on-close.
    pub fn is_kill_on_close(&self) -> bool {
        self.kill_on_close
    }

    /// The job's security descriptor as permission bits, e.g. `0o700`
    /// (permission bits only: anything above `0o777` is refused). The owner
    /// keeps every right; others may see the job with read bits, and assign
    /// processes to it, terminate and freeze it with write bits. Limits and
    /// the job's metadata stay the owner's.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The job's own name: the one given (checked), or a fresh anonymous one.
    fn leaf_name(&self) -> Result<String> {
        match &self.name {
            Some(n) => {
                validate_name(n)?;
                Ok(n.clone())
            }
            None => Ok(anon_name()),
        }
    }

    /// Creates a top-level job.
    pub fn create(self) -> Result<Job> {
        Job::create_at(None, self)
    }

    /// Creates a job nested in `parent`: the parent's limits apply too, its
    /// accounting includes this job, and terminating it covers this job.
    pub fn create_in(self, parent: &Job) -> Result<Job> {
        Job::create_at(Some(parent), self)
    }
}

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
    name: String,
    v2: Option<PathBuf>,
    v1: Vec<(Controller, PathBuf)>,
    limits: JobLimits,
    holder: Option<OwnedFd>,
    /// The process-group backend's state directory (no cgroup is writable).
    pg: Option<PathBuf>,
    /// Pids this handle (and its duplicates) spawned, for watchers to recognise
    /// their fork events even when they end before a scan.
    spawned: Spawned,
    /// The number of the v2 leaf (`@N`) the last spawn used, `u32::MAX` when
    /// unknown: the next spawn opens `@N` by name and lists the directory
    /// only when that fails (after a terminate renewed the leaves).
    leaf_hint: std::sync::atomic::AtomicU32,
    /// The systemd scope unit that holds this top-level job (systemd backend).
    scope: Option<String>,
    /// The exit code of the last `terminate_with` through this handle (or a
    /// duplicate), for the members it spawned to report.
    kill_code: KillCode,
}

/// An exit code set by [`Job::terminate_with`], shared by a handle, its
/// duplicates and the processes it spawned (`i64::MIN`: none).
#[derive(Debug, Clone)]
struct KillCode(std::sync::Arc<std::sync::atomic::AtomicI64>);

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

/// Where another process's handle finds a `terminate_with` code.
const EXIT_CODE_XATTR: &str = "user.taskloom.exit_code";

/// Recently spawned members, shared by a handle, its duplicates and its watchers.
pub(crate) type Spawned = std::sync::Arc<std::sync::Mutex<VecDeque<i32>>>;

fn anon_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "anon-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

const LIMITS_XATTR: &str = "user.taskloom.limits";
/// Set on a job's primary directory once it was terminated (its object is signalled).
const TERMINATED_XATTR: &str = "user.taskloom.terminated";

/// Refuses limits no one means: zero processes, zero memory, no CPU, zero
/// CPU rate or time (each would stop the job's every process at once).
fn check_limits(l: &JobLimits) -> Result<()> {
    let zero = [
        (
            l.active_processes == Some(0),
            "an active process limit of 0",
        ),
        (l.job_memory == Some(0), "a job memory limit of 0 bytes"),
        (
            l.process_memory == Some(0),
            "a process memory limit of 0 bytes",
        ),
        (
            l.affinity.as_ref().is_some_and(CpuSet::is_empty),
            "an affinity limit with no CPU",
        ),
        (l.cpu_rate_percent == Some(0), "a CPU rate of 0%"),
        (
            l.job_time.is_some_and(|d| d.is_zero()),
            "a job time limit of 0",
        ),
        (
            l.process_time.is_some_and(|d| d.is_zero()),
            "a process time limit of 0",
        ),
    ];
    match zero.iter().find(|(bad, _)| *bad) {
        Some((_, what)) => Err(Error::InvalidInput {
            what: "job limit",
            reason: format!("{what} would stop every process at once"),
        }),
        None => Ok(()),
    }
}
/// The `RLIMIT_CPU` seconds that enforce a per-process time limit: the
/// kernel counts whole seconds, so a fraction rounds up (2.5 s → 3 s).
pub fn process_time_secs(limit: Duration) -> u64 {
    (limit.as_secs() + u64::from(limit.subsec_nanos() > 0)).max(1)
}

/// Refuses a job mode that is more than permission bits (setuid, setgid and
/// sticky bits mean nothing for a job and must not reach cgroup directories).
fn check_mode(mode: Option<u32>) -> Result<()> {
    match mode {
        Some(m) if m & !0o777 != 0 => Err(Error::InvalidInput {
            what: "job mode",
            reason: format!("{m:o} is not permission bits (0 to 777)"),
        }),
        _ => Ok(()),
    }
}

/// Lets others write the files that assign, terminate and freeze, as `mode`'s
/// group and other write bits say (`cgroup.procs`, and where this user may
/// change them, `cgroup.kill`, `cgroup.freeze`, `freezer.state`).
fn share_files(dir: &Path, mode: u32) -> Result<()> {
    let file_mode = 0o644 | (mode & 0o022);
    fs::set_permissions(
        dir.join("cgroup.procs"),
        fs::Permissions::from_mode(file_mode),
    )
    .map_err(|e| Error::os("chmod job", e))?;
    for f in ["cgroup.kill", "cgroup.freeze", "freezer.state"] {
        // Owned by root unless we are root: best effort, as the kernel allows.
        let _ = fs::set_permissions(dir.join(f), fs::Permissions::from_mode(file_mode));
    }
    Ok(())
}

/// `Job::leaf_hint` when no leaf number is known.
const UNKNOWN_LEAF: u32 = u32::MAX;

impl Job {
    /// `CreateJobObject(NULL, name)`: an empty job with no limits.
    pub fn create(name: Option<&str>) -> Result<Job> {
        let mut b = JobBuilder::default();
        if let Some(n) = name {
            b = b.name(n);
        }
        b.create()
    }

    /// A builder for a job with options.
    pub fn builder() -> JobBuilder {
        JobBuilder::default()
    }

    fn create_at(parent: Option<&Job>, b: JobBuilder) -> Result<Job> {
        // Before anything is made on disk.
        check_limits(&b.limits)?;
        check_mode(b.mode)?;
        let roots = cgroup::roots();
        if degraded() {
            return Job::create_degraded(parent, b);
        }
        let leaf = b.leaf_name()?;
        if parent.is_none() && backend() == Backend::Systemd {
            return Job::create_scoped(leaf, b);
        }
        // A nested job sits in its parent's directories (whatever made them).
        let (name, v2, v1): (String, Option<PathBuf>, Vec<(Controller, PathBuf)>) = match parent {
            Some(p) => (
                format!("{}/{leaf}", p.name),
                p.v2.as_ref().map(|d| d.join(&leaf)),
                p.v1.iter().map(|(c, d)| (*c, d.join(&leaf))).collect(),
            ),
            None => (
                leaf.clone(),
                roots.v2.as_ref().map(|r| r.join(&leaf)),
                roots.v1.iter().map(|(c, r)| (*c, r.join(&leaf))).collect(),
            ),
        };
        // Roots may have been removed by the last job's deletion (here, or by
        // another process's guardian, even between these steps): make them again.
        let ensure_roots = || -> Result<()> {
            for root in roots.v2.iter().chain(roots.v1.iter().map(|(_, r)| r)) {
                cgroup::ensure_dir(root).map_err(|e| Error::os("create job root cgroup", e))?;
            }
            if let Some((_, root)) = roots.v1.iter().find(|(c, _)| *c == Controller::Cpuset) {
                cgroup::inherit_cpuset(root)?;
            }
            if let Some(root) = &roots.v2 {
                // The delegated cgroup above the root hands the controllers
                // down first (pure cgroup2, when our own cgroup holds processes).
                for dir in roots.v2_enable_in.iter().chain([root]) {
                    for c in &roots.v2_controllers {
                        let _ =
                            cgroup::write(&dir.join("cgroup.subtree_control"), &format!("+{c}"));
                    }
                }
            }
            Ok(())
        };
        // Create the primary directory first: its existence is the name's claim.
        let primary = v2
            .clone()
            .or_else(|| v1.first().map(|(_, p)| p.clone()))
            .expect("usable roots");
        let mut attempts = 0;
        loop {
            ensure_roots()?;
            attempts += 1;
            match fs::create_dir(&primary) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::JobExists(name));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 3 => continue,
                Err(e) => return Err(Error::os("create job cgroup", e)),
            }
        }
        let job = Job {
            name,
            v2,
            v1,
            limits: JobLimits::default(),
            holder: None,
            pg: None,
            spawned: Spawned::default(),
            leaf_hint: UNKNOWN_LEAF.into(),
            scope: parent.and_then(|p| p.scope.clone()),
            kill_code: KillCode::default(),
        };
        // Only what this creation made (or took over empty) is removed on failure.
        let mut made: Vec<PathBuf> = job.v2.iter().cloned().collect();
        let result = (|| -> Result<()> {
            if let Some(v2) = &job.v2 {
                for c in &roots.v2_controllers {
                    let _ = cgroup::write(&v2.join("cgroup.subtree_control"), &format!("+{c}"));
                }
                fs::create_dir(v2.join("@0"))
                    .map_err(|e| Error::os("create job leaf cgroup", e))?;
            }
            for (c, dir) in &job.v1 {
                // Co-mounted controllers (cpu,cpuacct) share one directory.
                if !made.contains(dir) {
                    let mut r = fs::create_dir(dir);
                    if parent.is_none()
                        && matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::NotFound)
                    {
                        // The root went with another job in the meantime.
                        ensure_roots()?;
                        r = fs::create_dir(dir);
                    }
                    match r {
                        Ok(()) => {}
                        // A leftover of an earlier job of this name (a crash
                        // before its removal) is taken over only while it is
                        // empty: a job's directory in use is never shared.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            if !cgroup::is_empty_cgroup(dir) {
                                return Err(Error::JobExists(job.name.clone()));
                            }
                        }
                        Err(e) => return Err(Error::os("create job cgroup", e)),
                    }
                    made.push(dir.clone());
                }
                if *c == Controller::Cpuset {
                    cgroup::inherit_cpuset(dir)?;
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            for dir in &made {
                let _ = cgroup::remove_tree(dir);
            }
            for dir in job.shared_roots() {
                let _ = fs::remove_dir(dir);
            }
            return Err(e);
        }
        job.finish_create(&b, None)
    }

    /// The common end of a creation: security, limits, kill-on-close; on any
    /// failure the job's directories are removed again.
    fn finish_create(mut self, b: &JobBuilder, waiting: Option<guardian::Waiting>) -> Result<Job> {
        let made = (|| -> Result<()> {
            if let Some(mode) = b.mode {
                self.secure(mode)?;
            }
            self.set_limits(&b.limits)?;
            self.arm_guardian(waiting, b.kill_on_close)
        })();
        if let Err(e) = made {
            let _ = self.remove_dirs();
            self.stop_scope();
            return Err(e);
        }
        Ok(self)
    }

    /// Stops this job's systemd scope, if it has one (systemd kills what is
    /// left in it, the guardian included, and removes its cgroup).
    fn stop_scope(&self) {
        // A nested job shares its top-level job's scope.
        if self.name.contains('/') {
            return;
        }
        if let Some(unit) = &self.scope {
            let _ = systemd::with_manager(|m| m.stop(unit));
        }
    }

    /// The job's security descriptor, from permission bits: the owner keeps
    /// every right; read and search bits for others let them see the job
    /// (query); write bits for others let them assign, terminate and freeze
    /// (the membership and kill files), never change its limits or its
    /// metadata, or make jobs inside it: the directories themselves stay
    /// writable by the owner only.
    fn secure(&self, mode: u32) -> Result<()> {
        let dir_mode = 0o700 | (mode & 0o055);
        if let Some(dir) = &self.pg {
            // Job state outside cgroups is trusted only while it is private.
            if mode & 0o077 != 0 {
                return Err(Error::InvalidInput {
                    what: "job mode",
                    reason: format!(
                        "{mode:o} shares the job with other users, which needs cgroups (see `taskloom job caps`)"
                    ),
                });
            }
            return fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::os("chmod job", e));
        }
        for dir in self.dirs() {
            fs::set_permissions(dir, fs::Permissions::from_mode(dir_mode))
                .map_err(|e| Error::os("chmod job", e))?;
            share_files(dir, mode)?;
            for n in leaf_numbers(dir).collect::<Vec<_>>() {
                share_files(&dir.join(format!("@{n}")), mode)?;
            }
        }
        Ok(())
    }

    /// The systemd backend's `CreateJobObject` for a top-level job: a
    /// transient scope delegated to us, holding the job's guardian, with the
    /// job below it (see `systemd.rs` for the layout and the lifetime).
    fn create_scoped(name: String, b: JobBuilder) -> Result<Job> {
        let unit = systemd::unit_name(&name);
        // The guardian first: a scope starts with a process in it.
        let waiting = guardian::spawn()?;
        systemd::with_manager(|mgr| {
            mgr.start_scope(&unit, waiting.pid as u32, &format!("taskloom job {name}"))
        })?;
        let made = (|| -> Result<Job> {
            let scope = systemd::with_manager(|mgr| mgr.unit_dir(&unit))?;
            let scope = scope.ok_or_else(|| Error::Systemd {
                what: format!("start the scope {unit}"),
                reason: "it has no cgroup".into(),
            })?;
            // No process may stay in a cgroup that hands controllers down:
            // the guardian moves to a leaf of its own.
            let keeper = scope.join("@keeper");
            fs::create_dir(&keeper)
                .map_err(|e| Error::os("create the scope's guardian cgroup", e))?;
            cgroup::write(&keeper.join("cgroup.procs"), &waiting.pid.to_string())?;
            let v2 = scope.join(&name);
            fs::create_dir(&v2).map_err(|e| Error::os("create job cgroup", e))?;
            for dir in [&scope, &v2] {
                enable_controllers(dir);
            }
            fs::create_dir(v2.join("@0")).map_err(|e| Error::os("create job leaf cgroup", e))?;
            Ok(Job {
                name: name.clone(),
                v2: Some(v2),
                v1: Vec::new(),
                limits: JobLimits::default(),
                holder: None,
                pg: None,
                spawned: Spawned::default(),
                leaf_hint: UNKNOWN_LEAF.into(),
                scope: Some(unit.clone()),
                kill_code: KillCode::default(),
            })
        })();
        match made {
            Ok(job) => job.finish_create(&b, Some(waiting)),
            Err(e) => {
                // systemd kills the guardian and removes what was made.
                let _ = systemd::with_manager(|mgr| mgr.stop(&unit));
                Err(e)
            }
        }
    }

    /// The process-group backend's `CreateJobObject`.
    fn create_degraded(parent: Option<&Job>, b: JobBuilder) -> Result<Job> {
        if parent.is_some() {
            return Err(Error::JobsUnavailable(format!(
                "nested jobs need cgroups, and none is writable here ({})",
                cgroup::roots().problems.join("; ")
            )));
        }
        let name = b.leaf_name()?;
        let dir = pgroup::create_state(&name)?;
        let job = Job {
            name,
            v2: None,
            v1: Vec::new(),
            limits: JobLimits::default(),
            holder: None,
            pg: Some(dir.clone()),
            spawned: Spawned::default(),
            leaf_hint: UNKNOWN_LEAF.into(),
            scope: None,
            kill_code: KillCode::default(),
        };
        job.finish_create(&b, None)
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
        if degraded() {
            let dir = pgroup::state_root().join(name);
            if !dir.is_dir() {
                // Not one of this user's: perhaps a cgroup job another user
                // shared (this process may not make jobs, but may see them).
                if !pgroup::forced() && cgroup::visible_roots().usable() {
                    return Job::open_in(name, cgroup::visible_roots());
                }
                return Err(Error::NoSuchJob(name.to_owned()));
            }
            pgroup::check_private(&pgroup::state_root())?;
            pgroup::check_private(&dir)?;
            if let Err(e) = rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK) {
                return Err(Error::PermissionDenied {
                    what: format!("open job {name}"),
                    source: e.into(),
                });
            }
            let limits = fs::read(dir.join("limits.json"))
                .ok()
                .and_then(|b| limits_from_json(&b))
                .unwrap_or_default();
            return Ok(Job {
                name: name.to_owned(),
                v2: None,
                v1: Vec::new(),
                limits,
                holder: None,
                pg: Some(dir),
                spawned: Spawned::default(),
                leaf_hint: UNKNOWN_LEAF.into(),
                scope: None,
                kill_code: KillCode::default(),
            });
        }
        if backend() == Backend::Systemd {
            return Job::open_scoped(name);
        }
        Job::open_in(name, cgroup::roots())
    }

    /// `OpenJobObject` on the systemd backend: the top-level job's scope
    /// says where the job is.
    fn open_scoped(name: &str) -> Result<Job> {
        let top = name.split('/').next().unwrap_or(name);
        let unit = systemd::unit_name(top);
        let Some(scope) = systemd::with_manager(|mgr| mgr.unit_dir(&unit))? else {
            return Err(Error::NoSuchJob(name.to_owned()));
        };
        let roots = cgroup::Roots {
            v2: Some(scope),
            v2_controllers: Vec::new(),
            v2_enable_in: None,
            v1: Vec::new(),
            problems: Vec::new(),
        };
        let mut job = Job::open_in(name, &roots)?;
        job.scope = Some(unit);
        Ok(job)
    }

    /// `OpenJobObject` of a cgroup job below `roots`.
    fn open_in(name: &str, roots: &cgroup::Roots) -> Result<Job> {
        let v2 = roots.v2.as_ref().map(|r| r.join(name));
        let v1: Vec<(Controller, PathBuf)> =
            roots.v1.iter().map(|(c, r)| (*c, r.join(name))).collect();
        let primary = v2.clone().or_else(|| v1.first().map(|(_, p)| p.clone()));
        let Some(primary) = primary else {
            return Err(Error::NoSuchJob(name.to_owned()));
        };
        // A job this user may not see is "permission denied", not "no such
        // job": the name exists, the caller is not let in.
        match fs::metadata(&primary) {
            Ok(m) if m.is_dir() => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(Error::PermissionDenied {
                    what: format!("open job {name}"),
                    source: e,
                });
            }
            _ => return Err(Error::NoSuchJob(name.to_owned())),
        }
        // Opening asks to query (read and search the job); what else the
        // handle may do (assign, terminate, set limits) the kernel checks
        // when it is done, against the job's mode.
        if let Err(e) = rustix::fs::access(
            &primary,
            rustix::fs::Access::READ_OK | rustix::fs::Access::EXEC_OK,
        ) {
            return Err(Error::PermissionDenied {
                what: format!("open job {name}"),
                source: e.into(),
            });
        }
        let limits = read_limits(&primary).unwrap_or_default();
        Ok(Job {
            name: name.to_owned(),
            v2,
            v1: v1.into_iter().filter(|(_, d)| d.is_dir()).collect(),
            limits,
            holder: None,
            pg: None,
            spawned: Spawned::default(),
            leaf_hint: UNKNOWN_LEAF.into(),
            scope: None,
            kill_code: KillCode::default(),
        })
    }

    /// Every job below this process's job root, by name (nested ones as `a/b`).
    pub fn list() -> Result<Vec<String>> {
        if degraded() {
            return Ok(pgroup::list());
        }
        let roots = cgroup::roots();
        let mut out = Vec::new();
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            let mut names: Vec<String> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('@'))
                .collect();
            names.sort();
            for n in names {
                let full = if prefix.is_empty() {
                    n.clone()
                } else {
                    format!("{prefix}/{n}")
                };
                out.push(full.clone());
                walk(&dir.join(&n), &full, out);
            }
        }
        if backend() == Backend::Systemd {
            // Each top-level job is a scope of its own.
            let scopes = systemd::with_manager(|mgr| {
                let mut found = Vec::new();
                for top in mgr.jobs()? {
                    if let Some(scope) = mgr.unit_dir(&systemd::unit_name(&top))? {
                        found.push((top, scope));
                    }
                }
                Ok(found)
            })?;
            for (top, scope) in scopes {
                out.push(top.clone());
                walk(&scope.join(&top), &top, &mut out);
            }
            return Ok(out);
        }
        let Some(root) = roots
            .v2
            .clone()
            .or_else(|| roots.v1.first().map(|(_, p)| p.clone()))
        else {
            return Ok(Vec::new());
        };
        walk(&root, "", &mut out);
        Ok(out)
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
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

    fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.v2.iter().chain(self.v1.iter().map(|(_, d)| d))
    }

    fn v1_dir(&self, c: Controller) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(x, _)| *x == c)
            .map(|(_, d)| d.as_path())
    }

    /// The directory holding limits for controller `c` (v1 dir, or the v2 job dir on pure v2).
    fn limit_dir(&self, c: Controller) -> Option<&Path> {
        self.v1_dir(c).or_else(|| {
            let on_v2 = self.v2_controllers().iter().any(|n| n == c.name());
            if on_v2 { self.v2.as_deref() } else { None }
        })
    }

    /// The cgroup2 controllers this job has (its `cgroup.controllers`: what
    /// its parent hands down, as the root or the job's scope was delegated).
    fn v2_controllers(&self) -> Vec<String> {
        self.v2
            .as_ref()
            .and_then(|d| cgroup::read(&d.join("cgroup.controllers")).ok())
            .map(|t| t.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// The current v2 leaf (`@N` with the highest N).
    fn leaf(&self) -> Option<PathBuf> {
        let v2 = self.v2.as_ref()?;
        Some(v2.join(format!("@{}", self.leaf_number()?)))
    }

    /// The highest `N` of the v2 leaves `@N`, by listing the job directory.
    fn leaf_number(&self) -> Option<u32> {
        leaf_numbers(self.v2.as_ref()?).max()
    }

    /// The current v2 leaf, opened: `@N` by the remembered number first (one
    /// `open`), listing the job directory only when that fails.
    fn open_leaf(&self) -> Result<Option<(PathBuf, fs::File)>> {
        use std::sync::atomic::Ordering;
        let Some(v2) = &self.v2 else {
            return Ok(None);
        };
        let hint = self.leaf_hint.load(Ordering::Relaxed);
        if hint != UNKNOWN_LEAF {
            let leaf = v2.join(format!("@{hint}"));
            if let Ok(f) = fs::File::open(&leaf) {
                return Ok(Some((leaf, f)));
            }
        }
        let Some(n) = self.leaf_number() else {
            return Ok(None);
        };
        let leaf = v2.join(format!("@{n}"));
        let f = fs::File::open(&leaf).map_err(|e| Error::os("open job cgroup", e))?;
        self.leaf_hint.store(n, Ordering::Relaxed);
        Ok(Some((leaf, f)))
    }

    /// `SetInformationJobObject`: applies limits, to current members too.
    pub fn set_limits(&mut self, limits: &JobLimits) -> Result<()> {
        check_limits(limits)?;
        if let Some(dir) = self.pg.clone() {
            let cgroup_only = [
                (limits.active_processes.is_some(), "an active process limit"),
                (limits.job_memory.is_some(), "a job memory limit"),
                (limits.affinity.is_some(), "a job affinity limit"),
                (limits.cpu_rate_percent.is_some(), "a CPU rate limit"),
            ];
            if let Some((_, what)) = cgroup_only.iter().find(|(set, _)| *set) {
                return Err(Error::InvalidInput {
                    what: "job limit",
                    reason: format!(
                        "{what} needs cgroups, and none is writable here (see `taskloom job caps`)"
                    ),
                });
            }
            self.limits = limits.clone();
            fs::write(dir.join("limits.json"), limits_to_json(limits))
                .map_err(|e| Error::os("write job state", e))?;
            return self.apply_to_members();
        }
        let unavailable = |feature: &str, c: Controller| Error::InvalidInput {
            what: "job limit",
            reason: format!(
                "{feature} needs the {} cgroup controller, which is not available here (see `taskloom job caps`)",
                c.name()
            ),
        };
        if let Some(n) = limits.active_processes {
            let dir = self
                .limit_dir(Controller::Pids)
                .ok_or_else(|| unavailable("active process limit", Controller::Pids))?;
            cgroup::write(&dir.join("pids.max"), &n.to_string())?;
        } else if let Some(dir) = self.limit_dir(Controller::Pids) {
            cgroup::write(&dir.join("pids.max"), "max")?;
        }
        if let Some(dir) = self.limit_dir(Controller::Memory) {
            let v1 = self.v1_dir(Controller::Memory).is_some();
            let file = if v1 {
                "memory.limit_in_bytes"
            } else {
                "memory.max"
            };
            let value = match limits.job_memory {
                Some(bytes) => bytes.to_string(),
                None if v1 => "-1".into(),
                None => "max".into(),
            };
            cgroup::write(&dir.join(file), &value)?;
            if v1 {
                // Keep the OOM killer on, confined to the group.
                let _ = cgroup::write(&dir.join("memory.oom_control"), "0");
            }
        } else if limits.job_memory.is_some() {
            return Err(unavailable("job memory limit", Controller::Memory));
        }
        if let Some(dir) = self.limit_dir(Controller::Cpuset) {
            let parent = dir.parent().unwrap_or(dir);
            let cpus = match limits.affinity {
                Some(set) => {
                    // Say which CPUs are out of reach, rather than the kernel's ERANGE.
                    let allowed = [
                        "cpuset.cpus.effective",
                        "cpuset.effective_cpus",
                        "cpuset.cpus",
                    ]
                    .iter()
                    .find_map(|f| cgroup::read(&parent.join(f)).ok())
                    .and_then(|t| CpuSet::parse_list(t.trim()).ok());
                    if let Some(allowed) = allowed {
                        let mut outside = CpuSet::new();
                        for cpu in set.iter().filter(|&c| !allowed.contains(c)) {
                            outside.insert(cpu);
                        }
                        if !outside.is_empty() {
                            return Err(Error::InvalidCpuList {
                                input: set.to_string(),
                                reason: format!(
                                    "{} not available to the job (allowed here: {allowed})",
                                    if outside.len() == 1 {
                                        format!("CPU {outside} is")
                                    } else {
                                        format!("CPUs {outside} are")
                                    }
                                ),
                            });
                        }
                    }
                    set.to_string()
                }
                None => cgroup::read(&parent.join("cpuset.cpus"))?,
            };
            cgroup::write(&dir.join("cpuset.cpus"), &cpus)?;
        } else if limits.affinity.is_some() {
            return Err(unavailable("affinity limit", Controller::Cpuset));
        }
        if let Some(dir) = self.limit_dir(Controller::Cpu) {
            if self.v1_dir(Controller::Cpu).is_some() {
                let period = 100_000u64;
                let quota = limits
                    .cpu_rate_percent
                    .map(|p| (p as u64 * period / 100).max(1000) as i64)
                    .unwrap_or(-1);
                cgroup::write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
                cgroup::write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
            } else {
                let value = match limits.cpu_rate_percent {
                    Some(p) => format!("{} 100000", (p as u64 * 1000).max(1000)),
                    None => "max 100000".into(),
                };
                cgroup::write(&dir.join("cpu.max"), &value)?;
            }
        } else if limits.cpu_rate_percent.is_some() {
            return Err(unavailable("CPU rate limit", Controller::Cpu));
        }
        if limits.cpu_rate_percent == Some(0) {
            return Err(Error::InvalidInput {
                what: "CPU rate",
                reason: "must be above 0%".into(),
            });
        }
        let before = self.active_controllers();
        self.limits = limits.clone();
        if let Some(primary) = self.dirs().next() {
            let json = limits_to_json(&self.limits);
            let path =
                CString::new(primary.as_os_str().as_bytes()).map_err(|_| Error::InvalidInput {
                    what: "path",
                    reason: "NUL".into(),
                })?;
            let _ = rustix::fs::setxattr(
                path.as_c_str(),
                LIMITS_XATTR,
                json.as_bytes(),
                rustix::fs::XattrFlags::empty(),
            );
        }
        for c in self.active_controllers() {
            if !before.contains(&c) {
                self.join_v1_controller(c)?;
            }
        }
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
                    self.name
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
                .map_err(|e| Error::os("prlimit(RLIMIT_AS)", e.into()))?;
        }
        if let Some(t) = self.limits.process_time {
            let secs = process_time_secs(t);
            let lim = rustix::process::Rlimit {
                current: Some(secs),
                maximum: Some(secs),
            };
            rustix::process::prlimit(Some(rpid), rustix::process::Resource::Cpu, lim)
                .map_err(|e| Error::os("prlimit(RLIMIT_CPU)", e.into()))?;
        }
        if let Some(class) = self.limits.priority {
            rustix::process::setpriority_process(Some(rpid), class.nice())
                .map_err(|e| Error::os("setpriority", e.into()))?;
        }
        Ok(())
    }

    /// What the guardian does when the last handle is gone.
    fn guardian_plan(&self) -> guardian::Plan {
        if let Some(dir) = &self.pg {
            return guardian::Plan::for_process_group(dir);
        }
        let v1_dirs: Vec<PathBuf> = self.v1.iter().map(|(_, d)| d.clone()).collect();
        let remove: Vec<PathBuf> = self.dirs().cloned().collect();
        guardian::Plan::new(
            self.v2.as_ref(),
            self.v1_dir(Controller::Freezer).map(Path::to_owned),
            &v1_dirs,
            &remove,
            &self.shared_roots(),
        )
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
        let plan = self.guardian_plan();
        self.holder = match waiting {
            Some(w) => w.arm(&plan, kill_on_close)?,
            None if kill_on_close => Some(guardian::start(&plan)?),
            None => None,
        };
        Ok(())
    }

    /// The kill-on-close holder descriptor, to pass to a child that should keep the job alive.
    pub fn holder_fd(&self) -> Option<BorrowedFd<'_>> {
        self.holder.as_ref().map(|h| h.as_fd())
    }

    /// `DuplicateHandle`: another handle to the same job (another kill-on-close holder).
    pub fn duplicate(&self) -> Result<Job> {
        let holder = match &self.holder {
            Some(h) => Some(h.try_clone().map_err(|e| Error::os("dup", e))?),
            None => None,
        };
        Ok(Job {
            name: self.name.clone(),
            v2: self.v2.clone(),
            v1: self.v1.clone(),
            limits: self.limits.clone(),
            holder,
            pg: self.pg.clone(),
            spawned: self.spawned.clone(),
            leaf_hint: UNKNOWN_LEAF.into(),
            scope: self.scope.clone(),
            kill_code: self.kill_code.clone(),
        })
    }

    /// Where a new process must be placed to join this job.
    fn placement(&self) -> Result<CgroupPlacement> {
        let mut p = CgroupPlacement::default();
        if let Some((leaf, dir)) = self.open_leaf()? {
            p.v2_dir = Some(dir.into());
            p.v2_procs = Some(leaf.join("cgroup.procs"));
        }
        let active = self.active_controllers();
        p.procs_files = self
            .v1
            .iter()
            .filter(|(c, _)| active.contains(c))
            .map(|(_, d)| d.join("cgroup.procs"))
            .collect();
        Ok(p)
    }

    /// The v1 controllers this job's processes must join: those its own limits
    /// or an enclosing job's limits need (every one on a machine without
    /// cgroup2). Joining a v1 cgroup costs a migration in the child, so a job
    /// without limits places processes on cgroup2 only.
    fn active_controllers(&self) -> Vec<Controller> {
        if self.v2.is_none() {
            return self.v1.iter().map(|(c, _)| *c).collect();
        }
        let mut active = needed_controllers(&self.limits);
        let parts: Vec<&str> = self.name.split('/').collect();
        if parts.len() > 1
            && let Some(v2_root) = self
                .v2
                .as_ref()
                .and_then(|d| d.ancestors().nth(parts.len()))
        {
            for i in 1..parts.len() {
                if let Some(l) = read_limits(&v2_root.join(parts[..i].join("/"))) {
                    active.extend(needed_controllers(&l));
                }
            }
        }
        active.sort();
        active.dedup();
        active
    }

    /// Moves every member of this job's subtree into controller `c`'s v1
    /// directory of the job it belongs to (twice, to catch racing forks).
    fn join_v1_controller(&self, c: Controller) -> Result<()> {
        let Some(root) = cgroup::roots().v1_root(c) else {
            return Ok(());
        };
        for _ in 0..2 {
            for pid in self.pids()? {
                let Ok(Some(name)) = job_of(pid) else {
                    continue;
                };
                let _ = cgroup::write(&root.join(&name).join("cgroup.procs"), &pid.to_string());
            }
        }
        Ok(())
    }

    /// `CreateProcess` straight into the job: the child is a member before its
    /// first instruction, with the job's per-process limits.
    pub fn spawn(&self, mut builder: ProcessBuilder) -> Result<Process> {
        let mut lead_group = false;
        if let Some(dir) = &self.pg {
            let pgid = pgroup::pgid(dir);
            lead_group = pgid <= 0 || pgroup::members(pgid).is_empty();
            builder = builder.process_group(if lead_group {
                crate::process::ProcessGroup::NewGroup
            } else {
                crate::process::ProcessGroup::Join(pgid)
            });
        } else if let Some((unit, scope)) = self.outside_scope() {
            return self.spawn_attached(builder, &unit, &scope);
        } else {
            builder = builder.cgroup_placement(self.placement()?);
        }
        let mut child = self.with_process_limits(builder).spawn()?;
        if lead_group && let Some(dir) = &self.pg {
            pgroup::set_pgid(dir, child.pid())?;
        }
        self.remember_spawn(child.pid());
        self.report_kills(&mut child);
        Ok(child)
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
        let primary = self
            .primary_dir()
            .or(self.pg.as_deref())
            .map(Path::to_owned);
        child.report_kills_as(move || {
            code.get().or_else(|| {
                let mut buf = [0u8; 16];
                let n = rustix::fs::getxattr(primary.as_ref()?, EXIT_CODE_XATTR, &mut buf).ok()?;
                std::str::from_utf8(&buf[..n]).ok()?.parse().ok()
            })
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

    /// The job's scope unit and directory when this process is outside it:
    /// then only the manager may move processes in (a user's migration needs
    /// write access to the cgroups above both ends, which are systemd's).
    fn outside_scope(&self) -> Option<(String, PathBuf)> {
        let unit = self.scope.as_ref()?;
        let scope = self
            .v2
            .as_ref()?
            .ancestors()
            .find(|a| a.file_name().is_some_and(|n| n == unit.as_str()))?
            .to_owned();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let inside = cgroup::placement_of(&own)
            .iter()
            .any(|(h, _, dir)| h.v2 && dir.starts_with(&scope));
        (!inside).then(|| (unit.clone(), scope))
    }

    /// `CreateProcess` into a job of a systemd scope, from outside it: the
    /// child starts suspended (stopped after `execve`, before its first
    /// instruction), the manager moves it into the job's leaf, and only
    /// then it runs (unless the caller asked for it suspended).
    fn spawn_attached(&self, builder: ProcessBuilder, unit: &str, scope: &Path) -> Result<Process> {
        let resume = !builder.is_suspended();
        let builder = self.with_process_limits(builder).suspended(true);
        let leaf = match self.open_leaf()? {
            Some((leaf, _)) => leaf,
            None => return Err(Error::NoSuchJob(self.name.clone())),
        };
        let mut child = builder.spawn()?;
        if let Err(e) = attach_to_leaf(unit, scope, &leaf, child.pid()) {
            let _ = child.terminate();
            let _ = child.wait();
            return Err(e);
        }
        if resume {
            child.resume()?;
        }
        self.remember_spawn(child.pid());
        self.report_kills(&mut child);
        Ok(child)
    }

    /// `AssignProcessToJobObject`: moves the process (its threads and future
    /// children follow) into the job.
    ///
    /// As on Windows, a process never leaves a job: one that is in job P
    /// may be assigned to P itself or a job nested in P (it stays in P); to
    /// a job outside P's subtree the call fails with a permission error and
    /// the process stays where it was. A process already in this job (or a
    /// job nested in it) stays where it is.
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
            crate::inspect::parse::parse_stat(&stat).map_err(|_| Error::NoSuchProcess { pid })?;
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
        if let Some(dir) = &self.pg {
            let pgid = pgroup::pgid(dir);
            let target = if pgid > 0 && !pgroup::members(pgid).is_empty() {
                pgid
            } else {
                pid
            };
            let (p, t) = (
                rustix::process::Pid::from_raw(pid),
                rustix::process::Pid::from_raw(target),
            );
            if let Err(e) = rustix::process::setpgid(p, t) {
                let e = std::io::Error::from(e);
                return Err(match e.raw_os_error() {
                    Some(libc::ESRCH)
                        if !std::path::Path::new(&format!("/proc/{pid}")).exists() =>
                    {
                        Error::NoSuchProcess { pid }
                    }
                    _ => Error::InvalidInput {
                        what: "assign",
                        reason: format!(
                            "without cgroups a job is a process group, and only a child of this process that has not yet called execve can join one ({e}); spawn it into the job instead"
                        ),
                    },
                });
            }
            if target == pid {
                pgroup::set_pgid(dir, pid)?;
            }
            return self.apply_process_limits(pid);
        }
        if !self.may_assign(pid)? {
            // Already in this job (or one nested in it).
            return self.apply_process_limits(pid);
        }
        let text = pid.to_string();
        let leaf = match self.leaf() {
            Some(leaf) => Some(leaf),
            None => self.v2.as_ref().map(|v2| v2.join("@0")),
        };
        match (&leaf, self.outside_scope()) {
            // From outside the job's systemd scope only the manager may move it in.
            (Some(leaf), Some((unit, scope))) => attach_to_leaf(&unit, &scope, leaf, pid)?,
            (Some(leaf), None) => {
                cgroup::write(&leaf.join("cgroup.procs"), &text).map_err(|e| no_such(e, pid))?;
            }
            (None, _) => {}
        }
        let active = self.active_controllers();
        for (_, dir) in self.v1.iter().filter(|(c, _)| active.contains(c)) {
            cgroup::write(&dir.join("cgroup.procs"), &text).map_err(|e| no_such(e, pid))?;
        }
        if !alive() {
            // It ended during the write: a newcomer may have its number now.
            self.evict(pid);
            return Err(Error::NoSuchProcess { pid });
        }
        self.apply_process_limits(pid)
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
        let process = Process::open(pid)?;
        self.assign(&process)
    }

    /// Whether assigning `pid` moves it: `false` when it is in this job
    /// already (or a job nested in it), `true` when it is in no job or in a
    /// job this one is nested in, and a permission error when it is in a job
    /// this one is not nested in (it would leave that job).
    fn may_assign(&self, pid: i32) -> Result<bool> {
        let text = fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map_err(|_| Error::NoSuchProcess { pid })?;
        let mine = self
            .primary_dir()
            .ok_or_else(|| Error::NoSuchJob(self.name.clone()))?;
        let Some((_, Some(theirs))) = current_job_dir(&text, Some(mine)) else {
            return Ok(true);
        };
        if theirs.starts_with(mine) {
            return Ok(false);
        }
        if mine.starts_with(&theirs) {
            return Ok(true);
        }
        let their_name = job_name_in(&text).unwrap_or_else(|| theirs.display().to_string());
        Err(Error::PermissionDenied {
            what: format!(
                "assign process {pid} to job {}: it is in job {their_name}, which job {} is not nested in, and a process never leaves its job (make the job inside {their_name} instead)",
                self.name, self.name
            ),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        })
    }

    /// After a write that may have moved a newcomer that took `pid`'s number:
    /// moves whatever process has that number in this job out again, into
    /// taskloom's own `@breakaway` cgroup beside the jobs (never into a cgroup
    /// taskloom did not make).
    fn evict(&self, pid: i32) {
        let Ok(members) = self.pids() else { return };
        if !members.contains(&pid) {
            return;
        }
        if let Some(root) = &cgroup::roots().v2 {
            let out = root.join("@breakaway");
            let _ = cgroup::ensure_dir(&out);
            let _ = cgroup::write(&out.join("cgroup.procs"), &pid.to_string());
        }
    }

    /// The job's directory in the hierarchy that holds membership (cgroup2, else the first v1).
    fn primary_dir(&self) -> Option<&Path> {
        self.v2
            .as_deref()
            .or_else(|| self.v1.first().map(|(_, d)| d.as_path()))
    }

    /// The pids of every process in the job (nested jobs included).
    pub fn pids(&self) -> Result<Vec<i32>> {
        if let Some(dir) = &self.pg {
            if !dir.is_dir() {
                return Err(Error::NoSuchJob(self.name.clone()));
            }
            return Ok(pgroup::members(pgroup::pgid(dir)));
        }
        let mut pids = Vec::new();
        let dir = self
            .v2
            .as_ref()
            .or_else(|| self.v1.first().map(|(_, d)| d))
            .ok_or_else(|| Error::NoSuchJob(self.name.clone()))?;
        if !dir.is_dir() {
            return Err(Error::NoSuchJob(self.name.clone()));
        }
        cgroup::procs_recursive(dir, &mut pids);
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// `IsProcessInJob(process, job)`.
    pub fn contains(&self, pid: i32) -> Result<bool> {
        Ok(self.pids()?.contains(&pid))
    }

    /// `QueryInformationJobObject`: accounting and the limits in force.
    pub fn info(&self) -> Result<JobInfo> {
        if let Some(dir) = &self.pg {
            if !dir.is_dir() {
                return Err(Error::NoSuchJob(self.name.clone()));
            }
            let live = pgroup::member_rows(pgroup::pgid(dir));
            let pids: Vec<i32> = live.iter().map(|e| e.pid).collect();
            return Ok(JobInfo {
                name: self.name.clone(),
                active_processes: pids.len(),
                pids,
                peak_processes: None,
                user_time: live.iter().map(|e| e.user_time).sum(),
                kernel_time: live.iter().map(|e| e.kernel_time).sum(),
                memory_current: Some(live.iter().map(|e| e.rss).sum()),
                memory_peak: None,
                oom_kills: None,
                process_limit_hits: None,
                frozen: dir.join("frozen").exists(),
                limits: self.limits.clone(),
                kill_on_close: self.holder.is_some(),
            });
        }
        let pids = self.pids()?;
        let (mut user, mut kernel) = (Duration::ZERO, Duration::ZERO);
        if let Some(v2) = &self.v2 {
            let stat = v2.join("cpu.stat");
            user = Duration::from_micros(cgroup::keyed(&stat, "user_usec").unwrap_or(0));
            kernel = Duration::from_micros(cgroup::keyed(&stat, "system_usec").unwrap_or(0));
        } else if let Some(dir) = self.v1_dir(Controller::Cpuacct) {
            let tick = crate::process::clock_ticks_per_second();
            let stat = dir.join("cpuacct.stat");
            user = Duration::from_millis(cgroup::keyed(&stat, "user").unwrap_or(0) * 1000 / tick);
            kernel =
                Duration::from_millis(cgroup::keyed(&stat, "system").unwrap_or(0) * 1000 / tick);
        }
        let active = self.active_controllers();
        let used = |c: Controller| self.v1_dir(c).is_none() || active.contains(&c);
        let mem = self
            .limit_dir(Controller::Memory)
            .filter(|_| used(Controller::Memory));
        let v1mem = self.v1_dir(Controller::Memory).is_some();
        let num = |p: PathBuf| cgroup::read(&p).ok().and_then(|s| s.parse::<u64>().ok());
        let (memory_current, memory_peak, oom_kills) = match mem {
            Some(d) if v1mem => (
                num(d.join("memory.usage_in_bytes")),
                num(d.join("memory.max_usage_in_bytes")),
                cgroup::keyed(&d.join("memory.oom_control"), "oom_kill"),
            ),
            Some(d) => (
                num(d.join("memory.current")),
                num(d.join("memory.peak")),
                cgroup::keyed(&d.join("memory.events"), "oom_kill"),
            ),
            None => (None, None, None),
        };
        let pids_dir = self
            .limit_dir(Controller::Pids)
            .filter(|_| used(Controller::Pids));
        let frozen = match (&self.v2, self.v1_dir(Controller::Freezer)) {
            (Some(v2), _) => cgroup::keyed(&v2.join("cgroup.events"), "frozen") == Some(1),
            (None, Some(f)) => cgroup::read(&f.join("freezer.state")).is_ok_and(|s| s == "FROZEN"),
            _ => false,
        };
        Ok(JobInfo {
            name: self.name.clone(),
            active_processes: pids.len(),
            pids,
            peak_processes: pids_dir.and_then(|d| num(d.join("pids.peak"))),
            user_time: user,
            kernel_time: kernel,
            memory_current,
            memory_peak,
            oom_kills,
            process_limit_hits: pids_dir.and_then(cgroup::pids_limit_hits),
            frozen,
            limits: self.limits.clone(),
            kill_on_close: self.holder.is_some(),
        })
    }

    /// `TerminateJobObject(job, code)`: kills every process of the job (and
    /// its nested jobs) and returns once none is left, as [`Job::terminate`];
    /// the members' handles then report exit code `code` instead of SIGKILL:
    /// those this handle (or a duplicate) spawned, and, while the job exists,
    /// those spawned through other handles. Returns how many were killed.
    pub fn terminate_with(&self, code: i32) -> Result<usize> {
        self.kill_code.set(Some(code));
        if let Some(primary) = self.primary_dir().or(self.pg.as_deref()) {
            let _ = rustix::fs::setxattr(
                primary,
                EXIT_CODE_XATTR,
                code.to_string().as_bytes(),
                rustix::fs::XattrFlags::empty(),
            );
        }
        self.kill_members()
    }

    /// `TerminateJobObject`: kills every process of the job and its nested
    /// jobs, and returns once none is left. Returns how many were killed.
    pub fn terminate(&self) -> Result<usize> {
        // Killed members report SIGKILL (no code of an earlier terminate_with).
        self.kill_code.set(None);
        if let Some(primary) = self.primary_dir().or(self.pg.as_deref()) {
            let _ = rustix::fs::removexattr(primary, EXIT_CODE_XATTR);
        }
        self.kill_members()
    }

    /// Kills every member until none is left; the job is signalled.
    pub(crate) fn kill_members(&self) -> Result<usize> {
        // The job's object is signalled from now on (`Job::wait`).
        self.mark_terminated();
        if let Some(dir) = &self.pg {
            return Ok(pgroup::kill_group(pgroup::pgid(dir)));
        }
        let before = self.pids()?.len();
        if let Some(v2) = &self.v2 {
            cgroup::write(&v2.join("cgroup.kill"), "1")?;
            self.wait_empty(Duration::from_secs(30))?;
            // Spawning into a cgroup after cgroup.kill hits a kernel bug
            // (ARCHITECTURE.md): move on to a fresh leaf created after the kill.
            self.renew_leaves(v2)?;
            self.leaf_hint
                .store(UNKNOWN_LEAF, std::sync::atomic::Ordering::Relaxed);
        } else {
            let freezer = self
                .v1_dir(Controller::Freezer)
                .map(|d| d.join("freezer.state"));
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(f) = &freezer {
                    cgroup::write(f, "FROZEN")?;
                }
                let pids = self.pids()?;
                for &pid in &pids {
                    let _ = rustix::process::kill_process(
                        rustix::process::Pid::from_raw(pid).expect("pid > 0"),
                        rustix::process::Signal::KILL,
                    );
                }
                if let Some(f) = &freezer {
                    cgroup::write(f, "THAWED")?;
                }
                if pids.is_empty() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::Cgroup {
                        op: format!("terminate job {}", self.name),
                        source: std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
                    });
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(before)
    }

    /// Records that the job was terminated, for [`Job::wait`] in any process.
    fn mark_terminated(&self) {
        if let Some(dir) = &self.pg {
            let _ = fs::write(dir.join("terminated"), "1");
        } else if let Some(primary) = self.primary_dir() {
            let _ = rustix::fs::setxattr(
                primary,
                TERMINATED_XATTR,
                b"1",
                rustix::fs::XattrFlags::empty(),
            );
        }
    }

    /// Whether the job has been terminated ([`Job::terminate`], or its job
    /// time limit), by any handle in any process.
    pub fn is_terminated(&self) -> Result<bool> {
        if let Some(dir) = &self.pg {
            if !dir.is_dir() {
                return Err(Error::NoSuchJob(self.name.clone()));
            }
            return Ok(dir.join("terminated").exists());
        }
        let primary = self
            .primary_dir()
            .ok_or_else(|| Error::NoSuchJob(self.name.clone()))?;
        let mut buf = [0u8; 8];
        match rustix::fs::getxattr(primary, TERMINATED_XATTR, &mut buf) {
            Ok(_) => Ok(true),
            Err(rustix::io::Errno::NOENT) if !primary.is_dir() => {
                Err(Error::NoSuchJob(self.name.clone()))
            }
            Err(_) => Ok(false),
        }
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

    fn renew_leaves(&self, dir: &Path) -> Result<()> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Ok(());
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(n) = name.strip_prefix('@').and_then(|n| n.parse::<u32>().ok()) {
                let next = dir.join(format!("@{}", n + 1));
                let _ = cgroup::ensure_dir(&next);
                // The new leaf is shared as the old one was.
                if let Ok(meta) = fs::metadata(e.path().join("cgroup.procs")) {
                    let _ = share_files(&next, meta.permissions().mode() & 0o022);
                }
                let _ = fs::remove_dir(e.path());
            } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                self.renew_leaves(&e.path())?;
            }
        }
        Ok(())
    }

    /// Waits until the job has no process left (cgroup2 `populated 0`, or an empty pid list).
    pub fn wait_empty(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            let empty = match &self.v2 {
                None if self.pg.is_some() => self.pids()?.is_empty(),
                Some(v2) => cgroup::keyed(&v2.join("cgroup.events"), "populated") == Some(0),
                None => self.pids()?.is_empty(),
            };
            if empty {
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
        self.set_frozen(true)
    }

    /// Thaws a frozen job.
    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        if let Some(dir) = &self.pg {
            let pgid = pgroup::pgid(dir);
            if pgid > 1 {
                // The job's process group (checked: a real group of this user's).
                if let Some(group) = rustix::process::Pid::from_raw(pgid) {
                    let sig = if frozen {
                        rustix::process::Signal::STOP
                    } else {
                        rustix::process::Signal::CONT
                    };
                    let _ = rustix::process::kill_process_group(group, sig);
                }
            }
            let flag = dir.join("frozen");
            let _ = if frozen {
                fs::write(&flag, "1")
            } else {
                fs::remove_file(&flag)
            };
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        if let Some(v2) = &self.v2 {
            cgroup::write(&v2.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
            while cgroup::keyed(&v2.join("cgroup.events"), "frozen") != Some(frozen as u64)
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_micros(200));
            }
            return Ok(());
        }
        let dir = self
            .v1_dir(Controller::Freezer)
            .ok_or_else(|| Error::InvalidInput {
                what: "freeze",
                reason: "no freezer is available here (see `taskloom job caps`)".into(),
            })?;
        let want = if frozen { "FROZEN" } else { "THAWED" };
        cgroup::write(&dir.join("freezer.state"), want)?;
        while cgroup::read(&dir.join("freezer.state"))? != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Watches the job: new and ended processes, limits hit, job empty; and
    /// enforces the job time limit while it runs.
    pub fn watch(&self, interval: Duration) -> Result<JobWatcher> {
        JobWatcher::new(self.duplicate_dirs(), interval)
    }

    fn duplicate_dirs(&self) -> Job {
        Job {
            name: self.name.clone(),
            v2: self.v2.clone(),
            v1: self.v1.clone(),
            limits: self.limits.clone(),
            holder: None,
            pg: self.pg.clone(),
            spawned: self.spawned.clone(),
            leaf_hint: UNKNOWN_LEAF.into(),
            scope: None,
            kill_code: KillCode::default(),
        }
    }

    /// Terminates the job (if it has members) and removes its cgroups.
    pub fn delete(self) -> Result<usize> {
        let killed = if self.pids()?.is_empty() {
            0
        } else {
            self.kill_members()?
        };
        self.remove_dirs()?;
        // The scope goes with its job (systemd ends the guardian).
        self.stop_scope();
        Ok(killed)
    }

    fn remove_dirs(&self) -> Result<()> {
        if let Some(dir) = &self.pg {
            return match fs::remove_dir_all(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::os("remove job state", e))
                }
                _ => {
                    pgroup::remove_empty_roots();
                    Ok(())
                }
            };
        }
        for dir in self.dirs() {
            cgroup::remove_tree(dir)?;
        }
        // The shared roots go too once no job is left in them (a busy root stays).
        for dir in self.shared_roots() {
            let _ = fs::remove_dir(dir);
        }
        Ok(())
    }

    /// For a top-level job: the `taskloom` roots it shares with other jobs
    /// (and their `@breakaway` leaves), which the last job removes; in the
    /// order to remove them.
    fn shared_roots(&self) -> Vec<PathBuf> {
        if self.name.contains('/') {
            return Vec::new();
        }
        self.dirs()
            .filter_map(|d| d.parent())
            .flat_map(|root| [root.join("@breakaway"), root.to_owned()])
            .collect()
    }

    /// How each job feature is enforced on this machine.
    pub fn capabilities() -> Vec<Capability> {
        let scoped = match backend() {
            Backend::Systemd => Some(systemd::with_manager(|m| m.delegation())),
            _ => None,
        };
        let owned;
        let roots = match &scoped {
            Some(Ok((manager_dir, controllers))) => {
                owned = cgroup::Roots {
                    v2: Some(manager_dir.join("…").join(systemd::unit_name("<job>"))),
                    v2_controllers: controllers
                        .iter()
                        .filter(|c| ["pids", "memory", "cpu", "cpuset"].contains(&c.as_str()))
                        .cloned()
                        .collect(),
                    v2_enable_in: None,
                    v1: Vec::new(),
                    problems: Vec::new(),
                };
                &owned
            }
            Some(Err(e)) => {
                owned = cgroup::Roots {
                    v2: None,
                    v2_controllers: Vec::new(),
                    v2_enable_in: None,
                    v1: Vec::new(),
                    problems: vec![format!("systemd is this machine's init, but: {e}")],
                };
                &owned
            }
            None => cgroup::roots(),
        };
        let manager = match &scoped {
            Some(_) if rustix::process::geteuid().is_root() => Some("the system manager"),
            Some(_) => Some("your systemd user manager"),
            None => None,
        };
        if degraded() {
            let why = if pgroup::forced() {
                "TASKLOOM_JOB_BACKEND=process-group".to_string()
            } else {
                format!("no cgroup is writable here: {}", roots.problems.join("; "))
            };
            let no = |feature: &'static str| Capability {
                feature,
                enforced: false,
                detail: "needs cgroups (why there are none: see membership)".into(),
            };
            return vec![
                Capability { feature: "membership", enforced: true, detail: format!("process group ({why}); double forks stay in, but a member that calls setsid or setpgid leaves the job") },
                no("active-processes"),
                no("job-memory"),
                Capability { feature: "process-memory", enforced: true, detail: "RLIMIT_AS per process".into() },
                no("affinity"),
                no("cpu-rate"),
                Capability { feature: "priority", enforced: true, detail: "nice of each member".into() },
                Capability { feature: "process-time", enforced: true, detail: "RLIMIT_CPU per process".into() },
                Capability { feature: "job-time", enforced: true, detail: "summed over live members by a watcher (time of ended members is not counted)".into() },
                Capability { feature: "terminate", enforced: true, detail: "kill(-pgid) until the group is empty; escaped members survive".into() },
                Capability { feature: "freeze", enforced: true, detail: "SIGSTOP/SIGCONT to the group (a member may handle SIGCONT)".into() },
                Capability { feature: "kill-on-close", enforced: true, detail: "guardian process kills the group when the last handle closes; survives SIGKILL of the owner".into() },
                Capability { feature: "notifications", enforced: true, detail: "member scans, polled".into() },
                no("nesting"),
            ];
        }
        let ctl = |c: Controller| -> (bool, String) {
            if let Some(r) = roots.v1_root(c) {
                (true, format!("cgroup v1 {} ({})", c.name(), r.display()))
            } else if roots.v2_controllers.iter().any(|n| n == c.name()) {
                (
                    true,
                    format!(
                        "cgroup2 {} ({})",
                        c.name(),
                        roots
                            .v2
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    ),
                )
            } else if let Some(manager) = manager {
                (
                    false,
                    format!(
                        "the {c} controller is not delegated to {manager}; an administrator can add it: `systemctl edit user@.service` with [Service] Delegate=cpu cpuset io memory pids, then log in again",
                        c = c.name()
                    ),
                )
            } else {
                (
                    false,
                    format!(
                        "the {} controller is not available to this process's cgroup",
                        c.name()
                    ),
                )
            }
        };
        let mut caps = Vec::new();
        let mut push = |feature, (enforced, detail): (bool, String)| {
            caps.push(Capability {
                feature,
                enforced,
                detail,
            })
        };
        push(
            "membership",
            match (&roots.v2, manager) {
                (Some(r), Some(manager)) => (
                    true,
                    format!(
                        "cgroup2 delegated by {manager}: a transient scope per job ({}): inherited by every fork, double-fork and setsid included",
                        r.display()
                    ),
                ),
                (Some(r), None) => (
                    true,
                    format!(
                        "cgroup2 ({}): inherited by every fork, double-fork and setsid included",
                        r.display()
                    ),
                ),
                (None, _) if !roots.v1.is_empty() => (true, "cgroup v1 hierarchies".into()),
                (None, _) => (false, roots.problems.join("; ")),
            },
        );
        push("active-processes", ctl(Controller::Pids));
        push("job-memory", ctl(Controller::Memory));
        push("process-memory", (true, "RLIMIT_AS per process".into()));
        push("affinity", ctl(Controller::Cpuset));
        push("cpu-rate", ctl(Controller::Cpu));
        push("priority", (true, "nice of each member, set at spawn/assign/set (a member with CAP_SYS_NICE can raise its own)".into()));
        push("process-time", (true, "RLIMIT_CPU per process".into()));
        push("job-time", (roots.v2.is_some() || roots.has(Controller::Cpuacct), "cgroup CPU accounting, enforced by a watcher while one runs (`Job::watch`, `taskloom run`)".into()));
        push(
            "terminate",
            match &roots.v2 {
                Some(_) => (true, "cgroup.kill (no racing fork escapes)".into()),
                None if roots.has(Controller::Freezer) => {
                    (true, "freeze, kill every member, thaw".into())
                }
                None => (
                    false,
                    "kill loop without a freezer: a process forking fast may escape".into(),
                ),
            },
        );
        push(
            "freeze",
            if roots.v2.is_some() {
                (true, "cgroup.freeze".into())
            } else {
                ctl(Controller::Freezer)
            },
        );
        push(
            "kill-on-close",
            (
                true,
                "guardian process watching the holders' pipe; survives SIGKILL of the owner".into(),
            ),
        );
        push(
            "notifications",
            (
                true,
                "cgroup.events, pids.events, memory events and member scans, polled".into(),
            ),
        );
        push(
            "root-members",
            (
                false,
                "a member that may write cgroup.procs above the job (root; on a delegated subtree, the user who owns it) can move itself out to any cgroup it may write, and can signal the guardian and the owner; a cgroup or PID namespace per job would stop that and is not used yet. Members running as any other user cannot leave".into(),
            ),
        );
        caps
    }
}

/// Where a child that breaks away from the caller's job goes.
#[derive(Debug)]
pub(crate) enum Breakaway {
    /// Into taskloom's `@breakaway` cgroups (outside every job).
    Cgroup(CgroupPlacement),
    /// Into a process group of its own (process-group backend).
    NewGroup,
}

/// `CREATE_BREAKAWAY_FROM_JOB` for the calling process: `None` when it is in
/// no job; an error when its job does not allow breakaway.
///
/// As on Windows, the child leaves only the jobs that allow breakaway, from
/// the innermost outwards, and stays in the first enclosing job that does
/// not (in that job's own leaf); only when every enclosing job allows it
/// does it leave them all, into taskloom's `@breakaway` cgroup beside them.
pub(crate) fn breakaway() -> Result<Option<Breakaway>> {
    let me = std::process::id() as i32;
    let Some(name) = job_of(me)? else {
        return Ok(None);
    };
    let text = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| Error::os("read /proc/self/cgroup", e))?;
    let placement = cgroup::placement_of(&text);
    // The membership hierarchy decides the chain: cgroup2, else the first v1 one in a job.
    let Some((h, path, _)) = placement
        .iter()
        .find(|(h, p, _)| h.v2 && !cgroup::job_chain(p).is_empty())
        .or_else(|| {
            placement
                .iter()
                .find(|(_, p, _)| !cgroup::job_chain(p).is_empty())
        })
    else {
        // Process-group backend.
        let limits = Job::open(&name)
            .map(|j| j.limits.clone())
            .unwrap_or_default();
        if !limits.breakaway_ok {
            return Err(no_breakaway(&name));
        }
        return Ok(Some(Breakaway::NewGroup));
    };
    let chain = cgroup::job_chain(path);
    let allows = |job: &Path| {
        h.dir_of(job)
            .and_then(|d| read_limits(&d))
            .is_some_and(|l| l.breakaway_ok)
    };
    if !allows(chain.last().expect("in a job")) {
        return Err(no_breakaway(&name));
    }
    // The first enclosing job (innermost outwards) that keeps its processes.
    let stay = chain.iter().rev().find(|j| !allows(j)).cloned();
    let mut p = CgroupPlacement::default();
    for (h, path, _) in &placement {
        let target = match &stay {
            // In v1 a job's members live in its own directory; in cgroup2 in its current leaf.
            Some(job) if h.v2 => {
                let Some(dir) = h.dir_of(job) else { continue };
                let n = leaf_numbers(&dir).max().unwrap_or(0);
                dir.join(format!("@{n}"))
            }
            Some(job) => {
                // Only hierarchies the caller joined (its v1 path is in a job).
                if cgroup::job_chain(path).is_empty() {
                    continue;
                }
                match h.dir_of(&cgroup::without_leaves(job)) {
                    Some(d) if d.is_dir() => d,
                    _ => continue,
                }
            }
            None => {
                // Every enclosing job allows it: beside the outermost root.
                let parts: Vec<_> = path.iter().collect();
                let Some(i) = parts
                    .iter()
                    .position(|p| p.to_str().is_some_and(cgroup::is_root_component))
                else {
                    continue;
                };
                let root: PathBuf = parts[..=i].iter().collect();
                let Some(dir) = h.dir_of(&root) else { continue };
                let dir = dir.join("@breakaway");
                cgroup::ensure_dir(&dir)
                    .map_err(|e| Error::os("create the breakaway cgroup", e))?;
                if !h.v2 && dir.join("cpuset.cpus").exists() {
                    cgroup::inherit_cpuset(&dir)?;
                }
                dir
            }
        };
        if h.v2 {
            let f =
                fs::File::open(&target).map_err(|e| Error::os("open the breakaway cgroup", e))?;
            p.v2_dir = Some(f.into());
            p.v2_procs = Some(target.join("cgroup.procs"));
        } else {
            p.procs_files.push(target.join("cgroup.procs"));
        }
    }
    Ok(Some(Breakaway::Cgroup(p)))
}

fn no_breakaway(name: &str) -> Error {
    Error::PermissionDenied {
        what: format!("break away from job {name}"),
        source: std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the job does not allow breakaway (breakaway_ok is off)",
        ),
    }
}

/// The numbers `N` of the cgroup2 leaves `@N` in a job directory.
fn leaf_numbers(dir: &Path) -> impl Iterator<Item = u32> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix('@')?
                .parse::<u32>()
                .ok()
        })
}

/// Where jobs live on this machine, for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// Directories below our own cgroup (or our delegated subtree) that we may write.
    Cgroup,
    /// A transient scope per top-level job, delegated by the systemd manager.
    Systemd,
    /// Process groups: no cgroup is ours to write.
    ProcessGroup,
}

/// The backend in use (decided once per process). `TASKLOOM_JOB_BACKEND`
/// (`cgroup`, `systemd`, `process-group`) forces one. Otherwise: a process
/// inside a job makes its jobs inside that job (cgroup); on a pure cgroup2
/// machine whose init is systemd, its manager delegates (systemd); else the
/// cgroups we may write below our own (cgroup); else process groups.
fn backend() -> Backend {
    static BACKEND: std::sync::OnceLock<Backend> = std::sync::OnceLock::new();
    *BACKEND.get_or_init(|| {
        let cgroup = || {
            if cgroup::roots().usable() {
                Backend::Cgroup
            } else {
                Backend::ProcessGroup
            }
        };
        match std::env::var("TASKLOOM_JOB_BACKEND").as_deref() {
            Ok("process-group") => return Backend::ProcessGroup,
            Ok("systemd") => return Backend::Systemd,
            Ok("cgroup") => return cgroup(),
            _ => {}
        }
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let in_job = cgroup::placement_of(&own)
            .iter()
            .any(|(h, p, _)| h.v2 && cgroup::job_context(p).is_some());
        let pure_v2 = cgroup::hierarchies().iter().all(|h| h.v2);
        if !in_job && pure_v2 && systemd::reachable() {
            Backend::Systemd
        } else {
            cgroup()
        }
    })
}

/// Whether jobs use the process-group backend (no cgroup writable, or asked for).
fn degraded() -> bool {
    backend() == Backend::ProcessGroup
}

/// Has the systemd manager move `pid` into `leaf`, a cgroup below the
/// directory `scope` of unit `unit` (a user may not migrate it there itself).
fn attach_to_leaf(unit: &str, scope: &Path, leaf: &Path, pid: i32) -> Result<()> {
    let sub = Path::new("/").join(leaf.strip_prefix(scope).unwrap_or(leaf));
    systemd::with_manager(|m| m.attach(unit, &sub.to_string_lossy(), pid as u32))
}

/// Hands every controller a cgroup has on to its children (those taskloom uses).
fn enable_controllers(dir: &Path) {
    let have = cgroup::read(&dir.join("cgroup.controllers")).unwrap_or_default();
    for c in have
        .split_whitespace()
        .filter(|c| ["pids", "memory", "cpu", "cpuset"].contains(c))
    {
        let _ = cgroup::write(&dir.join("cgroup.subtree_control"), &format!("+{c}"));
    }
}

/// The v1 controllers a job's limits need (on a hybrid machine).
fn needed_controllers(l: &JobLimits) -> Vec<Controller> {
    let mut v = Vec::new();
    if l.active_processes.is_some() {
        v.push(Controller::Pids);
    }
    if l.job_memory.is_some() {
        v.push(Controller::Memory);
    }
    if l.cpu_rate_percent.is_some() {
        v.push(Controller::Cpu);
    }
    if l.affinity.is_some() {
        v.push(Controller::Cpuset);
    }
    v
}

/// Where a process is in the hierarchy that holds `primary` (a job's
/// membership directory): its cgroup directory, and the directory of the
/// innermost job it is in (`None` outside every job). `None` when it is not
/// visible in that hierarchy.
fn current_job_dir(
    proc_cgroup: &str,
    primary: Option<&Path>,
) -> Option<(PathBuf, Option<PathBuf>)> {
    let primary = primary?;
    let (h, path, dir) = cgroup::placement_of(proc_cgroup)
        .into_iter()
        .find(|(h, _, _)| primary.starts_with(&h.mount))?;
    let job = cgroup::job_chain(&path).pop().and_then(|j| h.dir_of(&j));
    Some((dir, job))
}

fn no_such(e: Error, pid: i32) -> Error {
    match &e {
        Error::Cgroup { source, .. } if source.raw_os_error() == Some(libc::ESRCH) => {
            Error::NoSuchProcess { pid }
        }
        _ => e,
    }
}

fn read_limits(dir: &Path) -> Option<JobLimits> {
    let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::getxattr(path.as_c_str(), LIMITS_XATTR, &mut buf).ok()?;
    limits_from_json(&buf[..n])
}

fn limits_to_json(limits: &JobLimits) -> String {
    serde_json::to_string(limits).unwrap_or_default()
}

fn limits_from_json(bytes: &[u8]) -> Option<JobLimits> {
    serde_json::from_slice(bytes).ok()
}

/// `IsProcessInJob(process, NULL)`: the name of the taskloom job `pid` is in, if any.
pub fn job_of(pid: i32) -> Result<Option<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NoSuchProcess { pid },
        _ => Error::os("read /proc/<pid>/cgroup", e),
    })?;
    if let Some(name) = job_name_in(&text) {
        return Ok(Some(name));
    }
    // Jobs of the process-group backend: match the process's group.
    let stat = fs::read(format!("/proc/{pid}/stat")).unwrap_or_default();
    let pgrp = crate::inspect::parse::parse_stat(&stat)
        .map(|s| s.pgrp)
        .unwrap_or(0);
    Ok(pgroup::list()
        .into_iter()
        .find(|n| pgrp > 0 && pgroup::pgid(&pgroup::state_root().join(n)) == pgrp))
}

/// The job name in `/proc/<pid>/cgroup` text: the path after the last `taskloom` component, without the `@N` leaf.
pub fn job_name_in(proc_cgroup: &str) -> Option<String> {
    let members = layout::parse_proc_cgroup(proc_cgroup);
    let pick = members
        .iter()
        .find(|m| m.id == 0)
        .into_iter()
        .chain(members.iter());
    for m in pick {
        let parts: Vec<String> = m
            .path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if let Some(i) = parts.iter().rposition(|p| cgroup::is_root_component(p)) {
            let name: Vec<&str> = parts[i + 1..]
                .iter()
                .map(String::as_str)
                .filter(|p| !p.starts_with('@'))
                .collect();
            if !name.is_empty() {
                return Some(name.join("/"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job whose directories are plain files and folders in a temp dir:
    /// the cgroup file formats, checked without root or a cgroup mount.
    fn fixture_job(tmp: &Path, v2_controllers: &str, v1: &[Controller]) -> Job {
        let v2 = tmp.join("unified/taskloom/j");
        fs::create_dir_all(v2.join("@0")).unwrap();
        fs::write(v2.join("cgroup.controllers"), v2_controllers).unwrap();
        for f in ["cgroup.procs", "@0/cgroup.procs"] {
            fs::write(v2.join(f), "").unwrap();
        }
        let v1: Vec<(Controller, PathBuf)> = v1
            .iter()
            .map(|&c| {
                let dir = tmp.join(c.name()).join("taskloom/j");
                fs::create_dir_all(&dir).unwrap();
                fs::write(dir.join("cgroup.procs"), "").unwrap();
                if c == Controller::Cpuset {
                    fs::write(dir.parent().unwrap().join("cpuset.cpus"), "0-3").unwrap();
                    fs::write(dir.parent().unwrap().join("cpuset.cpus.effective"), "0-3").unwrap();
                }
                (c, dir)
            })
            .collect();
        Job {
            name: "j".into(),
            v2: Some(v2),
            v1,
            limits: JobLimits::default(),
            holder: None,
            pg: None,
            spawned: Spawned::default(),
            leaf_hint: UNKNOWN_LEAF.into(),
            scope: None,
            kill_code: KillCode::default(),
        }
    }

    fn limits() -> JobLimits {
        JobLimits {
            active_processes: Some(64),
            job_memory: Some(512 << 20),
            affinity: Some(CpuSet::parse_list("1-2").unwrap()),
            cpu_rate_percent: Some(150),
            ..Default::default()
        }
    }

    fn read(p: PathBuf) -> String {
        fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn limits_are_written_in_cgroup2_formats() {
        let tmp = tempfile::tempdir().unwrap();
        let mut job = fixture_job(tmp.path(), "cpuset cpu memory pids", &[]);
        let dir = job.v2.clone().unwrap();
        // A cgroup2 parent's own cpuset.cpus is empty (it uses its parent's).
        fs::write(dir.parent().unwrap().join("cpuset.cpus"), "").unwrap();
        fs::write(dir.parent().unwrap().join("cpuset.cpus.effective"), "0-3").unwrap();
        job.set_limits(&limits()).unwrap();
        assert_eq!(read(dir.join("pids.max")), "64");
        assert_eq!(read(dir.join("memory.max")), "536870912");
        assert_eq!(read(dir.join("cpu.max")), "150000 100000");
        assert_eq!(read(dir.join("cpuset.cpus")), "1-2");
        // Lifting them writes cgroup2's "max".
        job.set_limits(&JobLimits::default()).unwrap();
        assert_eq!(read(dir.join("pids.max")), "max");
        assert_eq!(read(dir.join("memory.max")), "max");
        assert_eq!(read(dir.join("cpu.max")), "max 100000");
    }

    #[test]
    fn limits_are_written_in_cgroup_v1_formats_on_a_hybrid_machine() {
        let tmp = tempfile::tempdir().unwrap();
        let v1 = [
            Controller::Pids,
            Controller::Memory,
            Controller::Cpu,
            Controller::Cpuset,
        ];
        let mut job = fixture_job(tmp.path(), "", &v1);
        job.set_limits(&limits()).unwrap();
        let dirs = job.v1.clone();
        let d = |c: Controller| dirs.iter().find(|(x, _)| *x == c).unwrap().1.clone();
        assert_eq!(read(d(Controller::Pids).join("pids.max")), "64");
        assert_eq!(
            read(d(Controller::Memory).join("memory.limit_in_bytes")),
            "536870912"
        );
        assert_eq!(read(d(Controller::Memory).join("memory.oom_control")), "0");
        assert_eq!(read(d(Controller::Cpu).join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(d(Controller::Cpu).join("cpu.cfs_quota_us")), "150000");
        assert_eq!(read(d(Controller::Cpuset).join("cpuset.cpus")), "1-2");
        job.set_limits(&JobLimits::default()).unwrap();
        assert_eq!(
            read(d(Controller::Memory).join("memory.limit_in_bytes")),
            "-1"
        );
        assert_eq!(read(d(Controller::Cpu).join("cpu.cfs_quota_us")), "-1");
    }

    #[test]
    fn a_limit_without_its_controller_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let mut job = fixture_job(tmp.path(), "pids", &[]);
        let err = job
            .set_limits(&JobLimits {
                job_memory: Some(1 << 30),
                ..Default::default()
            })
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("needs the memory cgroup controller"),
            "{err}"
        );
    }

    #[test]
    fn accounting_is_read_from_cgroup2_files() {
        let tmp = tempfile::tempdir().unwrap();
        let mut job = fixture_job(tmp.path(), "memory pids", &[]);
        job.set_limits(&JobLimits {
            active_processes: Some(10),
            job_memory: Some(1 << 30),
            ..Default::default()
        })
        .unwrap();
        let dir = job.v2.clone().unwrap();
        fs::write(dir.join("@0/cgroup.procs"), "41\n42\n").unwrap();
        fs::write(
            dir.join("cpu.stat"),
            "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\n",
        )
        .unwrap();
        fs::write(dir.join("memory.current"), "4096\n").unwrap();
        fs::write(dir.join("memory.peak"), "8192\n").unwrap();
        fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
        )
        .unwrap();
        // Before 6.13 a refused fork is counted in the leaf.
        fs::write(dir.join("pids.events"), "max 0\n").unwrap();
        fs::write(dir.join("@0/pids.events"), "max 3\n").unwrap();
        fs::write(dir.join("pids.peak"), "7\n").unwrap();
        fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let info = job.info().unwrap();
        assert_eq!(info.pids, [41, 42]);
        assert_eq!(info.user_time, Duration::from_millis(2));
        assert_eq!(info.kernel_time, Duration::from_millis(1));
        assert_eq!(info.memory_current, Some(4096));
        assert_eq!(info.memory_peak, Some(8192));
        assert_eq!(info.oom_kills, Some(1));
        assert_eq!(info.process_limit_hits, Some(3));
        assert_eq!(info.peak_processes, Some(7));
        assert!(!info.frozen);
    }

    #[test]
    fn names_that_escape_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\0b",
            ".hidden",
            "cgroup.procs",
            "cpu.shares",
            "cpu.stat",
            "memory.limit_in_bytes",
            "pids.current",
            "freezer.state",
            "io.weight",
            "tasks",
            "sp ace",
            "ü",
            "pids.max",
        ] {
            assert!(
                matches!(validate_name(bad), Err(Error::InvalidJobName { .. })),
                "{bad:?}"
            );
        }
        assert!(validate_name(&"x".repeat(129)).is_err());
        for good in [
            "build",
            "ci-42",
            "a.b_c",
            "cpu",
            "memory-heavy",
            "v1.2",
            &"x".repeat(128),
        ] {
            validate_name(good).unwrap();
        }
    }

    #[test]
    fn job_names_are_read_from_proc_cgroup() {
        let text = "4:memory:/process_api/7a/taskloom/build\n0::/taskloom/build/tests/@3\n";
        assert_eq!(job_name_in(text).as_deref(), Some("build/tests"));
        assert_eq!(job_name_in("0::/user.slice\n"), None);
        assert_eq!(job_name_in("0::/taskloom\n"), None);
    }

    #[test]
    fn limits_round_trip_through_json() {
        let limits = JobLimits {
            active_processes: Some(10),
            affinity: Some(CpuSet::parse_list("0-1").unwrap()),
            job_time: Some(Duration::from_millis(1500)),
            priority: Some(PriorityClass::Idle),
            ..Default::default()
        };
        let back = limits_from_json(limits_to_json(&limits).as_bytes()).unwrap();
        assert_eq!(back, limits);
    }
}
