//! The Linux facts several areas share, in one low layer that depends on
//! nothing above it (only `error`): `/proc` formats and their parsers,
//! clock ticks and boot time, user names, the cgroup layout, and how a
//! cgroup path names a taskloom job. `process`, `thread`, `inspect`, `job`
//! and `debug` read them here instead of from each other (ARCHITECTURE.md,
//! "Layers").

pub mod layout;
pub mod parse;

use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of `/proc` and cpuacct times.
pub fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// Clock ticks (the unit of `/proc` times) as a duration.
pub(crate) fn ticks(t: u64) -> Duration {
    let hz = clock_ticks_per_second();
    Duration::from_nanos(t.saturating_mul(1_000_000_000 / hz))
}

/// When the machine booted (`btime` in `/proc/stat`), read once.
pub(crate) fn boot_time() -> SystemTime {
    static BOOT: OnceLock<SystemTime> = OnceLock::new();
    *BOOT.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let secs: u64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    })
}

/// The name of user `uid` through NSS (files, LDAP, sssd ..., as the machine
/// is set up), if it has one.
pub(crate) fn user_name_of(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The directory below a cgroup that holds taskloom's jobs.
pub(crate) const JOB_ROOT_NAME: &str = "taskloom";

/// A top-level job's systemd scope unit.
pub(crate) fn scope_unit_name(job: &str) -> String {
    format!("taskloom-{job}.scope")
}

/// The job a scope unit's directory name stands for (`taskloom-build.scope` → `build`).
pub(crate) fn job_of_scope_unit(unit: &str) -> Option<&str> {
    unit.strip_prefix("taskloom-")?.strip_suffix(".scope")
}

/// Whether a cgroup path component is a directory that holds jobs: the
/// `taskloom` root below a cgroup, or a job's systemd scope.
pub(crate) fn is_job_root_component(c: &str) -> bool {
    c == JOB_ROOT_NAME || job_of_scope_unit(c).is_some()
}

/// The cgroup hierarchies a mountinfo text mounts, as a process whose
/// `/proc/self/cgroup` text is `own` sees them: where it runs in a cgroup
/// namespace rooted below a mount's root (a member of a contained job: the
/// kernel shows cgroup paths relative to the job), the namespace root is
/// found (`Hierarchy::resolve_namespace`); a hierarchy whose root cannot be
/// found is left out.
pub(crate) fn resolve_hierarchies(mountinfo: &str, own: &str) -> Vec<layout::Hierarchy> {
    let members = layout::parse_proc_cgroup(own);
    let pid = std::process::id() as i32;
    layout::parse_mountinfo(mountinfo)
        .into_iter()
        .filter_map(|mut h| {
            if h.ns_depth > 0 {
                let own_rel = layout::path_in(&h, &members)?;
                if !h.resolve_namespace(&own_rel, pid) {
                    return None;
                }
            } else if h.v2
                && let Some(root) = job_mount_root(&h.mount)
            {
                // A contained job's own cgroup2 mount: it shows the job as
                // `/`; its directory says where it is in the hierarchy.
                h.mount_root = root.clone();
                h.ns_prefix = root;
            }
            Some(h)
        })
        .collect()
}

/// The xattr on a contained job's cgroup2 directory naming its path in the
/// hierarchy (written by its creator; a member's cgroup2 mount shows that
/// directory as its root).
pub(crate) const NS_ROOT_XATTR: &str = "user.taskloom.nsroot";

/// Where the cgroup2 mount at `mount` is rooted in the hierarchy, when it is
/// a contained job's own view (its root directory carries [`NS_ROOT_XATTR`]).
fn job_mount_root(mount: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut buf = [0u8; 4096];
    let n = rustix::fs::getxattr(mount, NS_ROOT_XATTR, &mut buf[..]).ok()?;
    let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&buf[..n]));
    path.is_absolute().then_some(path)
}

/// The cgroup hierarchies mounted here, as this process sees them (read
/// and resolved once per process: a namespace's root does not move).
pub(crate) fn hierarchies() -> &'static [layout::Hierarchy] {
    static HIERARCHIES: OnceLock<Vec<layout::Hierarchy>> = OnceLock::new();
    HIERARCHIES.get_or_init(|| {
        resolve_hierarchies(
            &std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
            &std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
        )
    })
}

/// Where this process's cgroup namespace is rooted, relative to the cgroup2
/// mount's root: `/` unless it runs in a namespace rooted below it.
pub(crate) fn own_cgroup_ns_prefix() -> &'static std::path::Path {
    hierarchies()
        .iter()
        .find(|h| h.v2)
        .map_or(std::path::Path::new("/"), |h| h.ns_prefix.as_path())
}

/// [`job_name_in`] for text this process read from `/proc/<pid>/cgroup`:
/// inside a cgroup namespace the kernel shows paths relative to its root,
/// so the root's own path is put back in front first.
pub(crate) fn job_name_seen_here(proc_cgroup: &str) -> Option<String> {
    let prefix = own_cgroup_ns_prefix();
    if prefix == std::path::Path::new("/") {
        return job_name_in(proc_cgroup);
    }
    let text: String = proc_cgroup
        .lines()
        .map(|l| match l.strip_prefix("0::") {
            Some(p) => format!("0::{}\n", prefix.join(p.trim_start_matches('/')).display()),
            None => format!("{l}\n"),
        })
        .collect();
    job_name_in(&text)
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
        if let Some(i) = parts.iter().rposition(|p| is_job_root_component(p)) {
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

    #[test]
    fn job_names_are_read_from_proc_cgroup() {
        let text = "4:memory:/process_api/7a/taskloom/build\n0::/taskloom/build/tests/@3\n";
        assert_eq!(job_name_in(text).as_deref(), Some("build/tests"));
        assert_eq!(job_name_in("0::/user.slice\n"), None);
        assert_eq!(job_name_in("0::/taskloom\n"), None);
    }
}
