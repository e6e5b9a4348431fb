//! Job backends: what a job is made of on this machine.
//!
//! [`Job`](super::Job) is the Windows-shaped front: handles and their
//! duplicates, the limits in force, kill-on-close (the guardian), the exit
//! code of a terminate, the per-process limits. Everything that depends on
//! how a job is kept is behind [`JobBackend`], and [`kind`] decides once per
//! process which backend makes and opens jobs; nothing outside this module
//! asks which one is in use.
//!
//! | backend | when | a job is | module |
//! |---------|------|----------|--------|
//! | direct | a cgroup below our own (or our delegated subtree) is writable | a directory per hierarchy; cgroup2, hybrid (cgroup2 membership, v1 controllers) and v1-only layouts differ only in which [`Format`] each controller's files take | `direct/` |
//! | scoped | pure cgroup2 and a reachable systemd manager | a transient delegated scope per top-level job (its guardian in `@keeper`), then direct directories inside it; from outside the scope the manager moves processes in | `scoped/` |
//! | group | no cgroup is writable (or forced) | a process group and a private state directory | `group/` |
//!
//! The cgroup file formats live in [`Format`] and the directories a job
//! uses are plain paths, so the direct backend is unit-tested against
//! fixture trees in a temp directory, with no root and no cgroup mount.

mod direct;
mod group;
mod scoped;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use direct::Direct;

use super::{Capability, JobLimits, guardian, layout::Controller};
use crate::error::{Error, OrLog, Result};
use crate::process::{CgroupPlacement, Placement, Process, ProcessBuilder};
use direct::cgroup;
use group::pgroup;
use scoped::systemd;

/// The operations a job's backend carries out; [`Job`](super::Job) adds
/// the handle semantics around them.
pub(crate) trait JobBackend: std::fmt::Debug + Send + Sync {
    /// Makes a job nested in this one: `name` is its full name (`a/b`),
    /// `leaf` its own. On failure nothing of it is left.
    fn create_nested(
        &self,
        name: &str,
        leaf: &str,
        contain: Option<Containment>,
    ) -> Result<Box<dyn JobBackend>>;

    /// Whether the processes this handle spawns start in a cgroup namespace
    /// that keeps them in: `Some(true)` rooted at this job, `Some(false)`
    /// at an enclosing job, `None` in none.
    fn containment(&self) -> Option<bool> {
        None
    }

    /// Whether this handle made the job with the services hidden
    /// ([`Containment::hide_services`]).
    fn hides_services(&self) -> bool {
        false
    }

    /// The job `pid` is in, by name (as [`open`] finds it), when that is a
    /// job this one is not nested in: assigning `pid` here would take it
    /// out of that job. `None` when it is in no job, in this job's chain,
    /// or this backend cannot tell (its `assign` decides then).
    fn foreign_job_of(&self, _pid: i32) -> Result<Option<String>> {
        Ok(None)
    }

    /// The cgroup2 directories of the jobs this one is in, outermost first,
    /// its own last (where process counts are kept); empty without cgroup2.
    fn chain(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    /// Where an outermost job's process count is kept: its cgroup2
    /// directory and the path this process's `/proc` shows for it. `None`
    /// for a nested job (its top job's counter counts it) or without
    /// cgroup2.
    fn counted_at(&self) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
        match self.chain().as_slice() {
            [top] => cgroup::hierarchies()
                .iter()
                .find(|h| h.v2)
                .and_then(|h| h.shown_path(top))
                .map(|shown| (top.clone(), shown)),
            _ => None,
        }
    }

    /// The job's security as [`JobBackend::secure`] takes it (permission
    /// bits), read back; `None` where this backend keeps none.
    fn mode(&self) -> Option<u32> {
        None
    }

    /// Applies a security descriptor given as permission bits (see
    /// [`JobBuilder::mode`](super::JobBuilder::mode)).
    fn secure(&self, mode: u32) -> Result<()>;

    /// Writes the job-wide limits the kernel enforces (cgroup controller
    /// files), records `limits` with the job for other handles, and moves
    /// members into controllers that `limits` need and `before` did not.
    /// A limit this backend cannot enforce is refused by name.
    fn apply_limits(&self, limits: &JobLimits, before: &JobLimits) -> Result<()>;

    /// Starts `builder`'s process as a member before its first instruction
    /// (the per-process limits are already in the builder).
    fn spawn(&self, builder: ProcessBuilder, limits: &JobLimits) -> Result<Process>;

    /// Moves the running process `pid` into the job, never out of another
    /// job (a permission error then). `alive` says whether it still holds
    /// its number (its pidfd), for the check after the move.
    fn assign(&self, pid: i32, limits: &JobLimits, alive: &dyn Fn() -> bool) -> Result<()>;

    /// Every member's pid (nested jobs included), sorted.
    fn pids(&self) -> Result<Vec<i32>>;

    /// Accounting: what the kernel counted for the job.
    fn accounting(&self, limits: &JobLimits) -> Result<Accounting>;

    /// Kills every member until none is left; returns how many there were.
    fn kill_all(&self) -> Result<usize>;

    /// Whether the job has no process left.
    fn is_empty(&self) -> Result<bool>;

    /// Freezes or thaws every member, and returns once done (bounded).
    fn set_frozen(&self, frozen: bool) -> Result<()>;

    /// Where marks for other handles (terminated, exit code) are kept.
    fn marks(&self) -> Marks;

    /// What the guardian does when the last kill-on-close holder is gone.
    fn guardian_plan(&self) -> guardian::Plan;

    /// Tells the init of the job's pid namespace, when this handle made one,
    /// how the job ends: with its last handle (`holders`, a read end of the
    /// holders' pipe) or only when it is deleted.
    fn arm_init(&self, _holders: Option<std::os::fd::BorrowedFd<'_>>) -> Result<()> {
        Ok(())
    }

    /// Removes the job (its members are gone already) and what only it used.
    fn remove(&self) -> Result<()>;
}

/// What [`JobBackend::accounting`] reports; the front adds the name, the
/// limits and the handle's kill-on-close.
#[derive(Debug, Default)]
pub(crate) struct Accounting {
    pub pids: Vec<i32>,
    pub peak_processes: Option<u64>,
    pub user_time: Duration,
    pub kernel_time: Duration,
    pub memory_current: Option<u64>,
    pub memory_peak: Option<u64>,
    pub oom_kills: Option<u64>,
    pub memory_high_hits: Option<u64>,
    pub process_limit_hits: Option<u64>,
    pub frozen: bool,
    pub io: Option<super::JobIo>,
    pub pressure: Option<super::JobPressure>,
}

/// A mark one handle leaves for the others.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mark {
    /// The job was terminated (its object is signalled).
    Terminated,
    /// The exit code of a `terminate_with`, for members to report.
    ExitCode,
    /// A kill-on-close guardian watches the job (from the handle that armed
    /// it): a handle without it may not move the job.
    KillOnClose,
}

impl Mark {
    fn xattr(self) -> &'static str {
        match self {
            Mark::Terminated => "user.taskloom.terminated",
            Mark::ExitCode => "user.taskloom.exit_code",
            Mark::KillOnClose => "user.taskloom.kill_on_close",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Mark::Terminated => "terminated",
            Mark::ExitCode => "exit_code",
            Mark::KillOnClose => "kill_on_close",
        }
    }
}

/// Where a job's marks live: extended attributes of its cgroup directory,
/// or files in its state directory.
#[derive(Debug, Clone)]
pub(crate) enum Marks {
    Xattr(std::path::PathBuf),
    Files(std::path::PathBuf),
}

impl Marks {
    /// Sets (`Some`) or clears (`None`) a mark; best effort, as the
    /// filesystem allows.
    pub fn set(&self, mark: Mark, value: Option<&[u8]>) {
        match (self, value) {
            (Marks::Xattr(dir), Some(v)) => {
                rustix::fs::setxattr(dir, mark.xattr(), v, rustix::fs::XattrFlags::empty())
                    .or_log(|| format!("set {} on {}", mark.xattr(), dir.display()));
            }
            (Marks::Xattr(dir), None) => {
                rustix::fs::removexattr(dir, mark.xattr())
                    .or_log(|| format!("clear {} on {}", mark.xattr(), dir.display()));
            }
            (Marks::Files(dir), Some(v)) => {
                fs::write(dir.join(mark.file()), v)
                    .or_log(|| format!("write {}", dir.join(mark.file()).display()));
            }
            (Marks::Files(dir), None) => {
                fs::remove_file(dir.join(mark.file()))
                    .or_log(|| format!("remove {}", dir.join(mark.file()).display()));
            }
        }
    }

    /// A mark's value: `Ok(None)` when unset, `NoSuchJob` (with `name`)
    /// when the job is gone.
    pub fn get(&self, mark: Mark, name: &str) -> Result<Option<String>> {
        let (dir, value) = match self {
            Marks::Xattr(dir) => {
                let mut buf = [0u8; 32];
                let v = rustix::fs::getxattr(dir, mark.xattr(), &mut buf)
                    .ok()
                    .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned());
                (dir, v)
            }
            Marks::Files(dir) => (dir, fs::read_to_string(dir.join(mark.file())).ok()),
        };
        if value.is_none() && !dir.is_dir() {
            return Err(Error::NoSuchJob(name.to_owned()));
        }
        Ok(value)
    }
}

/// Where jobs live on this machine, for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Directories below our own cgroup (or our delegated subtree) that we may write.
    Direct,
    /// A transient scope per top-level job, delegated by the systemd manager.
    Scoped,
    /// Process groups: no cgroup is ours to write.
    Group,
}

/// The backend in use (decided once per process). `TASKLOOM_JOB_BACKEND`
/// (`cgroup`, `systemd`, `process-group`) forces one. Otherwise: a process
/// inside a job makes its jobs inside that job (direct); on a pure cgroup2
/// machine whose init is systemd, its manager delegates (scoped); else the
/// cgroups we may write below our own (direct); else process groups.
pub(crate) fn kind() -> Kind {
    static KIND: std::sync::OnceLock<Kind> = std::sync::OnceLock::new();
    *KIND.get_or_init(|| {
        let direct = || {
            if cgroup::roots().usable() {
                Kind::Direct
            } else {
                Kind::Group
            }
        };
        match std::env::var("TASKLOOM_JOB_BACKEND").as_deref() {
            Ok("process-group") => return Kind::Group,
            Ok("systemd") => return Kind::Scoped,
            Ok("cgroup") => return direct(),
            _ => {}
        }
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let in_job = cgroup::placement_of(&own)
            .iter()
            .any(|(h, p, _)| h.v2 && cgroup::job_context(p).is_some());
        let pure_v2 = cgroup::hierarchies().iter().all(|h| h.v2);
        if !in_job && pure_v2 && systemd::reachable() {
            Kind::Scoped
        } else {
            direct()
        }
    })
}

/// How a contained job keeps its members in (`None` where a job is not
/// contained): what [`crate::job::JobBuilder`] asked beyond the namespaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Containment {
    /// The user's service manager and buses are hidden from the members
    /// (none of them can have a process started outside the job).
    pub hide_services: bool,
}

/// A new top-level job named `name`, and the guardian it already has (the
/// scoped backend starts its scope with one). On failure nothing is left.
pub(crate) fn create(
    name: &str,
    contain: Option<Containment>,
) -> Result<(Box<dyn JobBackend>, Option<guardian::Waiting>)> {
    match kind() {
        Kind::Group => Ok((Box::new(group::Group::create(name)?), None)),
        Kind::Scoped => {
            let (job, waiting) = scoped::Scoped::create(name, contain)?;
            Ok((Box::new(job), Some(waiting)))
        }
        Kind::Direct => {
            let mover: direct::Mover<'_> = &direct::write_procs;
            let job = Direct::create(name, cgroup::roots(), contain.map(|c| (mover, c)))?;
            Ok((Box::new(job), None))
        }
    }
}

/// `OpenJobObject`: the job named `name` (`a/b` for a nested one) and the
/// limits recorded with it. Where systemd keeps jobs, one another user (or
/// root) made is found too: told "permission denied" when its mode keeps
/// this user out, opened when it is shared.
pub(crate) fn open(name: &str) -> Result<(Box<dyn JobBackend>, JobLimits)> {
    match open_here(name) {
        // Not among ours, or our manager cannot be asked (no session bus).
        Err(e @ (Error::NoSuchJob(_) | Error::Systemd { .. })) if systemd::booted() => {
            match scoped::open_elsewhere(name) {
                Some(found) => {
                    let (d, limits) = found?;
                    Ok((Box::new(d), limits))
                }
                None => Err(e),
            }
        }
        found => found,
    }
}

/// [`open`] among the jobs of the backend in use.
fn open_here(name: &str) -> Result<(Box<dyn JobBackend>, JobLimits)> {
    match kind() {
        Kind::Group => match group::Group::open(name)? {
            Some((g, limits)) => Ok((Box::new(g), limits)),
            // Not one of this user's: perhaps a cgroup job another user
            // shared (this process may not make jobs, but may see them).
            None if !pgroup::forced() && cgroup::visible_roots().usable() => {
                let (d, limits) = Direct::open(name, cgroup::visible_roots())?;
                Ok((Box::new(d), limits))
            }
            None => Err(Error::NoSuchJob(name.to_owned())),
        },
        Kind::Scoped => {
            let (s, limits) = scoped::Scoped::open(name)?;
            Ok((Box::new(s), limits))
        }
        Kind::Direct => {
            // A member names the jobs around its own too (its own among
            // them, once it is in a job it made): the nearest level first.
            let own = cgroup::roots();
            let mut found = Direct::open(name, own);
            for level in cgroup::enclosing_roots(own) {
                if !matches!(found, Err(Error::NoSuchJob(_))) {
                    break;
                }
                found = Direct::open(name, &level);
            }
            let (d, limits) = found?;
            Ok((Box::new(d), limits))
        }
    }
}

/// Every job this process can name, nested ones as `a/b`.
pub(crate) fn list() -> Result<Vec<String>> {
    match kind() {
        Kind::Group => Ok(pgroup::list()),
        Kind::Scoped => scoped::list(),
        Kind::Direct => {
            let roots = cgroup::roots();
            let Some(root) = roots
                .v2
                .clone()
                .or_else(|| roots.v1.first().map(|(_, p)| p.clone()))
            else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            direct::walk(&root, "", &mut out);
            Ok(out)
        }
    }
}

/// How each job feature is enforced here, by the backend in use.
pub(crate) fn capabilities() -> Vec<Capability> {
    match kind() {
        Kind::Group => group::capabilities(),
        Kind::Scoped => match systemd::with_manager(|m| m.delegation()) {
            Ok((manager_dir, controllers)) => {
                let roots = cgroup::Roots {
                    v2: Some(manager_dir.join("…").join(systemd::unit_name("<job>"))),
                    v2_controllers: controllers
                        .iter()
                        .filter(|c| ["pids", "memory", "cpu", "cpuset", "io"].contains(&c.as_str()))
                        .cloned()
                        .collect(),
                    v2_enable_in: None,
                    v1: Vec::new(),
                    problems: Vec::new(),
                };
                let manager = if rustix::process::geteuid().is_root() {
                    "the system manager"
                } else {
                    "your systemd user manager"
                };
                direct::capabilities(&roots, Some(manager))
            }
            Err(e) => {
                let roots = cgroup::Roots {
                    v2: None,
                    v2_controllers: Vec::new(),
                    v2_enable_in: None,
                    v1: Vec::new(),
                    problems: vec![format!("systemd is this machine's init, but: {e}")],
                };
                direct::capabilities(&roots, Some("the systemd manager"))
            }
        },
        Kind::Direct => direct::capabilities(cgroup::roots(), None),
    }
}

/// Where a job's limits are recorded for other handles (an extended
/// attribute of its cgroup directory).
const LIMITS_XATTR: &str = "user.taskloom.limits";

/// The limits recorded with the job whose cgroup directory is `dir`.
pub(crate) fn read_limits(dir: &Path) -> Option<JobLimits> {
    let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::getxattr(path.as_c_str(), LIMITS_XATTR, &mut buf).ok()?;
    limits_from_json(&buf[..n])
}

pub(crate) fn limits_to_json(limits: &JobLimits) -> String {
    serde_json::to_string(limits).unwrap_or_default()
}

pub(crate) fn limits_from_json(bytes: &[u8]) -> Option<JobLimits> {
    serde_json::from_slice(bytes).ok()
}

/// The numbers `N` of the cgroup2 leaves `@N` in a job directory.
pub(crate) fn leaf_numbers(dir: &Path) -> impl Iterator<Item = u32> {
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

/// The error for a limit whose controller this job does not have.
fn unavailable(feature: &str, c: Controller) -> Error {
    Error::InvalidInput {
        what: "job limit",
        reason: format!(
            "{feature} needs the {} cgroup controller, which is not available here (see `taskloom job caps`)",
            c.name()
        ),
    }
}
/// The cgroup2 directory process `pid` is in (`None` when gone or unseen).
pub(crate) fn v2_dir_of(pid: i32) -> Option<PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    cgroup::placement_of(&text)
        .into_iter()
        .find(|(h, _, _)| h.v2)
        .map(|(_, _, dir)| dir)
}

/// This process's cgroup2 directory.
pub(crate) fn own_v2_dir() -> Option<PathBuf> {
    v2_dir_of(std::process::id() as i32)
}

/// `CREATE_BREAKAWAY_FROM_JOB` for the calling process: `None` when it is in
/// no job; an error when its job does not allow breakaway.
///
/// As on Windows, the child leaves only the jobs that allow breakaway, from
/// the innermost outwards, and stays in the first enclosing job that does
/// not (in that job's own leaf); only when every enclosing job allows it
/// does it leave them all, into taskloom's `@breakaway` cgroup beside them.
pub(crate) fn breakaway() -> Result<Option<Placement>> {
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
        let limits = open(&name).map(|(_, l)| l).unwrap_or_default();
        if !limits.breakaway_ok {
            return Err(no_breakaway(&name));
        }
        return Ok(Some(Placement::NewGroup));
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
                cgroup::ensure_dir(&dir).map_err(|e| {
                    Error::os(format!("create the breakaway cgroup {}", dir.display()), e)
                })?;
                if !h.v2 && dir.join("cpuset.cpus").exists() {
                    cgroup::inherit_cpuset(&dir)?;
                }
                dir
            }
        };
        if h.v2 {
            let f = fs::File::open(&target).map_err(|e| {
                Error::os(format!("open the breakaway cgroup {}", target.display()), e)
            })?;
            p.v2_dir = Some(f.into());
            p.v2_procs = Some(target.join("cgroup.procs"));
        } else {
            p.procs_files.push(target.join("cgroup.procs"));
        }
    }
    Ok(Some(Placement::Cgroup(p)))
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

/// `IsProcessInJob(process, NULL)`: the name of the taskloom job `pid` is in, if any.
pub fn job_of(pid: i32) -> Result<Option<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NoSuchProcess { pid },
        _ => Error::os(format!("read /proc/{pid}/cgroup"), e),
    })?;
    if let Some(name) = crate::linux::job_name_seen_here(&text) {
        return Ok(Some(name));
    }
    // Jobs of the process-group backend: match the process's group.
    let stat = fs::read(format!("/proc/{pid}/stat")).unwrap_or_default();
    let pgrp = crate::linux::parse::parse_stat(&stat)
        .map(|s| s.pgrp)
        .unwrap_or(0);
    Ok(pgroup::list()
        .into_iter()
        .find(|n| pgrp > 0 && pgroup::pgid(&pgroup::state_root().join(n)) == pgrp))
}
