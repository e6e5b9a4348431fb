//! The direct backend: a job is a directory named after it in each cgroup
//! hierarchy taskloom uses, below this process's own cgroup (or the top of
//! its delegated subtree): `<root>/taskloom/<name>`.
//!
//! On cgroup2 the job's processes live in a leaf `@N` below the job
//! directory, so nested jobs sit beside the leaf and a fresh leaf can be
//! made after a terminate ("the CLONE_INTO_CGROUP bug" in ARCHITECTURE.md).
//! The three layouts are one backend: membership is held by cgroup2 when
//! it is mounted (else by the first v1 hierarchy), and each controller's
//! files are written in the [`Format`] of the hierarchy it is mounted in —
//! cgroup2 (pure v2), v1 (v1-only machines), or some of each (hybrid).

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

mod caps;
pub(crate) use caps::die_on_exception_detail;
pub(crate) mod cgroup;
mod contain;
mod format;
#[cfg(test)]
mod tests;

pub(crate) use caps::capabilities;
pub(crate) use contain::init_dir_of;
use contain::{contain_job, isolation};
use format::Format;

use super::{
    Accounting, Containment, JobBackend, LIMITS_XATTR, Marks, leaf_numbers, limits_to_json,
    read_limits, unavailable,
};
use crate::cpuset::CpuSet;
use crate::error::{Error, OrLog, Result};
use crate::job::{JobLimits, guardian, layout::Controller};

use super::job_of;
use crate::process::{CgroupPlacement, Namespaces, Process, ProcessBuilder};

/// `Direct::leaf_hint` when no leaf number is known.
const UNKNOWN_LEAF: u32 = u32::MAX;

/// A job's cgroup directories.
#[derive(Debug)]
pub(crate) struct Direct {
    name: String,
    /// The job's cgroup2 directory (membership lives in its `@N` leaves).
    v2: Option<PathBuf>,
    /// Its directory in each v1 hierarchy taskloom uses.
    v1: Vec<(Controller, PathBuf)>,
    /// The number of the v2 leaf (`@N`) the last spawn used, `UNKNOWN_LEAF`
    /// when unknown: the next spawn opens `@N` by name and lists the
    /// directory only when that fails (after a terminate renewed the leaves).
    leaf_hint: AtomicU32,
    /// The cgroup namespace rooted at this job (or at the nearest enclosing
    /// contained job) that every process this handle spawns joins: what
    /// keeps a member from moving itself out. `None`: not contained.
    ns: Option<Arc<Namespaces>>,
    /// Whether `ns` is rooted at this job (made when it was created).
    ns_here: bool,
    /// For a handle opened by name (which did not make the namespace): the
    /// namespaces a member of the job's own leaf started in, found at the
    /// first spawn that needs them ([`Namespaces::of_member`]).
    opened: bool,
    borrowed: OnceLock<Arc<Namespaces>>,
    /// Made with the services hidden from its members.
    hides_services: bool,
}

/// Moves a process into a cgroup directory: a write of its `cgroup.procs`,
/// or, from outside a systemd scope, the manager's hand.
pub(crate) type Mover<'a> = &'a dyn Fn(&Path, i32) -> Result<()>;

/// The [`Mover`] for cgroups this process may write.
pub(crate) fn write_procs(dir: &Path, pid: i32) -> Result<()> {
    cgroup::write(&dir.join("cgroup.procs"), &pid.to_string())
}

impl Direct {
    /// A job object over existing directories (for tests against fixture trees).
    #[cfg(test)]
    pub(crate) fn at(name: &str, v2: Option<PathBuf>, v1: Vec<(Controller, PathBuf)>) -> Direct {
        Direct {
            name: name.to_owned(),
            v2,
            v1,
            leaf_hint: UNKNOWN_LEAF.into(),
            ns: None,
            ns_here: false,
            opened: false,
            borrowed: OnceLock::new(),
            hides_services: false,
        }
    }

    /// A new top-level job below `roots`; `contain` moves the helper that
    /// makes its cgroup namespace (`None`: no namespace).
    pub(crate) fn create(
        name: &str,
        roots: &cgroup::Roots,
        contain: Option<(Mover<'_>, Containment)>,
    ) -> Result<Direct> {
        let v2 = roots.v2.as_ref().map(|r| r.join(name));
        let v1 = roots.v1.iter().map(|(c, r)| (*c, r.join(name))).collect();
        Direct::make(name.to_owned(), v2, v1, Some(roots), contain, None)
    }

    /// Makes the directories of job `name` (`roots` for a top-level job,
    /// whose shared roots may have to be made first); on failure removes
    /// what it made.
    fn make(
        name: String,
        v2: Option<PathBuf>,
        v1: Vec<(Controller, PathBuf)>,
        roots: Option<&cgroup::Roots>,
        contain: Option<(Mover<'_>, Containment)>,
        enclosing_ns: Option<Arc<Namespaces>>,
    ) -> Result<Direct> {
        // Roots may have been removed by the last job's deletion (here, or by
        // another process's guardian, even between these steps): make them again.
        let ensure_roots_once = || -> Result<()> {
            let Some(roots) = roots else { return Ok(()) };
            for root in roots.v2.iter().chain(roots.v1.iter().map(|(_, r)| r)) {
                cgroup::ensure_dir(root).map_err(|e| {
                    Error::os(format!("create the job root cgroup {}", root.display()), e)
                })?;
            }
            if let Some((_, root)) = roots.v1.iter().find(|(c, _)| *c == Controller::Cpuset) {
                cgroup::inherit_cpuset(root)?;
            }
            if let Some(root) = &roots.v2 {
                // The delegated cgroup above the root hands the controllers
                // down first (pure cgroup2, when our own cgroup holds processes).
                for dir in roots.v2_enable_in.iter().chain([root]) {
                    for c in &roots.v2_controllers {
                        cgroup::write(&dir.join("cgroup.subtree_control"), &format!("+{c}"))
                            .or_log(|| format!("enable {c} in {}", dir.display()));
                    }
                }
            }
            Ok(())
        };
        // A root removed again while it was being filled in (its
        // `cpuset.cpus` written) is made again, a few times.
        let ensure_roots = || -> Result<()> {
            let mut tries = 0;
            loop {
                tries += 1;
                match ensure_roots_once() {
                    Err(Error::Cgroup { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound && tries < 5 => {}
                    r => return r,
                }
            }
        };
        // Create the primary directory first: its existence is the name's claim.
        let primary = v2
            .clone()
            .or_else(|| v1.first().map(|(_, p)| p.clone()))
            .ok_or_else(|| Error::JobsUnavailable("no cgroup hierarchy is usable".into()))?;
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
                Err(e) => {
                    return Err(Error::os(
                        format!("create the cgroup {} of job {name}", primary.display()),
                        e,
                    ));
                }
            }
        }
        let mut job = Direct {
            name,
            v2,
            v1,
            leaf_hint: UNKNOWN_LEAF.into(),
            ns: enclosing_ns,
            ns_here: false,
            opened: false,
            borrowed: OnceLock::new(),
            hides_services: false,
        };
        // The namespace is rooted while the job's cgroup is still empty and
        // hands nothing down (its helper has to be placed in it). Where it
        // cannot be made the job stays uncontained, as `job caps` says.
        if let (Some(v2), Some((mover, how))) = (&job.v2, contain)
            && cgroup::namespaces_delegate()
        {
            match contain_job(&job.name, v2, mover, how) {
                Ok(ns) => {
                    job.ns = Some(Arc::new(ns));
                    job.ns_here = true;
                    job.hides_services = how.hide_services;
                }
                Err(e) => tracing::debug!(
                    target: "taskloom",
                    "job {} is not contained: {e}",
                    job.name
                ),
            }
        }
        // Only what this creation made (or took over empty) is removed on failure.
        let mut made: Vec<PathBuf> = vec![primary];
        let result = (|| -> Result<()> {
            if let Some(v2) = &job.v2 {
                enable_controllers(v2);
                fs::create_dir(v2.join("@0")).map_err(|e| {
                    Error::os(format!("create the leaf cgroup {}/@0", v2.display()), e)
                })?;
            }
            for (c, dir) in &job.v1 {
                // Co-mounted controllers (cpu,cpuacct) share one directory.
                if !made.contains(dir) {
                    let mut r = fs::create_dir(dir);
                    let mut tries = 0;
                    while roots.is_some()
                        && tries < 5
                        && matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::NotFound)
                    {
                        // The root went with another job in the meantime.
                        tries += 1;
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
                        Err(e) => {
                            return Err(Error::os(
                                format!("create the cgroup {} of job {}", dir.display(), job.name),
                                e,
                            ));
                        }
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
                cgroup::remove_tree(dir)
                    .or_log(|| format!("remove {} after a failed creation", dir.display()));
            }
            for dir in job.shared_roots() {
                remove_shared_root(&dir);
            }
            return Err(e);
        }
        Ok(job)
    }

    /// `OpenJobObject` of a job below `roots`, with the limits recorded with it.
    pub(crate) fn open(name: &str, roots: &cgroup::Roots) -> Result<(Direct, JobLimits)> {
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
        let job = Direct {
            name: name.to_owned(),
            v2,
            v1: v1.into_iter().filter(|(_, d)| d.is_dir()).collect(),
            leaf_hint: UNKNOWN_LEAF.into(),
            ns: None,
            ns_here: false,
            opened: true,
            borrowed: OnceLock::new(),
            hides_services: false,
        };
        Ok((job, limits))
    }

    /// Makes a job nested in this one: `name` is its full name, `leaf` its
    /// own. Contained with a namespace of its own when `contain` moves the
    /// helper, else in this job's namespace (if any).
    pub(crate) fn nested(
        &self,
        name: &str,
        leaf: &str,
        contain: Option<(Mover<'_>, Containment)>,
    ) -> Result<Direct> {
        let v2 = self.v2.as_ref().map(|d| d.join(leaf));
        let v1 = self.v1.iter().map(|(c, d)| (*c, d.join(leaf))).collect();
        Direct::make(name.to_owned(), v2, v1, None, contain, self.ns.clone())
    }

    /// The namespaces members of this job start in: the ones made with it
    /// (or with an enclosing job); for a handle opened by name, those a
    /// member of the job's own leaf started in, if one did.
    pub(crate) fn namespaces(&self) -> Option<Arc<Namespaces>> {
        if let Some(ns) = &self.ns {
            return Some(ns.clone());
        }
        if !self.opened {
            return None;
        }
        if let Some(ns) = self.borrowed.get() {
            return Some(ns.clone());
        }
        let procs = cgroup::read(&self.leaf_or_first()?.join("cgroup.procs")).ok()?;
        let found = procs
            .lines()
            .filter_map(|l| l.trim().parse::<i32>().ok())
            .find_map(Namespaces::of_member)?;
        Some(self.borrowed.get_or_init(|| Arc::new(found)).clone())
    }

    /// Whether processes this handle spawns start in a namespace, and
    /// whether it is rooted here: [`JobBackend::containment`]. A handle
    /// opened by name counts the namespaces of a member as rooted here.
    pub(crate) fn containment(&self) -> Option<bool> {
        match &self.ns {
            Some(_) => Some(self.ns_here),
            None => self.namespaces().map(|_| true),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The cgroup of the job's pid namespace init ([`init_dir_of`]), when it exists.
    fn init_dir(&self) -> Option<PathBuf> {
        self.v2
            .as_deref()
            .and_then(|d| init_dir_of(&self.name, d))
            .filter(|d| d.is_dir())
    }

    /// The job's cgroup2 directory.
    pub(crate) fn v2(&self) -> Option<&Path> {
        self.v2.as_deref()
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

    /// Where controller `c`'s files are for this job, and their format: its
    /// v1 directory, or its cgroup2 directory when cgroup2 hands it `c`.
    fn limit_dir(&self, c: Controller) -> Option<(&Path, Format)> {
        if let Some(d) = self.v1_dir(c) {
            return Some((d, Format::V1));
        }
        let on_v2 = self.v2_controllers().iter().any(|n| n == c.name());
        if on_v2 {
            self.v2.as_deref().map(|d| (d, Format::V2))
        } else {
            None
        }
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

    /// The current v2 leaf (`@N` with the highest N), else `@0`.
    pub(crate) fn leaf_or_first(&self) -> Option<PathBuf> {
        let v2 = self.v2.as_ref()?;
        let n = leaf_numbers(v2).max().unwrap_or(0);
        Some(v2.join(format!("@{n}")))
    }

    /// The current v2 leaf, opened: `@N` by the remembered number first (one
    /// `open`), listing the job directory only when that fails.
    pub(crate) fn open_leaf(&self) -> Result<Option<(PathBuf, fs::File)>> {
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
        let Some(n) = leaf_numbers(v2).max() else {
            return Ok(None);
        };
        let leaf = v2.join(format!("@{n}"));
        let f = fs::File::open(&leaf)
            .map_err(|e| Error::os(format!("open the leaf cgroup {}", leaf.display()), e))?;
        self.leaf_hint.store(n, Ordering::Relaxed);
        Ok(Some((leaf, f)))
    }

    /// Where a new process must be placed to join this job.
    fn placement(&self, limits: &JobLimits) -> Result<CgroupPlacement> {
        let mut p = CgroupPlacement::default();
        if let Some((leaf, dir)) = self.open_leaf()? {
            p.v2_dir = Some(dir.into());
            p.v2_procs = Some(leaf.join("cgroup.procs"));
        }
        p.namespaces = self.namespaces();
        let active = self.active_controllers(limits);
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
    fn active_controllers(&self, limits: &JobLimits) -> Vec<Controller> {
        if self.v2.is_none() {
            return self.v1.iter().map(|(c, _)| *c).collect();
        }
        let mut active = needed_controllers(limits);
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
                cgroup::write(&root.join(&name).join("cgroup.procs"), &pid.to_string())
                    .or_log(|| format!("move process {pid} into the {} hierarchy", c.name()));
            }
        }
        Ok(())
    }

    /// `CreateProcess` into the job's current leaf (and the v1 directories
    /// its limits need), placed by the kernel before the first instruction.
    pub(crate) fn spawn_placed(
        &self,
        builder: ProcessBuilder,
        limits: &JobLimits,
    ) -> Result<Process> {
        builder.cgroup_placement(self.placement(limits)?).spawn()
    }

    /// Assigns `pid`, moving it into the cgroup2 leaf with `move_in` (a
    /// write of `cgroup.procs`, or the systemd manager's hand).
    pub(crate) fn assign_with(
        &self,
        pid: i32,
        limits: &JobLimits,
        alive: &dyn Fn() -> bool,
        move_in: &dyn Fn(&Path, i32) -> Result<()>,
    ) -> Result<()> {
        if !self.may_assign(pid)? {
            // Already in this job (or one nested in it).
            return Ok(());
        }
        if let Some(leaf) = self.leaf_or_first() {
            move_in(&leaf, pid)?;
        }
        let active = self.active_controllers(limits);
        for (_, dir) in self.v1.iter().filter(|(c, _)| active.contains(c)) {
            cgroup::write(&dir.join("cgroup.procs"), &pid.to_string())
                .map_err(|e| no_such(e, pid))?;
        }
        if !alive() {
            // It ended during the write: a newcomer may have its number now.
            self.evict(pid);
            return Err(Error::NoSuchProcess { pid });
        }
        Ok(())
    }

    /// Whether assigning `pid` moves it: `false` when it is in this job
    /// already (or a job nested in it), `true` when it is in no job or in a
    /// job this one is nested in, and a permission error when it is in a job
    /// this one is not nested in (it would leave that job).
    fn may_assign(&self, pid: i32) -> Result<bool> {
        let (moves, foreign) = self.relation_to(pid)?;
        let Some(their_name) = foreign else {
            return Ok(moves);
        };
        Err(Error::PermissionDenied {
            what: format!(
                "assign process {pid} to job {}: it is in job {their_name}, which job {} is not nested in, and a process never leaves its job (make the job inside {their_name} instead)",
                self.name, self.name
            ),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        })
    }

    /// Where `pid` is, seen from this job: whether assigning it moves it
    /// (it is not in this job or one nested in it), and the name of the job
    /// it is in when this job is not nested in that one (`None` when it is
    /// in no job, or in this job's chain).
    fn relation_to(&self, pid: i32) -> Result<(bool, Option<String>)> {
        let text = fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map_err(|_| Error::NoSuchProcess { pid })?;
        let mine = self
            .primary_dir()
            .ok_or_else(|| Error::NoSuchJob(self.name.clone()))?;
        let Some((_, Some(theirs))) = current_job_dir(&text, Some(mine)) else {
            return Ok((true, None));
        };
        if theirs.starts_with(mine) {
            return Ok((false, None));
        }
        if mine.starts_with(&theirs) {
            return Ok((true, None));
        }
        let their_name =
            crate::linux::job_name_seen_here(&text).unwrap_or_else(|| theirs.display().to_string());
        Ok((true, Some(their_name)))
    }

    /// The job `pid` is in, by name, when it is a job this one is not nested
    /// in: [`JobBackend::foreign_job_of`].
    pub(crate) fn foreign_job_of(&self, pid: i32) -> Result<Option<String>> {
        Ok(self.relation_to(pid)?.1)
    }

    /// The job's security as [`JobBackend::secure`] takes it, read back.
    pub(crate) fn mode(&self) -> Option<u32> {
        let dir = self.primary_dir()?;
        let dir_mode = fs::metadata(dir).ok()?.permissions().mode();
        let procs = self
            .leaf_or_first()
            .map(|l| l.join("cgroup.procs"))
            .unwrap_or_else(|| dir.join("cgroup.procs"));
        let file_mode = fs::metadata(procs).map_or(0, |m| m.permissions().mode());
        Some(0o700 | (dir_mode & 0o055) | (file_mode & 0o022))
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
            cgroup::ensure_dir(&out).or_log(|| format!("create {}", out.display()));
            cgroup::write(&out.join("cgroup.procs"), &pid.to_string())
                .or_log(|| format!("move newcomer {pid} out of job {}", self.name));
        }
    }

    /// The job's directory in the hierarchy that holds membership (cgroup2, else the first v1).
    fn primary_dir(&self) -> Option<&Path> {
        self.v2
            .as_deref()
            .or_else(|| self.v1.first().map(|(_, d)| d.as_path()))
    }

    /// After a `cgroup.kill`: every leaf `@N` below `dir` is replaced by `@N+1`.
    fn renew_leaves(&self, dir: &Path) -> Result<()> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Ok(());
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(n) = name.strip_prefix('@').and_then(|n| n.parse::<u32>().ok()) {
                let next = dir.join(format!("@{}", n + 1));
                cgroup::ensure_dir(&next).or_log(|| format!("create leaf {}", next.display()));
                // The new leaf is shared as the old one was.
                if let Ok(meta) = fs::metadata(e.path().join("cgroup.procs")) {
                    share_files(&next, meta.permissions().mode() & 0o022)
                        .or_log(|| format!("share leaf {}", next.display()));
                }
                fs::remove_dir(e.path())
                    .or_log(|| format!("remove old leaf {}", e.path().display()));
            } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                self.renew_leaves(&e.path())?;
            }
        }
        Ok(())
    }

    /// For a top-level job: the `taskloom` roots it shares with other jobs
    /// (and their `@breakaway` leaves), which the last job removes; in the
    /// order to remove them.
    pub(crate) fn shared_roots(&self) -> Vec<PathBuf> {
        if self.name.contains('/') {
            return Vec::new();
        }
        self.dirs()
            .filter_map(|d| d.parent())
            .flat_map(|root| [root.join("@breakaway"), root.to_owned()])
            .collect()
    }

    /// Waits (bounded) until the cgroup2 job reports no process.
    fn wait_populated_0(&self, v2: &Path, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match cgroup::keyed(&v2.join("cgroup.events"), "populated") {
                Some(0) => return true,
                // Removed meanwhile (its owner deleted it once it emptied).
                None if !v2.exists() => return true,
                _ => {}
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

impl JobBackend for Direct {
    fn create_nested(
        &self,
        name: &str,
        leaf: &str,
        contain: Option<Containment>,
    ) -> Result<Box<dyn JobBackend>> {
        let mover: Mover<'_> = &write_procs;
        Ok(Box::new(self.nested(
            name,
            leaf,
            contain.map(|c| (mover, c)),
        )?))
    }

    fn containment(&self) -> Option<bool> {
        Direct::containment(self)
    }

    fn hides_services(&self) -> bool {
        self.hides_services
    }

    fn foreign_job_of(&self, pid: i32) -> Result<Option<String>> {
        Direct::foreign_job_of(self, pid)
    }

    fn mode(&self) -> Option<u32> {
        Direct::mode(self)
    }

    fn chain(&self) -> Vec<PathBuf> {
        self.v2
            .as_deref()
            .map(cgroup::job_chain)
            .unwrap_or_default()
    }

    fn secure(&self, mode: u32) -> Result<()> {
        let dir_mode = 0o700 | (mode & 0o055);
        for dir in self.dirs() {
            fs::set_permissions(dir, fs::Permissions::from_mode(dir_mode)).map_err(|e| {
                Error::os(format!("chmod {} (job {})", dir.display(), self.name), e)
            })?;
            share_files(dir, mode)?;
            for n in leaf_numbers(dir).collect::<Vec<_>>() {
                share_files(&dir.join(format!("@{n}")), mode)?;
            }
        }
        Ok(())
    }

    fn apply_limits(&self, limits: &JobLimits, before: &JobLimits) -> Result<()> {
        // First: these refuse (on cgroup v1) before anything is written.
        self.apply_memory_bounds(limits, before)?;
        self.apply_io_rates(limits, before)?;
        if let Some((dir, _)) = self.limit_dir(Controller::Pids) {
            let value = limits
                .active_processes
                .map_or_else(|| "max".to_owned(), |n| n.to_string());
            cgroup::write(&dir.join("pids.max"), &value)?;
        } else if limits.active_processes.is_some() {
            return Err(unavailable("active process limit", Controller::Pids));
        }
        if let Some((dir, format)) = self.limit_dir(Controller::Memory) {
            let (file, value) = format.memory_limit(limits.job_memory);
            cgroup::write(&dir.join(file), &value)?;
            if format == Format::V1 {
                // Keep the OOM killer on, confined to the group.
                cgroup::write(&dir.join("memory.oom_control"), "0")
                    .or_log(|| format!("keep the OOM killer on in {}", dir.display()));
            }
        } else if limits.job_memory.is_some() {
            return Err(unavailable("job memory limit", Controller::Memory));
        }
        if let Some((dir, _)) = self.limit_dir(Controller::Cpuset) {
            let parent = dir.parent().unwrap_or(dir);
            let cpus = match &limits.affinity {
                Some(set) => {
                    check_cpus_allowed(set, parent)?;
                    set.to_string()
                }
                None => cgroup::read(&parent.join("cpuset.cpus"))?,
            };
            cgroup::write(&dir.join("cpuset.cpus"), &cpus)?;
        } else if limits.affinity.is_some() {
            return Err(unavailable("affinity limit", Controller::Cpuset));
        }
        if let Some((dir, format)) = self.limit_dir(Controller::Cpu) {
            for (file, value) in format.cpu_rate(limits.cpu_rate_percent) {
                cgroup::write(&dir.join(file), &value)?;
            }
            if limits.cpu_weight.is_some() || before.cpu_weight.is_some() {
                let (file, value) = format.cpu_weight(limits.cpu_weight);
                cgroup::write(&dir.join(file), &value)?;
            }
        } else if limits.cpu_rate_percent.is_some() {
            return Err(unavailable("CPU rate limit", Controller::Cpu));
        } else if limits.cpu_weight.is_some() {
            return Err(unavailable("CPU weight", Controller::Cpu));
        }
        if let Some(primary) = self.primary_dir() {
            rustix::fs::setxattr(
                primary,
                LIMITS_XATTR,
                limits_to_json(limits).as_bytes(),
                rustix::fs::XattrFlags::empty(),
            )
            .or_log(|| format!("record the limits of job {} (others opening it will not know its per-process limits)", self.name));
        }
        let was = self.active_controllers(before);
        for c in self.active_controllers(limits) {
            if !was.contains(&c) {
                self.join_v1_controller(c)?;
            }
        }
        Ok(())
    }

    fn spawn(&self, builder: ProcessBuilder, limits: &JobLimits) -> Result<Process> {
        self.spawn_placed(builder, limits)
    }

    fn assign(&self, pid: i32, limits: &JobLimits, alive: &dyn Fn() -> bool) -> Result<()> {
        self.assign_with(pid, limits, alive, &|leaf, pid| {
            cgroup::write(&leaf.join("cgroup.procs"), &pid.to_string()).map_err(|e| no_such(e, pid))
        })
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let dir = self
            .primary_dir()
            .ok_or_else(|| Error::NoSuchJob(self.name.clone()))?;
        if !dir.is_dir() {
            return Err(Error::NoSuchJob(self.name.clone()));
        }
        let mut pids = Vec::new();
        cgroup::procs_recursive(dir, &mut pids);
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn accounting(&self, limits: &JobLimits) -> Result<Accounting> {
        let pids = self.pids()?;
        let (user_time, kernel_time) = match (&self.v2, self.v1_dir(Controller::Cpuacct)) {
            (Some(v2), _) => Format::V2.cpu_time(v2),
            (None, Some(dir)) => Format::V1.cpu_time(dir),
            (None, None) => (Duration::ZERO, Duration::ZERO),
        };
        // A v1 controller counts only the members that joined it (those of a
        // job whose limits need it).
        let active = self.active_controllers(limits);
        let used = |c: Controller| self.v1_dir(c).is_none() || active.contains(&c);
        let memory_dir = self
            .limit_dir(Controller::Memory)
            .filter(|_| used(Controller::Memory));
        let (memory_current, memory_peak, oom_kills) = match memory_dir {
            Some((dir, format)) => format.memory_usage(dir),
            None => (None, None, None),
        };
        let memory_high_hits = match memory_dir {
            Some((dir, Format::V2)) => cgroup::keyed(&dir.join("memory.events"), "high"),
            _ => None,
        };
        let pids_dir = self
            .limit_dir(Controller::Pids)
            .filter(|_| used(Controller::Pids))
            .map(|(d, _)| d);
        let frozen = match (&self.v2, self.v1_dir(Controller::Freezer)) {
            (Some(v2), _) => cgroup::keyed(&v2.join("cgroup.events"), "frozen") == Some(1),
            (None, Some(f)) => cgroup::read(&f.join("freezer.state")).is_ok_and(|s| s == "FROZEN"),
            _ => false,
        };
        Ok(Accounting {
            pids,
            peak_processes: pids_dir.and_then(|d| {
                cgroup::read(&d.join("pids.peak"))
                    .ok()
                    .and_then(|s| s.parse().ok())
            }),
            user_time,
            kernel_time,
            memory_current,
            memory_peak,
            oom_kills,
            memory_high_hits,
            process_limit_hits: pids_dir.and_then(cgroup::pids_limit_hits),
            frozen,
            io: self.v2.as_deref().and_then(io_of),
            pressure: self.v2.as_deref().and_then(pressure_of),
        })
    }

    fn kill_all(&self) -> Result<usize> {
        let before = self.pids()?.len();
        if let Some(v2) = &self.v2 {
            cgroup::write(&v2.join("cgroup.kill"), "1")?;
            if !self.wait_populated_0(v2, Duration::from_secs(30)) {
                return Err(Error::Cgroup {
                    op: format!("terminate job {}", self.name),
                    source: std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
                });
            }
            if !v2.exists() {
                // Its owner removed it once it was empty: nothing to renew.
                return Ok(before);
            }
            // Spawning into a cgroup after cgroup.kill hits a kernel bug
            // (ARCHITECTURE.md): move on to a fresh leaf created after the kill.
            self.renew_leaves(v2)?;
            self.leaf_hint.store(UNKNOWN_LEAF, Ordering::Relaxed);
            return Ok(before);
        }
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
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    // Gone already is the goal.
                    rustix::process::kill_process(pid, rustix::process::Signal::KILL)
                        .or_log(|| format!("kill member {}", pid.as_raw_nonzero()));
                }
            }
            if let Some(f) = &freezer {
                cgroup::write(f, "THAWED")?;
            }
            if pids.is_empty() {
                return Ok(before);
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

    fn is_empty(&self) -> Result<bool> {
        match &self.v2 {
            Some(v2) => Ok(cgroup::keyed(&v2.join("cgroup.events"), "populated") == Some(0)),
            None => Ok(self.pids()?.is_empty()),
        }
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
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

    fn marks(&self) -> Marks {
        Marks::Xattr(self.primary_dir().map(Path::to_owned).unwrap_or_default())
    }

    fn guardian_plan(&self) -> guardian::Plan {
        let v1_dirs: Vec<PathBuf> = self.v1.iter().map(|(_, d)| d.clone()).collect();
        let remove: Vec<PathBuf> = self.dirs().cloned().collect();
        let mut plan = guardian::Plan::new(
            self.v2.as_ref(),
            self.v1_dir(Controller::Freezer).map(Path::to_owned),
            &v1_dirs,
            &remove,
            &self.shared_roots(),
        );
        if let Some(init) = self.init_dir() {
            plan.inits
                .extend(std::ffi::CString::new(init.as_os_str().as_bytes()));
        }
        plan
    }

    fn arm_init(&self, holders: Option<std::os::fd::BorrowedFd<'_>>) -> Result<()> {
        match &self.ns {
            Some(ns) if self.ns_here => ns.arm_init(holders),
            _ => Ok(()),
        }
    }

    fn remove(&self) -> Result<()> {
        // The pid namespace's init first: its end ends every member left in
        // the namespace, before the job's own directories go.
        if let Some(init) = self.init_dir() {
            if cgroup::write(&init.join("cgroup.kill"), "1").is_ok() {
                self.wait_populated_0(&init, Duration::from_secs(5));
            }
            cgroup::remove_tree(&init)?;
        }
        for dir in self.dirs() {
            cgroup::remove_tree(dir)?;
        }
        // The shared roots go too once no job is left in them (a busy root stays).
        for dir in self.shared_roots() {
            remove_shared_root(&dir);
        }
        Ok(())
    }
}

/// Says which CPUs of `set` are out of the job's reach (its parent's
/// `cpuset`), rather than the kernel's ERANGE.
/// The job's block I/O from its cgroup2 `io.stat` (`None` where the file is
/// missing: no `io` controller for the job).
fn io_of(v2: &Path) -> Option<crate::job::JobIo> {
    let text = fs::read_to_string(v2.join("io.stat")).ok()?;
    let s = crate::linux::parse::parse_io_stat(&text);
    Some(crate::job::JobIo {
        read_operations: s.rios,
        write_operations: s.wios,
        other_operations: s.dios,
        read_bytes: s.rbytes,
        write_bytes: s.wbytes,
        other_bytes: s.dbytes,
    })
}

/// The job's pressure stall information from its cgroup2 `*.pressure`
/// files (`None` where the kernel keeps none).
fn pressure_of(v2: &Path) -> Option<crate::job::JobPressure> {
    let read = |f: &str| {
        fs::read_to_string(v2.join(f))
            .ok()
            .map(|t| crate::linux::parse::parse_pressure(&t))
    };
    let (cpu, memory, io) = (
        read("cpu.pressure"),
        read("memory.pressure"),
        read("io.pressure"),
    );
    if cpu.is_none() && memory.is_none() && io.is_none() {
        return None;
    }
    Some(crate::job::JobPressure {
        cpu_some: cpu.and_then(|p| p.0),
        memory_some: memory.and_then(|p| p.0),
        memory_full: memory.and_then(|p| p.1),
        io_some: io.and_then(|p| p.0),
        io_full: io.and_then(|p| p.1),
    })
}

fn check_cpus_allowed(set: &CpuSet, parent: &Path) -> Result<()> {
    let allowed = [
        "cpuset.cpus.effective",
        "cpuset.effective_cpus",
        "cpuset.cpus",
    ]
    .iter()
    .find_map(|f| cgroup::read(&parent.join(f)).ok())
    .and_then(|t| CpuSet::parse_list(t.trim()).ok());
    let Some(allowed) = allowed else {
        return Ok(());
    };
    let mut outside = CpuSet::new();
    for cpu in set.iter().filter(|&c| !allowed.contains(c)) {
        outside.insert(cpu);
    }
    if outside.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidCpuList {
        input: set.to_string(),
        reason: format!(
            "{} not available to the job (allowed here: {allowed})",
            if outside.len() == 1 {
                format!("CPU {outside} is")
            } else {
                format!("CPUs {outside} are")
            }
        ),
    })
}

/// Removes a shared root (`taskloom`, `@breakaway`) if it is empty now:
/// absent, or still holding another job (busy), is as expected.
fn remove_shared_root(dir: &Path) {
    match fs::remove_dir(dir) {
        Ok(()) => {}
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::ENOTEMPTY)) => {}
        Err(e) => tracing::debug!(target: "taskloom", "remove the job root {}: {e}", dir.display()),
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
    .map_err(|e| Error::os(format!("chmod {}", dir.join("cgroup.procs").display()), e))?;
    for f in ["cgroup.kill", "cgroup.freeze", "freezer.state"] {
        // Owned by root unless we are root: best effort, as the kernel allows.
        fs::set_permissions(dir.join(f), fs::Permissions::from_mode(file_mode))
            .or_log(|| format!("share {}", dir.join(f).display()));
    }
    Ok(())
}

/// Hands every controller a cgroup has on to its children (those taskloom
/// uses: the limits', and `io` for the job's I/O accounting).
pub(crate) fn enable_controllers(dir: &Path) {
    let have = cgroup::read(&dir.join("cgroup.controllers")).unwrap_or_default();
    for c in have
        .split_whitespace()
        .filter(|c| ["pids", "memory", "cpu", "cpuset", "io"].contains(c))
    {
        cgroup::write(&dir.join("cgroup.subtree_control"), &format!("+{c}"))
            .or_log(|| format!("enable {c} in {}", dir.display()));
    }
}

impl Direct {
    /// `io.max` per device (cgroup2 with the io controller only): the
    /// devices limited before and no longer are set back to `max`.
    fn apply_io_rates(&self, limits: &JobLimits, before: &JobLimits) -> Result<()> {
        if limits.io_rates.is_empty() && before.io_rates.is_empty() {
            return Ok(());
        }
        let dir = match &self.v2 {
            Some(d) if self.v2_controllers().iter().any(|n| n == "io") => d,
            _ if limits.io_rates.is_empty() => return Ok(()),
            _ => {
                return Err(Error::Unsupported {
                    what: "an I/O rate limit (io.max)",
                    reason:
                        "this job has no cgroup2 io controller (see `taskloom job caps`, io-rate)"
                            .into(),
                });
            }
        };
        let mut lines = Vec::new();
        for r in &limits.io_rates {
            let dev = cgroup::block_device_of(&r.device)?;
            let v = |x: Option<u64>| x.map_or_else(|| "max".to_owned(), |n| n.to_string());
            lines.push(format!(
                "{dev} rbps={} wbps={} riops={} wiops={}",
                v(r.read_bytes_per_sec),
                v(r.write_bytes_per_sec),
                v(r.read_iops),
                v(r.write_iops)
            ));
        }
        for r in &before.io_rates {
            if !limits.io_rates.iter().any(|n| n.device == r.device)
                && let Ok(dev) = cgroup::block_device_of(&r.device)
            {
                lines.push(format!("{dev} rbps=max wbps=max riops=max wiops=max"));
            }
        }
        for line in lines {
            cgroup::write(&dir.join("io.max"), &line)?;
        }
        Ok(())
    }

    /// `memory.low` and `memory.high` (cgroup2 only), written when set now or before.
    fn apply_memory_bounds(&self, limits: &JobLimits, before: &JobLimits) -> Result<()> {
        let asked = [
            ("memory.low", limits.memory_low, before.memory_low),
            ("memory.high", limits.memory_high, before.memory_high),
        ];
        if asked
            .iter()
            .all(|(_, now, was)| now.is_none() && was.is_none())
        {
            return Ok(());
        }
        match self.limit_dir(Controller::Memory) {
            Some((dir, Format::V2)) => {
                for (file, now, _) in asked {
                    let value = match (file, now) {
                        (_, Some(b)) => b.to_string(),
                        ("memory.low", None) => "0".into(),
                        (_, None) => "max".into(),
                    };
                    cgroup::write(&dir.join(file), &value)?;
                }
                Ok(())
            }
            _ if limits.memory_low.is_none() && limits.memory_high.is_none() => Ok(()),
            Some((_, Format::V1)) => Err(Error::Unsupported {
                what: "a memory floor or ceiling (memory.low, memory.high)",
                reason: "the memory controller is cgroup v1 here; those files are cgroup2's".into(),
            }),
            None => Err(unavailable("memory floor or ceiling", Controller::Memory)),
        }
    }
}

/// The v1 controllers a job's limits need (on a hybrid machine).
fn needed_controllers(l: &JobLimits) -> Vec<Controller> {
    let mut v = Vec::new();
    if l.active_processes.is_some() {
        v.push(Controller::Pids);
    }
    if l.job_memory.is_some()
        || l.memory_low.is_some()
        || l.memory_high.is_some()
        || l.notify.job_memory.is_some()
    {
        v.push(Controller::Memory);
    }
    if l.cpu_rate_percent.is_some() || l.cpu_weight.is_some() {
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

/// A write refused with ESRCH: the process is gone.
pub(crate) fn no_such(e: Error, pid: i32) -> Error {
    match &e {
        Error::Cgroup { source, .. } if source.raw_os_error() == Some(libc::ESRCH) => {
            Error::NoSuchProcess { pid }
        }
        _ => e,
    }
}

/// Lists the jobs below `dir` into `out`, nested ones as `prefix/name`.
pub(crate) fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
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
