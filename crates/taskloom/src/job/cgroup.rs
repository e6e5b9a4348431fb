//! Cgroup file I/O and the job roots on this machine.
//!
//! Nothing here touches a cgroup taskloom did not create: job roots are made
//! *below this process's own cgroup* in each hierarchy (`<own>/taskloom`), and
//! only files below a root are ever written.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::layout::{self, Controller};
use crate::error::{Error, Result};

/// Reads a control file, trimmed.
pub(crate) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|s| s.trim_end().to_owned())
        .map_err(|e| file_error("read", path, e))
}

/// Writes a control file.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(|e| file_error("write", path, e))
}

fn file_error(op: &str, path: &Path, source: io::Error) -> Error {
    match source.kind() {
        ErrorKind::PermissionDenied => Error::PermissionDenied {
            what: format!("{op} {}", path.display()),
            source,
        },
        _ => Error::Cgroup {
            op: format!("{op} {}", path.display()),
            source,
        },
    }
}

/// Reads `key value` lines (cpu.stat, memory.events, pids.events, ...) for one key.
pub(crate) fn keyed(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    parse_keyed(&text, key)
}

/// The value of `key` in `key value` lines.
pub fn parse_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The pids in `cgroup.procs` of `dir` and every cgroup below it.
pub(crate) fn procs_recursive(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                procs_recursive(&e.path(), out);
            }
        }
    }
}

/// Removes `dir` and every cgroup below it, deepest first.
pub(crate) fn remove_tree(dir: &Path) -> Result<()> {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path())?;
            }
        }
    }
    // A cgroup whose last process just died may still be "busy" for a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(file_error("remove", dir, e)),
        }
    }
}

/// The job roots on this machine: one directory per hierarchy taskloom uses.
#[derive(Debug, Clone)]
pub(crate) struct Roots {
    /// cgroup2 root: membership, kill, freeze, events (and limits on pure v2).
    pub v2: Option<PathBuf>,
    /// Controllers usable below the v2 root (pure v2 with delegation).
    pub v2_controllers: Vec<String>,
    /// Per-controller v1 roots, for the controllers not on v2.
    pub v1: Vec<(Controller, PathBuf)>,
    /// Why a hierarchy could not be used, for the capability report.
    pub problems: Vec<String>,
}

/// The name of the directory below our own cgroup that holds every job.
pub(crate) const ROOT_NAME: &str = "taskloom";

static ROOTS: OnceLock<Roots> = OnceLock::new();

/// Detects the layout once per process and creates the roots.
pub(crate) fn roots() -> &'static Roots {
    ROOTS.get_or_init(|| {
        detect(
            &fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
            &fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
        )
    })
}

fn detect(mountinfo: &str, own: &str) -> Roots {
    let hierarchies = layout::parse_mountinfo(mountinfo);
    let members = layout::parse_proc_cgroup(own);
    let mut roots = Roots {
        v2: None,
        v2_controllers: Vec::new(),
        v1: Vec::new(),
        problems: Vec::new(),
    };
    for h in &hierarchies {
        let kind = if h.v2 {
            "cgroup2".to_string()
        } else {
            h.controllers
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(",")
        };
        let Some(own_dir) = layout::path_in(h, &members).and_then(|p| h.dir_of(&p)) else {
            roots.problems.push(format!(
                "{kind} at {}: this process's cgroup is not visible there",
                h.mount.display()
            ));
            continue;
        };
        let root = own_dir.join(ROOT_NAME);
        // Detection only looks: the root is made when the first job is created
        // (and removed with the last), so checking costs no directory.
        let writable = |dir: &Path| {
            rustix::fs::access(
                dir,
                rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
            )
        };
        let usable = if root.is_dir() {
            writable(&root)
        } else {
            writable(&own_dir)
        };
        if let Err(e) = usable {
            roots.problems.push(format!(
                "{kind}: cannot create jobs in {}: {}",
                root.display(),
                io::Error::from(e)
            ));
            continue;
        }
        if h.v2 {
            // Controllers our own cgroup hands to its children (we never write to it):
            // the root's `cgroup.controllers` once it exists, else our own `subtree_control`.
            let available = read(&root.join("cgroup.controllers"))
                .or_else(|_| read(&own_dir.join("cgroup.subtree_control")))
                .unwrap_or_default();
            roots.v2_controllers = available
                .split_whitespace()
                .filter(|c| ["pids", "memory", "cpu", "cpuset"].contains(c))
                .map(str::to_owned)
                .collect();
            roots.v2 = Some(root);
        } else {
            for &c in &h.controllers {
                roots.v1.push((c, root.clone()));
            }
        }
    }
    // On a hybrid machine a controller lives on one side only; prefer v2 where it is enabled.
    let on_v2 = roots.v2_controllers.clone();
    roots
        .v1
        .retain(|(c, _)| !on_v2.iter().any(|n| n == c.name()));
    roots
}

/// Creates a cgroup directory if missing.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A new v1 cpuset starts empty; copy the parent's CPUs and memory nodes so it can hold tasks.
pub(crate) fn inherit_cpuset(dir: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(dir);
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if read(&dir.join(file)).unwrap_or_default().is_empty() {
            let value = read(&parent.join(file))?;
            write(&dir.join(file), &value)?;
        }
    }
    Ok(())
}

impl Roots {
    /// The v1 root of a controller, if that controller is on v1 here.
    pub fn v1_root(&self, c: Controller) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(x, _)| *x == c)
            .map(|(_, p)| p.as_path())
    }

    /// Whether a controller can be used by jobs, on either side.
    pub fn has(&self, c: Controller) -> bool {
        self.v1_root(c).is_some() || self.v2_controllers.iter().any(|n| n == c.name())
    }

    /// Whether anything at all is usable.
    pub fn usable(&self) -> bool {
        self.v2.is_some() || !self.v1.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_parse() {
        let text = "usage_usec 1200\nuser_usec 1000\nsystem_usec 200\n";
        assert_eq!(parse_keyed(text, "user_usec"), Some(1000));
        assert_eq!(parse_keyed(text, "usage"), None);
        assert_eq!(
            parse_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"),
            Some(3)
        );
    }

    #[test]
    fn pure_v2_roots_take_delegated_controllers() {
        // A fake pure cgroup2 tree: our own cgroup delegates pids and memory to its children.
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        fs::create_dir_all(base.join("user.slice/me")).unwrap();
        let mountinfo = format!("25 1 0:22 / {} rw - cgroup2 cgroup2 rw\n", base.display());
        // What the kernel would show in our new root: the controllers our own cgroup enabled.
        fs::create_dir_all(base.join("user.slice/me/taskloom")).unwrap();
        fs::write(
            base.join("user.slice/me/taskloom/cgroup.controllers"),
            "cpu memory pids io\n",
        )
        .unwrap();
        let roots = detect(&mountinfo, "0::/user.slice/me\n");
        assert_eq!(
            roots.v2.as_deref(),
            Some(base.join("user.slice/me/taskloom").as_path())
        );
        assert!(roots.v1.is_empty());
        assert_eq!(
            roots.v2_controllers,
            ["cpu", "memory", "pids"],
            "io is not one taskloom uses"
        );
        assert!(
            !base
                .join("user.slice/me/taskloom/cgroup.subtree_control")
                .exists(),
            "detection writes nothing"
        );
    }

    #[test]
    fn roots_are_found_below_our_own_cgroup_only() {
        // A fake hybrid tree in a temp dir: the roots are `taskloom` below our own path,
        // and detection itself creates nothing.
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        fs::create_dir_all(base.join("memory/own")).unwrap();
        fs::create_dir_all(base.join("unified")).unwrap();
        let mountinfo = format!(
            "35 31 0:32 / {}/memory rw - cgroup cgroup rw,memory\n41 31 0:38 / {}/unified rw - cgroup2 cgroup2 rw\n",
            base.display(),
            base.display()
        );
        let roots = detect(&mountinfo, "4:memory:/own\n0::/\n");
        assert_eq!(
            roots.v2.as_deref(),
            Some(base.join("unified/taskloom").as_path())
        );
        assert_eq!(
            roots.v1_root(Controller::Memory),
            Some(base.join("memory/own/taskloom").as_path())
        );
        assert!(
            !base.join("memory/own/taskloom").exists(),
            "detection creates nothing"
        );
        assert!(
            !base.join("memory/taskloom").exists(),
            "nothing outside our own cgroup"
        );
    }
}
