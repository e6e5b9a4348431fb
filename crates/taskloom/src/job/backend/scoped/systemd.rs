//! Delegation from systemd: a job as a transient scope with `Delegate=yes`.
//!
//! On a machine whose init is systemd, the cgroups above a process belong to
//! its manager (the user's manager for a login, the system manager for
//! root): a user may write none of them, and systemd's single-writer rule
//! says no one else should. So taskloom asks the manager, over D-Bus (the
//! `dbus` crate: libdbus, synchronous),
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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbus::arg::{RefArg, Variant};
use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
use dbus::blocking::{Connection, Proxy};
use dbus::message::MatchRule;

use crate::error::{Error, OrLog, Result};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long one call to the manager may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(25);

pub(crate) use crate::linux::{job_of_scope_unit as job_of_unit, scope_unit_name as unit_name};

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
        return Path::new("/run/dbus/system_bus_socket").exists();
    }
    // The user's own bus: a socket of another user's (an environment
    // carried over by `setpriv`, `sudo -E`) is no manager of ours.
    let ours = |path: &Path| {
        std::fs::metadata(path).is_ok_and(|m| {
            std::os::unix::fs::MetadataExt::uid(&m) == rustix::process::geteuid().as_raw()
        })
    };
    let from_address = std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .ok()
        .filter(|a| !a.is_empty())
        .map(|a| {
            // `unix:path=/run/user/1000/bus[,guid=…]`; other transports are trusted.
            match a.split(';').next().and_then(|t| t.strip_prefix("unix:")) {
                Some(params) => params
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("path="))
                    .is_none_or(|p| ours(Path::new(p))),
                None => true,
            }
        });
    match from_address {
        Some(usable) => usable,
        None => {
            std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| ours(&Path::new(&d).join("bus")))
        }
    }
}

fn bus_error(what: String) -> impl FnOnce(dbus::Error) -> Error {
    move |e| Error::Systemd {
        what,
        reason: e.message().unwrap_or("the bus gave no reason").to_owned(),
    }
}

/// A connection to the manager.
///
/// Synchronous (libdbus through the `dbus` crate): no thread runs behind
/// it, so a process that forks after using it leaves its child nothing
/// half-held, and the child can connect again (zbus was tried first: its
/// blocking API rests on a global reactor thread whose lock a forked child
/// inherits held, and the child hung on its first call).
pub(crate) struct Manager {
    conn: Connection,
    /// Whether this connection asked for the manager's signals already
    /// (systemd refuses a second `Subscribe` from the same client).
    subscribed: std::cell::Cell<bool>,
    /// Whether it is the user's manager (session bus) rather than the system's.
    pub user: bool,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").field("user", &self.user).finish()
    }
}

/// An `a(sv)` property list for `StartTransientUnit`.
type Props<'a> = Vec<(&'a str, Variant<Box<dyn RefArg>>)>;

thread_local! {
    /// This thread's connection, with the pid that made it: one connection
    /// (one authentication) serves every call a process makes.
    static CONNECTION: std::cell::RefCell<Option<(u32, Manager)>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with this thread's connection to the manager, connecting on
/// first use. A connection inherited through `fork` is the parent's socket:
/// the child forgets it (touching it could disturb the parent) and connects
/// anew.
pub(crate) fn with_manager<R>(f: impl FnOnce(&Manager) -> Result<R>) -> Result<R> {
    CONNECTION.with(|cell| {
        let mut slot = cell.borrow_mut();
        let pid = std::process::id();
        if slot.as_ref().is_some_and(|(owner, _)| *owner != pid) {
            std::mem::forget(slot.take());
        }
        if slot.is_none() {
            *slot = Some((pid, Manager::connect()?));
        }
        let (_, mgr) = slot.as_ref().expect("connected above");
        f(mgr)
    })
}

impl Manager {
    /// Connects to the manager of this process's cgroups.
    pub fn connect() -> Result<Manager> {
        let user = !rustix::process::geteuid().is_root();
        let conn = if user {
            Connection::new_session()
        } else {
            Connection::new_system()
        }
        .map_err(bus_error(format!(
            "connect to the {} manager",
            if user { "user's systemd" } else { "system" }
        )))?;
        Ok(Manager {
            conn,
            subscribed: std::cell::Cell::new(false),
            user,
        })
    }

    fn proxy<'a>(&'a self, path: &'a str) -> Proxy<'a, &'a Connection> {
        self.conn.with_proxy(DEST, path, CALL_TIMEOUT)
    }

    /// Starts `unit` as a transient scope holding `pid`, delegated to us, and
    /// waits until systemd has done it.
    pub fn start_scope(&self, unit: &str, pid: u32, description: &str) -> Result<()> {
        let mgr = self.proxy(PATH);
        // Watch for the job's end before starting it, so it cannot pass unseen.
        if !self.subscribed.get() {
            let r: std::result::Result<(), dbus::Error> = mgr.method_call(MANAGER, "Subscribe", ());
            match r {
                Ok(()) => {}
                Err(e) if e.name() == Some("org.freedesktop.systemd1.AlreadySubscribed") => {}
                Err(e) => return Err(bus_error("subscribe to systemd's signals".into())(e)),
            }
            self.subscribed.set(true);
        }
        type Removed = Arc<Mutex<Vec<(dbus::Path<'static>, String)>>>;
        let removed: Removed = Arc::default();
        let sink = removed.clone();
        let rule = MatchRule::new_signal(MANAGER, "JobRemoved");
        let token = self
            .conn
            .add_match(
                rule,
                move |(_, path, _, result): (u32, dbus::Path<'static>, String, String), _, _| {
                    sink.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((path, result));
                    true
                },
            )
            .map_err(bus_error("watch systemd's jobs".into()))?;
        let props: Props<'_> = vec![
            ("Description", Variant(Box::new(description.to_owned()))),
            ("PIDs", Variant(Box::new(vec![pid]))),
            ("Delegate", Variant(Box::new(true))),
            (
                "CollectMode",
                Variant(Box::new("inactive-or-failed".to_owned())),
            ),
            // Stopping the scope ends the job at once, as TerminateJobObject
            // does (the guardian ignores SIGTERM, so a TERM would wait 90 s).
            ("KillSignal", Variant(Box::new(libc::SIGKILL))),
        ];
        let aux: Vec<(&str, Props<'_>)> = Vec::new();
        let started: std::result::Result<(dbus::Path<'static>,), dbus::Error> =
            mgr.method_call(MANAGER, "StartTransientUnit", (unit, "fail", props, aux));
        let result = match started {
            Err(e) if e.name() == Some("org.freedesktop.systemd1.UnitExists") => Err(
                Error::JobExists(job_of_unit(unit).unwrap_or(unit).to_owned()),
            ),
            Err(e) => Err(bus_error(format!("start the scope {unit}"))(e)),
            Ok((job,)) => {
                let deadline = Instant::now() + CALL_TIMEOUT;
                loop {
                    let seen = removed.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some((_, result)) = seen.iter().find(|(p, _)| *p == job) {
                        break match result.as_str() {
                            "done" => Ok(()),
                            other => Err(Error::Systemd {
                                what: format!("start the scope {unit}"),
                                reason: format!("systemd's job ended with \"{other}\""),
                            }),
                        };
                    }
                    drop(seen);
                    if Instant::now() > deadline {
                        break Err(Error::Systemd {
                            what: format!("start the scope {unit}"),
                            reason: "systemd did not finish the job in 25 s".into(),
                        });
                    }
                    self.conn
                        .process(Duration::from_millis(100))
                        .map_err(bus_error("wait for systemd's job".into()))?;
                }
            }
        };
        self.conn
            .remove_match(token)
            .or_log(|| "unsubscribe from systemd's JobRemoved".into());
        result
    }

    /// Moves `pid` (a process of ours) into `subcgroup` of `unit`
    /// (`AttachProcessesToUnit`): the manager does the migration a user may
    /// not do from outside the unit.
    pub fn attach(&self, unit: &str, subcgroup: &str, pid: u32) -> Result<()> {
        self.proxy(PATH)
            .method_call::<(), _, _, _>(
                MANAGER,
                "AttachProcessesToUnit",
                (unit, subcgroup, vec![pid]),
            )
            .map_err(bus_error(format!(
                "move process {pid} into {unit}{subcgroup}"
            )))
    }

    /// The cgroup directory of a running unit, `None` when there is no such unit.
    pub fn unit_dir(&self, unit: &str) -> Result<Option<PathBuf>> {
        let got: std::result::Result<(dbus::Path<'static>,), dbus::Error> =
            self.proxy(PATH).method_call(MANAGER, "GetUnit", (unit,));
        let path = match got {
            Ok((p,)) => p,
            Err(e) if e.name() == Some("org.freedesktop.systemd1.NoSuchUnit") => return Ok(None),
            Err(e) => return Err(bus_error(format!("look up {unit}"))(e)),
        };
        let group: String = self
            .proxy(&path)
            .get("org.freedesktop.systemd1.Scope", "ControlGroup")
            .map_err(bus_error(format!("read the cgroup of {unit}")))?;
        if group.is_empty() {
            return Ok(None);
        }
        Ok(Some(cgroup2_mount().join(group.trim_start_matches('/'))))
    }

    /// Sets a unit's `CPUWeight` (the scope's own `cpu.weight`, which only its
    /// manager may write), for this boot only; `None` puts the default back.
    pub fn set_cpu_weight(&self, unit: &str, weight: Option<u64>) -> Result<()> {
        // systemd's "unset" for CPUWeight is (uint64) -1.
        let props: Props<'_> = vec![("CPUWeight", Variant(Box::new(weight.unwrap_or(u64::MAX))))];
        let r: std::result::Result<(), dbus::Error> =
            self.proxy(PATH)
                .method_call(MANAGER, "SetUnitProperties", (unit, true, props));
        r.map_err(bus_error(format!("set the CPU weight of {unit}")))
    }

    /// Stops a unit (systemd kills what is left in it and removes its cgroup);
    /// does not wait.
    pub fn stop(&self, unit: &str) -> Result<()> {
        let r: std::result::Result<(dbus::Path<'static>,), dbus::Error> = self
            .proxy(PATH)
            .method_call(MANAGER, "StopUnit", (unit, "replace"));
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.name() == Some("org.freedesktop.systemd1.NoSuchUnit") => Ok(()),
            Err(e) => Err(bus_error(format!("stop {unit}"))(e)),
        }
    }

    /// The manager's own cgroup directory and the controllers it was given
    /// (what a scope it starts with `Delegate=yes` can have).
    pub fn delegation(&self) -> Result<(PathBuf, Vec<String>)> {
        let group: String = self
            .proxy(PATH)
            .get(MANAGER, "ControlGroup")
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
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            dbus::Path<'static>,
            u32,
            String,
            dbus::Path<'static>,
        );
        let (rows,): (Vec<Row>,) = self
            .proxy(PATH)
            .method_call(
                MANAGER,
                "ListUnitsByPatterns",
                (vec!["active", "activating"], vec!["taskloom-*.scope"]),
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
