//! Which cgroup hierarchies this machine has, and where this process sits in them.
//!
//! Three layouts are real: pure cgroup v2 (`/sys/fs/cgroup` is cgroup2), pure
//! v1 (one hierarchy per controller), and hybrid (v1 controllers plus a
//! controller-less cgroup2 at `/sys/fs/cgroup/unified`). Parsing is split from
//! I/O so it can be tested on sample text.

use std::path::{Component, Path, PathBuf};

/// A v1 controller taskloom uses for job limits and accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    /// Process count (`pids.max`).
    Pids,
    /// Memory limit and accounting.
    Memory,
    /// CPU bandwidth (`cfs_quota_us`) and shares.
    Cpu,
    /// CPU time accounting (`cpuacct.stat`).
    Cpuacct,
    /// CPU affinity (`cpuset.cpus`).
    Cpuset,
    /// Freeze and thaw (`freezer.state`).
    Freezer,
}

impl Controller {
    /// All controllers taskloom knows.
    pub const ALL: [Controller; 6] = [
        Controller::Pids,
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Cpuset,
        Controller::Freezer,
    ];

    /// The kernel's name.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Pids => "pids",
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Cpuset => "cpuset",
            Controller::Freezer => "freezer",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Controller::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted.
    pub mount: PathBuf,
    /// The mount's root within the hierarchy (usually `/`).
    pub mount_root: PathBuf,
    /// `true` for cgroup2.
    pub v2: bool,
    /// For v1: the controllers bound to it that taskloom uses.
    pub controllers: Vec<Controller>,
    /// cgroup2 mounted with `nsdelegate`: a cgroup namespace is a
    /// delegation boundary (no migration across it, its root's limits
    /// read-only from inside).
    pub nsdelegate: bool,
    /// Inside a cgroup namespace whose root is below the mount's root: how
    /// many levels below (the kernel shows the mount root as `/../..`).
    pub ns_depth: usize,
    /// Where that namespace's root is, relative to the mount's root (`/`
    /// outside a namespace; found by [`Hierarchy::resolve_namespace`]).
    /// Paths in `/proc/<pid>/cgroup`, which the kernel shows relative to
    /// the reader's namespace root, are joined to it.
    pub ns_prefix: PathBuf,
}

impl Hierarchy {
    /// The directory of a cgroup path (as in `/proc/self/cgroup`) in this mount,
    /// or `None` when the path is outside what the mount shows.
    pub fn dir_of(&self, cgroup_path: &Path) -> Option<PathBuf> {
        let rel = cgroup_path.strip_prefix(&self.mount_root).ok()?;
        Some(self.mount.join(rel))
    }

    /// The path `/proc/<pid>/cgroup` shows this process for the cgroup
    /// directory `dir` of this mount (the inverse of [`path_in`] and
    /// [`Hierarchy::dir_of`]); `None` when `dir` is outside what it shows.
    pub fn shown_path(&self, dir: &Path) -> Option<PathBuf> {
        let full = self.mount_root.join(dir.strip_prefix(&self.mount).ok()?);
        let shown = full.strip_prefix(&self.ns_prefix).ok()?;
        Some(Path::new("/").join(shown))
    }

    /// Inside a cgroup namespace rooted below the mount's root, finds that
    /// root: the directory `ns_depth` levels below the mount whose
    /// `own` subpath (this process's cgroup as the namespace shows it)
    /// holds `pid`. A process is in exactly one cgroup per hierarchy, so
    /// one directory matches. Sets `ns_prefix`; `false` when none does.
    pub fn resolve_namespace(&mut self, own: &Path, pid: i32) -> bool {
        if self.ns_depth == 0 {
            return true;
        }
        let rel = own.strip_prefix("/").unwrap_or(own);
        let holds = |dir: &Path| {
            std::fs::read_to_string(dir.join(rel).join("cgroup.procs"))
                .is_ok_and(|t| t.lines().any(|l| l.trim().parse::<i32>().ok() == Some(pid)))
        };
        let mut level = vec![self.mount.clone()];
        for _ in 0..self.ns_depth {
            let mut next = Vec::new();
            for dir in &level {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                next.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
            level = next;
        }
        match level.into_iter().find(|d| holds(d)) {
            Some(dir) => {
                let rel = dir.strip_prefix(&self.mount).unwrap_or(&dir);
                self.ns_prefix = Path::new("/").join(rel);
                true
            }
            None => false,
        }
    }
}

/// Parses `/proc/self/mountinfo` text into the cgroup hierarchies it mounts.
pub fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    // Every mount point in order, and where each hierarchy's line was: a
    // mount over a hierarchy's mount point (or over a directory above it)
    // hides it, as a contained job's own cgroup2 view hides the machine's.
    let mut points: Vec<PathBuf> = Vec::new();
    let mut at: Vec<usize> = Vec::new();
    for line in text.lines() {
        // id parent major:minor root mount-point options [optional...] - fstype source super-options
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        let unescape = |s: &str| {
            s.replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\012", "\n")
                .replace("\\134", "\\")
        };
        let (mut root, mount) = (PathBuf::from(unescape(l[3])), PathBuf::from(unescape(l[4])));
        points.push(mount.clone());
        let before = out.len();
        // Seen from inside a cgroup namespace rooted below the mount's root,
        // the kernel shows that root as `/..` once per level.
        let ns_depth = root
            .components()
            .take_while(|c| matches!(c, Component::RootDir | Component::ParentDir))
            .filter(|c| matches!(c, Component::ParentDir))
            .count();
        if ns_depth > 0 {
            root = PathBuf::from("/");
        }
        let ns_prefix = PathBuf::from("/");
        match r[0] {
            "cgroup2" => out.push(Hierarchy {
                mount,
                mount_root: root,
                v2: true,
                controllers: Vec::new(),
                nsdelegate: r[2].split(',').any(|o| o == "nsdelegate"),
                ns_depth,
                ns_prefix,
            }),
            "cgroup" => {
                let controllers: Vec<Controller> =
                    r[2].split(',').filter_map(Controller::from_name).collect();
                if !controllers.is_empty() {
                    out.push(Hierarchy {
                        mount,
                        mount_root: root,
                        v2: false,
                        controllers,
                        nsdelegate: false,
                        ns_depth,
                        ns_prefix,
                    });
                }
            }
            _ => {}
        }
        if out.len() > before {
            at.push(points.len() - 1);
        }
    }
    let mut index = at.into_iter();
    out.retain(|h| {
        let i = index.next().unwrap_or(usize::MAX);
        !points
            .iter()
            .skip(i.saturating_add(1))
            .any(|later| h.mount.starts_with(later))
    });
    // A hierarchy may be mounted twice; keep the first mount of each.
    let mut seen: Vec<(bool, Vec<Controller>)> = Vec::new();
    out.retain(|h| {
        let key = (h.v2, h.controllers.clone());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    out
}

/// One line of `/proc/<pid>/cgroup`: hierarchy id, controllers, path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// `0` for cgroup2.
    pub id: u32,
    /// The controller list (empty for cgroup2; may hold `name=systemd`).
    pub controllers: Vec<String>,
    /// The cgroup path, relative to the hierarchy root.
    pub path: PathBuf,
}

/// Parses `/proc/<pid>/cgroup`. Paths may contain `:`, so only the first two split.
pub fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?.parse().ok()?;
            let ctrl = parts.next()?;
            let path = parts.next()?;
            Some(Membership {
                id,
                controllers: if ctrl.is_empty() {
                    Vec::new()
                } else {
                    ctrl.split(',').map(str::to_owned).collect()
                },
                path: PathBuf::from(path.strip_suffix(" (deleted)").unwrap_or(path)),
            })
        })
        .collect()
}

/// Where a hierarchy's cgroup of a process is, from its memberships (the
/// whole path from the hierarchy's root, also when read inside a cgroup
/// namespace whose root was resolved).
pub fn path_in(h: &Hierarchy, members: &[Membership]) -> Option<PathBuf> {
    members.iter().find_map(|m| {
        let hit = if h.v2 {
            m.id == 0 && m.controllers.is_empty()
        } else {
            h.controllers
                .iter()
                .all(|c| m.controllers.iter().any(|mc| mc == c.name()))
        };
        hit.then(|| {
            let rel = m.path.strip_prefix("/").unwrap_or(&m.path);
            h.ns_prefix.join(rel)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_over_a_hierarchy_hides_it() {
        // A contained job's view: the machine's cgroup2 (shown from inside
        // the job's namespace as /../..), a tmpfs over it, the job's own
        // cgroup2 on top: only the last is seen.
        let text = "\
30 25 0:26 /../.. /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
40 30 0:50 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,size=4k
41 40 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
";
        let h = parse_mountinfo(text);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].ns_depth, 0);
        assert_eq!(h[0].mount, Path::new("/sys/fs/cgroup"));
        // Mounts below a hierarchy's mount point do not hide it.
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
        assert_eq!(parse_mountinfo(text).len(), 2);
    }

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_layout_is_recognised() {
        let hs = parse_mountinfo(HYBRID);
        assert_eq!(hs.len(), 5, "{hs:?}");
        assert!(
            hs.iter()
                .any(|h| h.v2 && h.mount == Path::new("/sys/fs/cgroup/unified"))
        );
        let mem = hs
            .iter()
            .find(|h| h.controllers == [Controller::Memory])
            .unwrap();
        assert_eq!(mem.mount, Path::new("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn pure_v2_and_comounted_v1() {
        let v2 = "25 1 0:22 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        let hs = parse_mountinfo(v2);
        assert_eq!(
            hs,
            [Hierarchy {
                mount: "/sys/fs/cgroup".into(),
                mount_root: "/".into(),
                v2: true,
                controllers: vec![],
                nsdelegate: true,
                ns_depth: 0,
                ns_prefix: "/".into(),
            }]
        );
        let shown = hs[0].shown_path(Path::new("/sys/fs/cgroup/user.slice/taskloom/j"));
        assert_eq!(shown.unwrap(), Path::new("/user.slice/taskloom/j"));
        let v1 = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let hs = parse_mountinfo(v1);
        assert_eq!(hs[0].controllers, [Controller::Cpu, Controller::Cpuacct]);
        assert_eq!(hs[0].mount, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
    }

    #[test]
    fn a_cgroup_namespace_root_is_found_below_the_mount() {
        let line = "32 23 0:27 /../../.. /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        let mut h = parse_mountinfo(line).remove(0);
        assert!(h.nsdelegate);
        assert_eq!((h.ns_depth, h.mount_root.as_path()), (3, Path::new("/")));
        // A fixture tree: the namespace root is a/b/job, this process in its leaf @0.
        let tmp = std::env::temp_dir().join(format!("tl-ns-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        for d in ["a/b/job/@0", "a/b/other/@0", "a/c/job/@0"] {
            std::fs::create_dir_all(tmp.join(d)).unwrap();
        }
        std::fs::write(tmp.join("a/b/other/@0/cgroup.procs"), "7\n").unwrap();
        std::fs::write(tmp.join("a/c/job/@0/cgroup.procs"), "8\n").unwrap();
        std::fs::write(tmp.join("a/b/job/@0/cgroup.procs"), "6\n42\n").unwrap();
        h.mount = tmp.clone();
        assert!(h.resolve_namespace(Path::new("/@0"), 42));
        assert_eq!(h.ns_prefix, Path::new("/a/b/job"));
        let ms = parse_proc_cgroup("0::/@0\n");
        assert_eq!(path_in(&h, &ms).unwrap(), Path::new("/a/b/job/@0"));
        // And back: the directory shows as the namespace shows it.
        let dir = h.dir_of(&path_in(&h, &ms).unwrap()).unwrap();
        assert_eq!(h.shown_path(&dir).unwrap(), Path::new("/@0"));
        assert_eq!(
            h.shown_path(&tmp.join("a/c/job")),
            None,
            "outside the namespace"
        );
        assert!(!h.clone().resolve_namespace(Path::new("/@0"), 99));
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn proc_cgroup_paths_keep_colons() {
        let ms = parse_proc_cgroup("4:memory:/process_api/7a\n0::/a:b/c\n9:name=systemd:/\n");
        assert_eq!(ms[0].path, Path::new("/process_api/7a"));
        assert_eq!(ms[1].path, Path::new("/a:b/c"));
        let hs = parse_mountinfo(HYBRID);
        let mem = hs
            .iter()
            .find(|h| h.controllers == [Controller::Memory])
            .unwrap();
        assert_eq!(path_in(mem, &ms).unwrap(), Path::new("/process_api/7a"));
        let v2 = hs.iter().find(|h| h.v2).unwrap();
        assert_eq!(path_in(v2, &ms).unwrap(), Path::new("/a:b/c"));
        assert_eq!(
            v2.dir_of(Path::new("/a:b/c")).unwrap(),
            Path::new("/sys/fs/cgroup/unified/a:b/c")
        );
    }
}
