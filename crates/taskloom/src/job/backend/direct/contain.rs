//! A contained job: its cgroup, pid and mount namespaces, and what the
//! mount namespace hides (ARCHITECTURE.md, "No member can disarm its job").

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Mover, cgroup};
use crate::error::{Error, Result};
use crate::job::backend::Containment;
use crate::linux::NS_ROOT_XATTR;
use crate::process::Namespaces;

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
pub(super) fn contain_job(
    name: &str,
    v2: &Path,
    mover: Mover<'_>,
    how: Containment,
) -> Result<Namespaces> {
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
pub(super) fn isolation(hide_services: bool) -> Option<crate::process::Isolation> {
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
pub(super) fn service_endpoints() -> (Vec<PathBuf>, Vec<PathBuf>) {
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
