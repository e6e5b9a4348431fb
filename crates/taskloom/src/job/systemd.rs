//! Delegation from systemd: a job as a transient scope with `Delegate=yes`.
//!
//! On a machine whose init is systemd, the cgroups above a process belong to
//! its manager (the user's manager for a login, the system manager for
//! root): a user may write none of them, and systemd's single-writer rule
//! says no one else should. So taskloom asks the manager, over D-Bus (zbus),
//! for a scope per top-level job (`taskloom-<name>.scope`), as
//! `systemd-run --scope -p Delegate=yes` does:
//!
//! ```text
//! <manager>/…/taskloom-<name>.scope     the scope: delegated to us, holds no process
//!   @keeper/                            the job's guardian, the scope's first process
//!   <name>/                             the job (limits here: controllers enabled above)
//!     @0/                               its processes
//!     <nested>/                         nested jobs
//! ```
//!
//! Lifetime: the scope lives while it holds a process; the guardian is that
//! process. With kill-on-close the guardian ends the job when the last
//! handle is gone and then exits, and systemd removes the scope; a named job
//! without kill-on-close keeps its guardian (which only waits) until
//! `Job::delete` stops the scope. Nothing of a `taskloom run` is left.

use std::path::{Path, PathBuf};

use zbus::blocking::{Connection, Proxy};
use zbus::zvariant::{OwnedObjectPath, Value};

use crate::error::{Error, Result};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// The unit of a top-level job.
pub(crate) fn unit_name(job: &str) -> String {
    format!("taskloom-{job}.scope")
}

/// The job a scope unit's directory name stands for (`taskloom-build.scope` → `build`).
pub(crate) fn job_of_unit(unit: &str) -> Option<&str> {
    unit.strip_prefix("taskloom-")?.strip_suffix(".scope")
}

/// Whether systemd is this machine's init (`sd_booted`).
pub(crate) fn booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Whether the manager of this process's cgroups can be asked: the system
/// manager for root, the user's own manager (on the session bus) otherwise.
pub(crate) fn reachable() -> bool {
    if !booted() {
        return false;
    }
    if rustix::process::geteuid().is_root() {
        return Path::new("/run/dbus/system_bus_socket").exists()
            || Path::new("/run/systemd/private").exists();
    }
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty())
        || std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists())
}

fn bus_error(what: String) -> impl FnOnce(zbus::Error) -> Error {
    move |e| Error::Systemd {
        what,
        reason: e.to_string(),
    }
}

/// A connection to the manager.
pub(crate) struct Manager {
    conn: Connection,
    /// Whether it is the user's manager (session bus) rather than the system's.
    pub user: bool,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").field("user", &self.user).finish()
    }
}

impl Manager {
    /// Connects to the manager of this process's cgroups.
    pub fn connect() -> Result<Manager> {
        let user = !rustix::process::geteuid().is_root();
        let conn = if user {
            Connection::session()
        } else {
            Connection::system()
        }
        .map_err(bus_error(format!(
            "connect to the {} manager",
            if user { "user's systemd" } else { "system" }
        )))?;
        Ok(Manager { conn, user })
    }

    fn proxy(&self, path: &str, interface: &'static str) -> Result<Proxy<'_>> {
        Proxy::new(&self.conn, DEST, path.to_owned(), interface)
            .map_err(bus_error(format!("reach systemd at {path}")))
    }

    /// Starts `unit` as a transient scope holding `pid`, delegated to us, and
    /// waits until systemd has done it.
    pub fn start_scope(&self, unit: &str, pid: u32, description: &str) -> Result<()> {
        let mgr = self.proxy(PATH, MANAGER)?;
        // Signals first, so the job's end cannot pass unseen.
        let _: () = mgr
            .call("Subscribe", &())
            .map_err(bus_error("subscribe to systemd's signals".into()))?;
        let mut removed = mgr
            .receive_signal("JobRemoved")
            .map_err(bus_error("watch systemd's jobs".into()))?;
        let props: Vec<(&str, Value<'_>)> = vec![
            ("Description", Value::from(description)),
            ("PIDs", Value::from(vec![pid])),
            ("Delegate", Value::from(true)),
            ("CollectMode", Value::from("inactive-or-failed")),
            // Stopping the scope ends the job at once, as TerminateJobObject
            // does (the guardian ignores SIGTERM, so a TERM would wait 90 s).
            ("KillSignal", Value::from(libc::SIGKILL)),
        ];
        let aux: Vec<(&str, Vec<(&str, Value<'_>)>)> = Vec::new();
        let job: OwnedObjectPath = mgr
            .call("StartTransientUnit", &(unit, "fail", props, aux))
            .map_err(|e| match &e {
                zbus::Error::MethodError(name, _, _)
                    if name.as_str() == "org.freedesktop.systemd1.UnitExists" =>
                {
                    Error::JobExists(job_of_unit(unit).unwrap_or(unit).to_owned())
                }
                _ => Error::Systemd {
                    what: format!("start the scope {unit}"),
                    reason: e.to_string(),
                },
            })?;
        for msg in &mut removed {
            let Ok((_, path, _, result)) = msg
                .body()
                .deserialize::<(u32, OwnedObjectPath, String, String)>()
            else {
                continue;
            };
            if path == job {
                return match result.as_str() {
                    "done" => Ok(()),
                    other => Err(Error::Systemd {
                        what: format!("start the scope {unit}"),
                        reason: format!("systemd's job ended with \"{other}\""),
                    }),
                };
            }
        }
        Err(Error::Systemd {
            what: format!("start the scope {unit}"),
            reason: "the bus closed before systemd said the job was done".into(),
        })
    }

    /// Moves `pid` (a process of ours) into `subcgroup` of `unit`
    /// (`AttachProcessesToUnit`): the manager does the migration a user may
    /// not do from outside the unit.
    pub fn attach(&self, unit: &str, subcgroup: &str, pid: u32) -> Result<()> {
        let mgr = self.proxy(PATH, MANAGER)?;
        mgr.call::<_, _, ()>("AttachProcessesToUnit", &(unit, subcgroup, vec![pid]))
            .map_err(bus_error(format!(
                "move process {pid} into {unit}{subcgroup}"
            )))
    }

    /// The cgroup directory of a running unit, `None` when there is no such unit.
    pub fn unit_dir(&self, unit: &str) -> Result<Option<PathBuf>> {
        let mgr = self.proxy(PATH, MANAGER)?;
        let path: OwnedObjectPath = match mgr.call("GetUnit", &(unit,)) {
            Ok(p) => p,
            Err(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
            {
                return Ok(None);
            }
            Err(e) => return Err(bus_error(format!("look up {unit}"))(e)),
        };
        let scope = self.proxy(path.as_str(), "org.freedesktop.systemd1.Scope")?;
        let group: String = scope
            .get_property("ControlGroup")
            .map_err(bus_error(format!("read the cgroup of {unit}")))?;
        if group.is_empty() {
            return Ok(None);
        }
        Ok(Some(cgroup2_mount().join(group.trim_start_matches('/'))))
    }

    /// Stops a unit (systemd kills what is left in it and removes its cgroup);
    /// does not wait.
    pub fn stop(&self, unit: &str) -> Result<()> {
        let mgr = self.proxy(PATH, MANAGER)?;
        match mgr.call::<_, _, OwnedObjectPath>("StopUnit", &(unit, "replace")) {
            Ok(_) => Ok(()),
            Err(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
            {
                Ok(())
            }
            Err(e) => Err(bus_error(format!("stop {unit}"))(e)),
        }
    }

    /// The manager's own cgroup directory and the controllers it was given
    /// (what a scope it starts with `Delegate=yes` can have).
    pub fn delegation(&self) -> Result<(PathBuf, Vec<String>)> {
        let mgr = self.proxy(PATH, MANAGER)?;
        let group: String = mgr
            .get_property("ControlGroup")
            .map_err(bus_error("read the manager's cgroup".into()))?;
        let dir = cgroup2_mount().join(group.trim_start_matches('/'));
        let controllers = std::fs::read_to_string(dir.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        Ok((dir, controllers))
    }

    /// The top-level jobs: every running `taskloom-*.scope` of this manager.
    pub fn jobs(&self) -> Result<Vec<String>> {
        let mgr = self.proxy(PATH, MANAGER)?;
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            OwnedObjectPath,
            u32,
            String,
            OwnedObjectPath,
        );
        let rows: Vec<Row> = mgr
            .call(
                "ListUnitsByPatterns",
                &(vec!["active", "activating"], vec!["taskloom-*.scope"]),
            )
            .map_err(bus_error("list taskloom's scopes".into()))?;
        let mut names: Vec<String> = rows
            .into_iter()
            .filter_map(|r| job_of_unit(&r.0).map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }
}

/// Where the cgroup2 hierarchy is mounted (pure v2: `/sys/fs/cgroup`).
pub(crate) fn cgroup2_mount() -> PathBuf {
    super::cgroup::hierarchies()
        .iter()
        .find(|h| h.v2)
        .map(|h| h.mount.clone())
        .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_jobs_map_both_ways() {
        assert_eq!(unit_name("build"), "taskloom-build.scope");
        assert_eq!(job_of_unit("taskloom-build.scope"), Some("build"));
        assert_eq!(job_of_unit("taskloom-a.b-c.scope"), Some("a.b-c"));
        assert_eq!(job_of_unit("run-r1.scope"), None);
        assert_eq!(job_of_unit("taskloom-x.service"), None);
    }
}
