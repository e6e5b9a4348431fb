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

use super::{
    Accounting, Containment, JobBackend, LIMITS_XATTR, Marks, leaf_numbers, limits_to_json,
    read_limits, unavailable,
};
use crate::cpuset::CpuSet;
use crate::error::{Error, OrLog, Result};
use crate::job::{Capability, JobLimits, cgroup, guardian, job_of, layout::Controller};
use crate::linux::NS_ROOT_XATTR;
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

/// The cgroup where the pid namespace's init of job `name` (cgroup2
/// directory `dir`) lives: beside the outermost job of its chain that this
/// handle knows, in the root that holds it (`@init.<name>`, a nested
/// job's `/` spelled `@`, which no name holds). It is outside the job's
/// own cgroup namespace, so no member can freeze, move or count it, and
/// outside every job this handle knows of, so no terminate (the job's own
/// or an enclosing one's) kills it: the namespace stays for the next spawn.
pub(crate) fn init_dir_of(name: &str, dir: &Path) -> Option<PathBuf> {
    let root = dir.ancestors().nth(name.split('/').count())?;
    Some(root.join(format!("@init.{}", name.replace('/', "@"))))
}

/// Roots the namespaces of the job whose (still empty) cgroup2 directory is
/// `v2`: a cgroup namespace there, and where the machine lets this process,
/// a pid and a mount namespace too, the init moved to [`init_dir_of`] and
/// the directory marked with its own path ([`NS_ROOT_XATTR`]). Where the
/// pid and mount namespaces cannot be made, the job has the cgroup
/// namespace alone (traced).
fn contain_job(name: &str, v2: &Path, mover: Mover<'_>, how: Containment) -> Result<Namespaces> {
    let unprivileged = !rustix::process::geteuid().is_root();
    let place = |pid| mover(v2, pid);
    let h = crate::linux::hierarchies().iter().find(|h| h.v2);
    let (Some(h), Some(init_dir), Some(isolation)) =
        (h, init_dir_of(name, v2), isolation(how.hide_services))
    else {
        return Namespaces::rooted_by(unprivileged, &place);
    };
    let ns = match Namespaces::isolated_by(unprivileged, Some(&isolation), &place) {
        Ok(ns) => ns,
        // Services hidden is a promise: no fallback that would break it.
        Err(e) if how.hide_services => return Err(e),
        Err(e) => {
            tracing::debug!(
                target: "taskloom",
                "the job at {} gets no pid and mount namespace of its own: {e}",
                v2.display()
            );
            return Namespaces::rooted_by(unprivileged, &place);
        }
    };
    let init = ns.init_pid().unwrap_or(0);
    // The full path of the job in the hierarchy (also seen from inside an
    // enclosing job, whose mount root is its own path).
    let full = v2
        .strip_prefix(&h.mount)
        .map(|rel| h.mount_root.join(rel))
        .unwrap_or_else(|_| v2.to_owned());
    let parked = (|| -> Result<()> {
        cgroup::ensure_dir(&init_dir)
            .map_err(|e| Error::os(format!("create the init cgroup {}", init_dir.display()), e))?;
        mover(&init_dir, init)?;
        rustix::fs::setxattr(
            v2,
            NS_ROOT_XATTR,
            full.as_os_str().as_bytes(),
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(|e| Error::os(format!("mark {} with its path", v2.display()), e.into()))
    })();
    if let Err(e) = parked {
        // Dropping the namespaces closes the init's socket: it ends by itself.
        drop(ns);
        let _ = fs::remove_dir(&init_dir);
        return Err(e);
    }
    Ok(ns)
}

/// What a contained job's mount namespace holds: a job-rooted cgroup2 view
/// over this process's cgroup2 mount and, with `hide_services`, covers over
/// [`service_endpoints`]. `None` without a cgroup2 mount.
fn isolation(hide_services: bool) -> Option<crate::process::Isolation> {
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).ok();
    let h = crate::linux::hierarchies().iter().find(|h| h.v2)?;
    let mut isolation = crate::process::Isolation {
        cgroup2_mounts: vec![c(&h.mount)?],
        ..Default::default()
    };
    if hide_services {
        let (files, dirs) = service_endpoints();
        isolation.hide_files = files.iter().filter_map(|p| c(p)).collect();
        isolation.hide_dirs = dirs.iter().filter_map(|p| c(p)).collect();
    }
    Some(isolation)
}

/// Where a member could ask a service manager to start a process outside
/// its job: the user's session bus and systemd's private socket (in
/// `$XDG_RUNTIME_DIR`, and the bus `DBUS_SESSION_BUS_ADDRESS` names by
/// path), the system bus and the system manager's private socket.
/// Returns (sockets, directories) that exist. A bus on an abstract socket
/// cannot be hidden by a mount (`job caps` says so).
fn service_endpoints() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut files = vec![
        PathBuf::from("/run/dbus/system_bus_socket"),
        PathBuf::from("/run/systemd/private"),
    ];
    let mut dirs = Vec::new();
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR") {
        let run = PathBuf::from(run);
        files.push(run.join("bus"));
        dirs.push(run.join("systemd"));
    }
    if let Some(addr) = std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
        for part in addr.to_string_lossy().split(';') {
            if let Some(path) = part
                .strip_prefix("unix:")
                .and_then(|rest| rest.split(',').find_map(|kv| kv.strip_prefix("path=")))
            {
                files.push(PathBuf::from(path));
            }
        }
    }
    files.sort();
    files.dedup();
    let exists = |p: &PathBuf, dir: bool| {
        fs::symlink_metadata(p).is_ok_and(|m| m.is_dir() == dir && !m.file_type().is_symlink())
    };
    files.retain(|p| exists(p, false));
    dirs.retain(|p| exists(p, true));
    (files, dirs)
}

/// Moves a process into a cgroup directory: a write of its `cgroup.procs`,
/// or, from outside a systemd scope, the manager's hand.
pub(crate) type Mover<'a> = &'a dyn Fn(&Path, i32) -> Result<()>;

/// The [`Mover`] for cgroups this process may write.
pub(crate) fn write_procs(dir: &Path, pid: i32) -> Result<()> {
    cgroup::write(&dir.join("cgroup.procs"), &pid.to_string())
}

/// How a hierarchy spells a controller's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// cgroup v1.
    V1,
    /// cgroup2.
    V2,
}

impl Format {
    /// The job memory limit: the file and the value to write.
    fn memory_limit(self, bytes: Option<u64>) -> (&'static str, String) {
        match (self, bytes) {
            (Format::V1, Some(b)) => ("memory.limit_in_bytes", b.to_string()),
            (Format::V1, None) => ("memory.limit_in_bytes", "-1".into()),
            (Format::V2, Some(b)) => ("memory.max", b.to_string()),
            (Format::V2, None) => ("memory.max", "max".into()),
        }
    }

    /// The CPU rate cap (percent of one CPU): the files and values to write, in order.
    fn cpu_rate(self, percent: Option<u32>) -> Vec<(&'static str, String)> {
        const PERIOD: u64 = 100_000;
        match self {
            Format::V1 => {
                let quota = percent
                    .map(|p| (p as u64 * PERIOD / 100).max(1000) as i64)
                    .unwrap_or(-1);
                vec![
                    ("cpu.cfs_period_us", PERIOD.to_string()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ]
            }
            Format::V2 => {
                let value = match percent {
                    Some(p) => format!("{} {PERIOD}", (p as u64 * 1000).max(1000)),
                    None => format!("max {PERIOD}"),
                };
                vec![("cpu.max", value)]
            }
        }
    }

    /// Memory now, at its peak, and OOM kills, from a memory directory.
    fn memory_usage(self, dir: &Path) -> (Option<u64>, Option<u64>, Option<u64>) {
        let num = |f: &str| {
            cgroup::read(&dir.join(f))
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
        };
        match self {
            Format::V1 => (
                num("memory.usage_in_bytes"),
                num("memory.max_usage_in_bytes"),
                cgroup::keyed(&dir.join("memory.oom_control"), "oom_kill"),
            ),
            Format::V2 => (
                num("memory.current"),
                num("memory.peak"),
                cgroup::keyed(&dir.join("memory.events"), "oom_kill"),
            ),
        }
    }

    /// User and kernel CPU time of a job, from its cgroup2 directory or its
    /// v1 cpuacct directory.
    fn cpu_time(self, dir: &Path) -> (Duration, Duration) {
        match self {
            Format::V2 => {
                let stat = dir.join("cpu.stat");
                (
                    Duration::from_micros(cgroup::keyed(&stat, "user_usec").unwrap_or(0)),
                    Duration::from_micros(cgroup::keyed(&stat, "system_usec").unwrap_or(0)),
                )
            }
            Format::V1 => {
                let tick = crate::linux::clock_ticks_per_second();
                let stat = dir.join("cpuacct.stat");
                let ms = |key| cgroup::keyed(&stat, key).unwrap_or(0) * 1000 / tick;
                (
                    Duration::from_millis(ms("user")),
                    Duration::from_millis(ms("system")),
                )
            }
        }
    }
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
        } else if limits.cpu_rate_percent.is_some() {
            return Err(unavailable("CPU rate limit", Controller::Cpu));
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
        let (memory_current, memory_peak, oom_kills) = match self
            .limit_dir(Controller::Memory)
            .filter(|_| used(Controller::Memory))
        {
            Some((dir, format)) => format.memory_usage(dir),
            None => (None, None, None),
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
            process_limit_hits: pids_dir.and_then(cgroup::pids_limit_hits),
            frozen,
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

/// Whether members started by a job's handle are kept in (a cgroup
/// namespace per job), and what a member can still do.
fn containment_capability(has_v2: bool) -> (bool, String) {
    let still = "still possible: processes put in with `job assign` keep the namespaces they had, and so does the first process a handle opened by name (`Job::open`) starts in a job without a member to take them from; a member running as root in the machine's own user namespace can enter other namespaces (setns) and leave, and can signal and trace the guardian and the owner";
    let services = "a member can still ask the user's service manager to start a process outside the job (`systemd-run --user`), as a Windows process can through WMI, unless the job hides the services (`run --no-services`, `JobBuilder::hide_services`; a bus on an abstract socket is not hidden)";
    if !has_v2 {
        return (
            false,
            "needs cgroup2: a member that may write cgroup.procs above its job (root; the owner of a delegated subtree) can move itself out".into(),
        );
    }
    if !cgroup::namespaces_delegate() {
        return (
            false,
            "cgroup2 is not mounted with nsdelegate here, so a cgroup namespace does not bound migration: a member that may write cgroup.procs above its job (root; the owner of a delegated subtree) can move itself out".into(),
        );
    }
    let root = rustix::process::geteuid().is_root();
    let user = if root {
        ""
    } else {
        ", inside a user namespace that maps only you (set-user-ID programs such as sudo gain nothing there)"
    };
    // What a job would get: the same helper, placed nowhere.
    match Namespaces::isolated_by(!root, isolation(false).as_ref(), &|_| Ok(())) {
        Ok(ns) if ns.is_isolated() => (
            true,
            format!(
                "each process a job's handle starts (`run`, `Job::spawn`) is in namespaces of its job's own{user}: a cgroup namespace rooted at the job (it cannot move itself or its children out, nor change the job's limits), a pid namespace (it sees and can signal only its job's processes, never the guardian or the owner, and when the job closes the kernel ends every member, also without the guardian) and a mount namespace whose cgroup2 view is the job alone (no enclosing job's limit is within reach) (`run --uncontained` turns this off); {services}; {still}"
            ),
        ),
        Ok(_) | Err(_) => match Namespaces::rooted_by(!root, &|_| Ok(())) {
            Ok(_) => (
                true,
                format!(
                    "each process a job's handle starts (`run`, `Job::spawn`) is in a cgroup namespace rooted at its job{user}: it cannot move itself or its children out, nor change the job's limits (`run --uncontained` turns this off); but this machine gives it no pid and mount namespace of its own, so a member running as you can signal the guardian and the owner, and reach an enclosing job's limits through the machine's cgroup2 mount; {services}; {still}"
                ),
            ),
            Err(e) => (
                false,
                format!(
                    "an unprivileged cgroup namespace needs a user namespace, and this machine refuses one ({e}); the owner of the delegated subtree can move a member out"
                ),
            ),
        },
    }
}

/// Hands every controller a cgroup has on to its children (those taskloom uses).
pub(crate) fn enable_controllers(dir: &Path) {
    let have = cgroup::read(&dir.join("cgroup.controllers")).unwrap_or_default();
    for c in have
        .split_whitespace()
        .filter(|c| ["pids", "memory", "cpu", "cpuset"].contains(c))
    {
        cgroup::write(&dir.join("cgroup.subtree_control"), &format!("+{c}"))
            .or_log(|| format!("enable {c} in {}", dir.display()));
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

/// How each job feature is enforced by cgroup directories below `roots`;
/// `manager` names the systemd manager that delegated them, if one did.
pub(crate) fn capabilities(roots: &cgroup::Roots, manager: Option<&str>) -> Vec<Capability> {
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
    push(
        "priority",
        (
            true,
            "nice of each member, set at spawn/assign/set (a member with CAP_SYS_NICE can raise its own)".into(),
        ),
    );
    push("process-time", (true, "RLIMIT_CPU per process".into()));
    push(
        "job-time",
        (
            roots.v2.is_some() || roots.has(Controller::Cpuacct),
            "cgroup CPU accounting, enforced by a watcher while one runs (`Job::watch`, `taskloom run`)".into(),
        ),
    );
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
    push("containment", containment_capability(roots.v2.is_some()));
    push(
        "total-processes",
        total_processes_capability(roots.v2.is_some()),
    );
    caps
}

/// Whether jobs keep `TotalProcesses` here (a counter process per job,
/// listening to the kernel's process events).
fn total_processes_capability(has_v2: bool) -> (bool, String) {
    if !has_v2 {
        return (
            false,
            "not counted: the job's counter needs cgroup2 (a watcher, `job watch`, counts while it runs)"
                .into(),
        );
    }
    match crate::job::counter::available() {
        Ok(()) => (
            true,
            "the job's guardian (or one that only counts) counts every process its members start, from the kernel's process events".into(),
        ),
        Err(e) => (
            false,
            format!(
                "not counted: the kernel's process events are not available to this process ({e}; any user on Linux 6.6 and later, root before, outside user and pid namespaces); a watcher (`job watch`) counts while it runs, less exactly"
            ),
        ),
    }
}
