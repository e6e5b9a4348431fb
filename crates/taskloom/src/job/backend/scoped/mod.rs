//! The systemd-delegated backend: a transient scope per top-level job
//! (`Delegate=yes`, `KillSignal=SIGKILL`), started by the manager with the
//! job's guardian in it; the guardian moves to `<scope>/@keeper`, the job is
//! `<scope>/<name>` with its leaves and nested jobs below, made directly
//! (the scope is ours). A process outside the scope may not move a process
//! into it (a user's migration needs write access to the cgroups above
//! both ends, which are systemd's), so from outside a spawned child starts
//! suspended and the manager moves it (`AttachProcessesToUnit`) before its
//! first instruction; assign likewise. See `systemd.rs` for the D-Bus
//! side and the lifetime.

use std::fs;
use std::path::{Path, PathBuf};

use super::direct::cgroup;
use super::direct::{Direct, Mover, enable_controllers, walk, write_procs};
use super::{Accounting, Containment, JobBackend, Marks};
use crate::error::{Error, OrLog, Result};
use crate::job::{JobLimits, guardian};

pub(crate) mod systemd;
use crate::process::{CgroupPlacement, Process, ProcessBuilder};

/// A job inside a systemd scope (a top-level job's own, or its top-level
/// job's for a nested one).
#[derive(Debug)]
pub(crate) struct Scoped {
    inner: Direct,
    /// The scope unit of the top-level job.
    unit: String,
}

impl Scoped {
    /// `CreateJobObject` for a top-level job: a transient scope delegated
    /// to us, holding the job's guardian (returned waiting for its plan),
    /// with the job below it. On failure the scope is stopped (systemd
    /// kills the guardian and removes what was made).
    pub(crate) fn create(
        name: &str,
        contain: Option<Containment>,
    ) -> Result<(Scoped, guardian::Waiting)> {
        let unit = systemd::unit_name(name);
        // The guardian first: a scope starts with a process in it.
        // The scope's keeper also counts the job's processes (it is outermost).
        let waiting = guardian::spawn(true)?;
        systemd::with_manager(|mgr| {
            mgr.start_scope(&unit, waiting.pid as u32, &format!("taskloom job {name}"))
        })?;
        let made = (|| -> Result<Scoped> {
            // The guardian is the scope's one process: its cgroup is the
            // scope's (one file read instead of two calls to the manager).
            let scope = match guardian_cgroup(waiting.pid, &unit) {
                Some(dir) => Some(dir),
                None => systemd::with_manager(|mgr| mgr.unit_dir(&unit))?,
            };
            let scope = scope.ok_or_else(|| Error::Systemd {
                what: format!("start the scope {unit}"),
                reason: "it has no cgroup".into(),
            })?;
            // No process may stay in a cgroup that hands controllers down:
            // the guardian moves to a leaf of its own.
            let keeper = scope.join("@keeper");
            fs::create_dir(&keeper).map_err(|e| {
                Error::os(
                    format!("create the guardian's cgroup {}", keeper.display()),
                    e,
                )
            })?;
            cgroup::write(&keeper.join("cgroup.procs"), &waiting.pid.to_string())?;
            enable_controllers(&scope);
            let roots = cgroup::Roots {
                v2: Some(scope),
                v2_controllers: Vec::new(),
                v2_enable_in: None,
                v1: Vec::new(),
                problems: Vec::new(),
            };
            // The namespace helper is moved in as any process is: from
            // outside the scope, by the manager.
            let inside = roots.v2.as_deref().is_some_and(inside_scope);
            let attach = |dir: &Path, pid: i32| {
                if inside {
                    return write_procs(dir, pid);
                }
                let scope = roots.v2.as_deref().unwrap_or(dir);
                let sub = Path::new("/").join(dir.strip_prefix(scope).unwrap_or(dir));
                systemd::with_manager(|m| m.attach(&unit, &sub.to_string_lossy(), pid as u32))
            };
            let mover: Mover<'_> = &attach;
            Ok(Scoped {
                inner: Direct::create(name, &roots, contain.map(|c| (mover, c)))?,
                unit: unit.clone(),
            })
        })();
        match made {
            Ok(job) => Ok((job, waiting)),
            Err(e) => {
                systemd::with_manager(|mgr| mgr.stop(&unit))
                    .or_log(|| format!("stop scope {unit} after a failed creation"));
                Err(e)
            }
        }
    }

    /// `OpenJobObject`: the top-level job's scope says where the job is.
    pub(crate) fn open(name: &str) -> Result<(Scoped, JobLimits)> {
        let top = name.split('/').next().unwrap_or(name);
        let unit = systemd::unit_name(top);
        let Some(scope) = systemd::with_manager(|mgr| mgr.unit_dir(&unit))? else {
            return Err(Error::NoSuchJob(name.to_owned()));
        };
        let (inner, limits) = Direct::open(name, &scope_roots(scope))?;
        Ok((Scoped { inner, unit }, limits))
    }

    /// The scope's directory and whether this process is outside it (then
    /// only the manager may move processes in).
    fn outside(&self) -> Option<PathBuf> {
        let scope = self
            .inner
            .v2()?
            .ancestors()
            .find(|a| a.file_name().is_some_and(|n| n == self.unit.as_str()))?
            .to_owned();
        (!inside_scope(&scope)).then_some(scope)
    }

    /// Has the manager move `pid` into `leaf`, a cgroup below `scope`.
    fn attach(&self, scope: &Path, leaf: &Path, pid: i32) -> Result<()> {
        let sub = Path::new("/").join(leaf.strip_prefix(scope).unwrap_or(leaf));
        systemd::with_manager(|m| m.attach(&self.unit, &sub.to_string_lossy(), pid as u32))
    }

    /// Whether this is the top-level job, the one that owns the scope.
    fn owns_scope(&self) -> bool {
        !self.inner.name().contains('/')
    }
}

impl JobBackend for Scoped {
    fn create_nested(
        &self,
        name: &str,
        leaf: &str,
        contain: Option<Containment>,
    ) -> Result<Box<dyn JobBackend>> {
        let outside = self.outside();
        let mover = |dir: &Path, pid: i32| match &outside {
            Some(scope) => self.attach(scope, dir, pid),
            None => write_procs(dir, pid),
        };
        let mover: Mover<'_> = &mover;
        Ok(Box::new(Scoped {
            inner: self.inner.nested(name, leaf, contain.map(|c| (mover, c)))?,
            unit: self.unit.clone(),
        }))
    }

    fn containment(&self) -> Option<bool> {
        self.inner.containment()
    }

    fn hides_services(&self) -> bool {
        self.inner.hides_services()
    }

    fn foreign_job_of(&self, pid: i32) -> Result<Option<String>> {
        self.inner.foreign_job_of(pid)
    }

    fn mode(&self) -> Option<u32> {
        self.inner.mode()
    }

    fn chain(&self) -> Vec<PathBuf> {
        JobBackend::chain(&self.inner)
    }

    fn secure(&self, mode: u32) -> Result<()> {
        self.inner.secure(mode)
    }

    fn apply_limits(&self, limits: &JobLimits, before: &JobLimits) -> Result<()> {
        self.inner.apply_limits(limits, before)?;
        // A weight counts against siblings: a top-level job is the only child
        // of its own scope, so the scope carries it (nested jobs are siblings
        // inside it, and their own cpu.weight does).
        if !self.inner.name().contains('/')
            && (limits.cpu_weight.is_some() || before.cpu_weight.is_some())
            && limits.cpu_weight != before.cpu_weight
        {
            let w = limits.cpu_weight.map(|w| u64::from(w) * 20);
            systemd::with_manager(|m| m.set_cpu_weight(&self.unit, w))?;
        }
        Ok(())
    }

    fn spawn(&self, builder: ProcessBuilder, limits: &JobLimits) -> Result<Process> {
        let Some(scope) = self.outside() else {
            return self.inner.spawn_placed(builder, limits);
        };
        // From outside: the child starts suspended (stopped after `execve`,
        // before its first instruction), the manager moves it into the
        // job's leaf, and only then it runs (unless asked for suspended).
        // A debugged child waits in its exec stop for its debugger instead.
        let resume = !builder.is_suspended() && !builder.debugged;
        let leaf = match self.inner.open_leaf()? {
            Some((leaf, _)) => leaf,
            None => return Err(Error::NoSuchJob(self.inner.name().to_owned())),
        };
        // A contained job's namespace is joined before `execve`, while the
        // child is still outside; the manager then moves it below the root.
        let builder = match self.inner.namespaces() {
            Some(ns) => builder.cgroup_placement(CgroupPlacement {
                namespaces: Some(ns),
                ..Default::default()
            }),
            None => builder,
        };
        let mut child = builder.suspended(true).spawn()?;
        if let Err(e) = self.attach(&scope, &leaf, child.pid()) {
            child
                .terminate()
                .or_log(|| format!("kill process {} the manager did not move", child.pid()));
            child
                .wait()
                .or_log(|| format!("reap process {}", child.pid()));
            return Err(e);
        }
        if resume {
            child.resume()?;
        }
        Ok(child)
    }

    fn assign(&self, pid: i32, limits: &JobLimits, alive: &dyn Fn() -> bool) -> Result<()> {
        match self.outside() {
            Some(scope) => self.inner.assign_with(pid, limits, alive, &|leaf, pid| {
                self.attach(&scope, leaf, pid)
            }),
            None => self.inner.assign(pid, limits, alive),
        }
    }

    fn pids(&self) -> Result<Vec<i32>> {
        self.inner.pids()
    }

    fn accounting(&self, limits: &JobLimits) -> Result<Accounting> {
        self.inner.accounting(limits)
    }

    fn kill_all(&self) -> Result<usize> {
        self.inner.kill_all()
    }

    fn is_empty(&self) -> Result<bool> {
        self.inner.is_empty()
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        self.inner.set_frozen(frozen)
    }

    fn marks(&self) -> Marks {
        self.inner.marks()
    }

    fn guardian_plan(&self) -> guardian::Plan {
        self.inner.guardian_plan()
    }

    fn arm_init(&self, holders: Option<std::os::fd::BorrowedFd<'_>>) -> Result<()> {
        self.inner.arm_init(holders)
    }

    fn remove(&self) -> Result<()> {
        let removed = self.inner.remove();
        // The scope goes with its top-level job (systemd ends the guardian).
        if self.owns_scope() {
            systemd::with_manager(|m| m.stop(&self.unit))
                .or_log(|| format!("stop scope {}", self.unit));
        }
        removed
    }
}

/// The cgroup2 directory of process `pid` when it is the scope `unit`'s
/// (its last component is the unit's name).
fn guardian_cgroup(pid: i32, unit: &str) -> Option<PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    cgroup::placement_of(&text)
        .into_iter()
        .find(|(h, _, _)| h.v2)
        .map(|(_, _, dir)| dir)
        .filter(|dir| dir.file_name().is_some_and(|n| n == unit))
}

/// Whether this process is inside the scope whose directory is `scope`.
fn inside_scope(scope: &Path) -> bool {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    cgroup::placement_of(&own)
        .iter()
        .any(|(h, _, dir)| h.v2 && dir.starts_with(scope))
}

/// Roots whose only hierarchy is a scope's cgroup2 directory.
/// `OpenJobObject` of a job another manager made: root's (the system
/// manager's `system.slice`) or another user's (their manager's
/// `app.slice`). Found on the file system, since no manager but our own
/// answers us; opened as plain directories (what this user may then do
/// with it the kernel checks against its mode). `None` when there is none.
pub(crate) fn open_elsewhere(name: &str) -> Option<Result<(Direct, JobLimits)>> {
    let top = name.split('/').next().unwrap_or(name);
    let unit = systemd::unit_name(top);
    let mount = systemd::cgroup2_mount();
    let mut scopes = vec![mount.join("system.slice").join(&unit)];
    let mut users: Vec<PathBuf> = fs::read_dir(mount.join("user.slice"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|slice| fs::read_dir(slice.path()).into_iter().flatten().flatten())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("user@"))
        })
        .map(|service| service.path().join("app.slice").join(&unit))
        .collect();
    users.sort();
    scopes.extend(users);
    let scope = scopes.into_iter().find(|s| s.is_dir())?;
    Some(Direct::open(name, &scope_roots(scope)))
}

fn scope_roots(scope: PathBuf) -> cgroup::Roots {
    cgroup::Roots {
        v2: Some(scope),
        v2_controllers: Vec::new(),
        v2_enable_in: None,
        v1: Vec::new(),
        problems: Vec::new(),
    }
}

/// Every job of the manager's scopes, nested ones as `a/b`.
pub(crate) fn list() -> Result<Vec<String>> {
    let scopes = systemd::with_manager(|mgr| {
        let mut found = Vec::new();
        for top in mgr.jobs()? {
            if let Some(scope) = mgr.unit_dir(&systemd::unit_name(&top))? {
                found.push((top, scope));
            }
        }
        Ok(found)
    })?;
    let mut out = Vec::new();
    for (top, scope) in scopes {
        out.push(top.clone());
        walk(&scope.join(&top), &top, &mut out);
    }
    Ok(out)
}
