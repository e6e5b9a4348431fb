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

use crate::error::{Error, Result};
use crate::linux::layout::{self, Controller};

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
            // A nested job's pid namespace init is not one of its processes.
            if e.file_type().is_ok_and(|t| t.is_dir())
                && !e.file_name().as_encoded_bytes().starts_with(b"@init.")
            {
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
    /// The delegated cgroup whose `cgroup.subtree_control` hands the
    /// controllers to the v2 root (pure v2, when the root is not below our
    /// own cgroup because that holds processes).
    pub v2_enable_in: Option<PathBuf>,
    /// Per-controller v1 roots, for the controllers not on v2.
    pub v1: Vec<(Controller, PathBuf)>,
    /// Why a hierarchy could not be used, for the capability report.
    pub problems: Vec<String>,
}

pub(crate) use crate::linux::{
    JOB_ROOT_NAME as ROOT_NAME, is_job_root_component as is_root_component,
};

static ROOTS: OnceLock<Roots> = OnceLock::new();
/// The cgroup hierarchies mounted here (read once per process; see
/// [`crate::linux::hierarchies`]).
pub(crate) fn hierarchies() -> &'static [layout::Hierarchy] {
    crate::linux::hierarchies()
}

/// For a process inside a job: the roots of the enclosing levels, innermost
/// first, where the jobs around its own live (its own job among them). Its
/// own roots sit in its job's directory (`<job>/taskloom`); every
/// `taskloom` (or scope) directory above that is the root one level out,
/// and each hierarchy's root is that many components shorter. Empty outside
/// every job.
pub(crate) fn enclosing_roots(own: &Roots) -> Vec<Roots> {
    let Some(primary) = own.v2.as_ref().or_else(|| own.v1.first().map(|(_, p)| p)) else {
        return Vec::new();
    };
    let parts: Vec<&std::ffi::OsStr> = primary.iter().collect();
    let mut out = Vec::new();
    // Skip the own root (the last component) and look at its ancestors.
    for up in 1..parts.len() {
        let i = parts.len() - 1 - up;
        if !parts[i].to_str().is_some_and(is_root_component) {
            continue;
        }
        let shorten = |p: &PathBuf| -> Option<PathBuf> {
            let n = p.iter().count();
            (n > up).then(|| p.iter().take(n - up).collect())
        };
        out.push(Roots {
            v2: own.v2.as_ref().and_then(shorten),
            v2_controllers: own.v2_controllers.clone(),
            v2_enable_in: None,
            v1: own
                .v1
                .iter()
                .filter_map(|(c, p)| shorten(p).map(|p| (*c, p)))
                .collect(),
            problems: Vec::new(),
        });
    }
    out
}

/// Whether cgroup2 here treats cgroup namespaces as delegation boundaries
/// (mounted with `nsdelegate`): only then does a namespace rooted at a job
/// keep its members in.
pub(crate) fn namespaces_delegate() -> bool {
    hierarchies().iter().any(|h| h.v2 && h.nsdelegate)
}

/// Where a process is, from its `/proc/<pid>/cgroup` text: for each mounted
/// hierarchy, the hierarchy, the cgroup path and its directory here.
pub(crate) fn placement_of(
    proc_cgroup: &str,
) -> Vec<(&'static layout::Hierarchy, PathBuf, PathBuf)> {
    let members = layout::parse_proc_cgroup(proc_cgroup);
    hierarchies()
        .iter()
        .filter_map(|h| {
            let path = layout::path_in(h, &members)?;
            let dir = h.dir_of(&path)?;
            Some((h, path, dir))
        })
        .collect()
}

/// The jobs a cgroup path is in, outermost first, as paths in the same
/// hierarchy: every directory below a `taskloom` root that is not a root or
/// a leaf (`@N`, `@breakaway`). `/taskloom/a/b/@3` is in `/taskloom/a` and
/// `/taskloom/a/b`; `/taskloom/a/@0/taskloom/c/@1` in `/taskloom/a` and
/// `/taskloom/a/@0/taskloom/c`.
pub(crate) fn job_chain(path: &Path) -> Vec<PathBuf> {
    let mut chain = Vec::new();
    let mut at = PathBuf::from("/");
    let mut below_root = false;
    for c in path.components().filter_map(|c| c.as_os_str().to_str()) {
        if c == "/" {
            continue;
        }
        at.push(c);
        if is_root_component(c) {
            below_root = true;
        } else if below_root && !c.starts_with('@') {
            chain.push(at.clone());
        }
    }
    chain
}

/// Detects the layout once per process: the roots where this process may
/// make jobs.
pub(crate) fn roots() -> &'static Roots {
    ROOTS.get_or_init(|| {
        detect_in(
            hierarchies(),
            &fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            true,
        )
    })
}

/// The roots that exist here and that this process may look into, whether or
/// not it may make jobs there: where it finds jobs another user made and
/// shared with it (`JobBuilder::mode`).
pub(crate) fn visible_roots() -> &'static Roots {
    static VISIBLE: OnceLock<Roots> = OnceLock::new();
    VISIBLE.get_or_init(|| {
        detect_in(
            hierarchies(),
            &fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            false,
        )
    })
}

/// The part of a cgroup path that places it in a taskloom job: from the
/// first `taskloom` component to the last job leaf (`@N`), e.g.
/// `/taskloom/outer/@0/taskloom/inner/@2` in `/machine/taskloom/outer/@0/taskloom/inner/@2`.
/// `None` outside every job (the `@breakaway` leaf is outside).
pub(crate) fn job_context(path: &Path) -> Option<PathBuf> {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .filter(|c| *c != "/")
        .collect();
    let first = parts.iter().position(|c| is_root_component(c))?;
    let is_leaf = |c: &&str| {
        c.strip_prefix('@')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let last = parts.iter().rposition(is_leaf).filter(|&l| l > first + 1)?;
    Some(parts[first..=last].iter().collect())
}

/// A cgroup2 job path in its cgroup v1 form: without the `@N` leaves (v1
/// members live in the job's own directory).
pub(crate) fn without_leaves(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !c.as_os_str().to_str().is_some_and(|c| c.starts_with('@')))
        .collect()
}

/// `path` without its job context: the cgroup the outermost job's creator was in.
fn outside_jobs(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components().filter_map(|c| c.as_os_str().to_str()) {
        if is_root_component(c) {
            break;
        }
        if c != "/" {
            out.push(c);
        }
    }
    out
}

/// [`detect_in`] on a mountinfo text (for tests on made-up layouts).
#[cfg(test)]
fn detect(mountinfo: &str, own: &str, to_create: bool) -> Roots {
    detect_in(
        &crate::linux::resolve_hierarchies(mountinfo, own),
        own,
        to_create,
    )
}

/// The roots in `hierarchies` where a process whose `/proc/self/cgroup`
/// text is `own` may make (or, without `to_create`, see) jobs.
fn detect_in(hierarchies: &[layout::Hierarchy], own: &str, to_create: bool) -> Roots {
    let members = layout::parse_proc_cgroup(own);
    // A member of a job makes jobs inside its own job, in every hierarchy:
    // cgroup2 says which job it is in (it may not have joined the v1
    // hierarchies at all, where it still sits in the outermost creator's
    // cgroup), and the v1 roots are placed to match, below the enclosing
    // job's v1 directories (`@N` leaves exist on cgroup2 only).
    let context = hierarchies
        .iter()
        .find(|h| h.v2)
        .and_then(|h| layout::path_in(h, &members))
        .and_then(|p| job_context(&p));
    // Pure cgroup2: the only hierarchy is the one that holds controllers.
    let pure_v2 = hierarchies.iter().all(|h| h.v2);
    let mut roots = Roots {
        v2: None,
        v2_controllers: Vec::new(),
        v2_enable_in: None,
        v1: Vec::new(),
        problems: Vec::new(),
    };
    for h in hierarchies {
        let kind = if h.v2 {
            "cgroup2".to_string()
        } else {
            h.controllers
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(",")
        };
        let own_path = layout::path_in(h, &members).map(|p| match (&context, h.v2) {
            (Some(ctx), false) => outside_jobs(&p).join(without_leaves(ctx)),
            // A member's jobs sit beside its leaf, in its job's own
            // directory (`<job>/taskloom`), where controllers can reach them.
            (Some(_), true) => match p.file_name().and_then(|n| n.to_str()) {
                Some(n) if n.starts_with('@') => p.parent().map(Path::to_owned).unwrap_or(p),
                _ => p,
            },
            _ => p,
        });
        let Some(mut own_dir) = own_path.and_then(|p| h.dir_of(&p)) else {
            roots.problems.push(format!(
                "{kind} at {}: this process's cgroup is not visible there",
                h.mount.display()
            ));
            continue;
        };
        // On pure cgroup2 a cgroup that holds processes (ours, unless it is
        // the root cgroup) cannot hand controllers to children: the jobs go
        // below the top of this user's delegated subtree instead, which holds
        // no process, so that limits work there (what `systemd-run -p
        // Delegate=yes` and a delegated `user@.service` give).
        if h.v2
            && pure_v2
            && context.is_none()
            && own_dir != h.mount
            && let Some(top) = delegated_top(&own_dir, &h.mount)
        {
            roots.v2_enable_in = Some(top.clone());
            own_dir = top;
        }
        let root = own_dir.join(ROOT_NAME);
        // Detection only looks: the root is made when the first job is created
        // (and removed with the last), so checking costs no directory.
        let writable = |dir: &Path| {
            rustix::fs::access(
                dir,
                rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
            )
        };
        let usable = if !to_create {
            if root.is_dir() {
                rustix::fs::access(
                    &root,
                    rustix::fs::Access::READ_OK | rustix::fs::Access::EXEC_OK,
                )
            } else {
                Err(rustix::io::Errno::NOENT)
            }
        } else if root.is_dir() {
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
                .or_else(|_| match &roots.v2_enable_in {
                    // What the delegated cgroup can hand down (enabled at the first job).
                    Some(top) => read(&top.join("cgroup.controllers")),
                    None => read(&own_dir.join("cgroup.subtree_control")),
                })
                .unwrap_or_default();
            roots.v2_controllers = available
                .split_whitespace()
                .filter(|c| ["pids", "memory", "cpu", "cpuset", "io"].contains(c))
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

/// Forks refused by the `pids.max` of `dir` or of a cgroup below it.
///
/// Where `pids.events.local` exists (cgroup2 on Linux 6.13 and later),
/// `pids.events` counts the whole subtree and is read once. Before that,
/// and on cgroup v1, a refusal is counted in the `pids.events` of the
/// cgroup the forking task is in (a job's leaf, or a nested job), not of
/// the cgroup whose limit was hit: so the subtree's counts are added up.
pub(crate) fn pids_limit_hits(dir: &Path) -> Option<u64> {
    if dir.join("pids.events.local").exists() {
        return keyed(&dir.join("pids.events"), "max");
    }
    let mut total = keyed(&dir.join("pids.events"), "max")?;
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                total += pids_limit_hits(&e.path()).unwrap_or(0);
            }
        }
    }
    Some(total)
}

/// The highest cgroup above `own` (below `mount`) that this process may
/// manage, as delegation grants it (its `cgroup.procs` and
/// `cgroup.subtree_control` writable) and that holds no process itself:
/// where jobs can have controllers. `None` when that is `own` itself or
/// nothing above it is ours.
fn delegated_top(own: &Path, mount: &Path) -> Option<PathBuf> {
    let ours = |d: &Path| {
        [d.join("cgroup.procs"), d.join("cgroup.subtree_control")]
            .iter()
            .all(|f| rustix::fs::access(f, rustix::fs::Access::WRITE_OK).is_ok())
    };
    let mut top = None;
    for d in own.ancestors().skip(1) {
        if !d.starts_with(mount) || d == mount || !ours(d) {
            break;
        }
        top = Some(d.to_owned());
    }
    let top = top?;
    let empty = fs::read_to_string(top.join("cgroup.procs")).is_ok_and(|t| t.trim().is_empty());
    empty.then_some(top)
}

/// Whether `dir` is a cgroup directory with no process and no cgroup below it.
pub(crate) fn is_empty_cgroup(dir: &Path) -> bool {
    let no_procs = fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|t| t.trim().is_empty());
    let no_children = fs::read_dir(dir)
        .map(|d| !d.flatten().any(|e| e.file_type().is_ok_and(|t| t.is_dir())))
        .unwrap_or(false);
    no_procs && no_children
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

/// The `MAJ:MIN` of the disk a path names for `io.max`: a block device
/// node itself, else the device of the filesystem holding it; a partition
/// becomes its disk (the io controller limits whole disks).
pub(crate) fn block_device_of(path: &Path) -> Result<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = fs::metadata(path).map_err(|e| Error::os(format!("stat {}", path.display()), e))?;
    let dev = if meta.file_type().is_block_device() {
        meta.rdev()
    } else {
        meta.dev()
    };
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if !sys.exists() {
        return Err(Error::InvalidInput {
            what: "I/O rate limit",
            reason: format!(
                "{} is on {major}:{minor}, which is no block device (a network or memory filesystem has no disk to limit)",
                path.display()
            ),
        });
    }
    // A partition's sysfs directory holds a `partition` file; its parent is the disk.
    if sys.join("partition").exists()
        && let Ok(disk) = fs::read_to_string(sys.join("../dev"))
    {
        return Ok(disk.trim().to_owned());
    }
    Ok(format!("{major}:{minor}"))
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
    fn refused_forks_are_added_up_where_the_kernel_counts_them_locally() {
        let tmp = tempfile::tempdir().unwrap();
        let job = tmp.path().join("job");
        fs::create_dir_all(job.join("@0")).unwrap();
        fs::create_dir_all(job.join("nested/@0")).unwrap();
        fs::write(job.join("pids.events"), "max 0\n").unwrap();
        fs::write(job.join("@0/pids.events"), "max 3\n").unwrap();
        fs::write(job.join("nested/pids.events"), "max 0\n").unwrap();
        fs::write(job.join("nested/@0/pids.events"), "max 2\n").unwrap();
        assert_eq!(pids_limit_hits(&job), Some(5), "before 6.13: local counts");
        // 6.13 and later: the job's own file counts its subtree.
        fs::write(job.join("pids.events"), "max 5\n").unwrap();
        fs::write(job.join("pids.events.local"), "max 0\n").unwrap();
        assert_eq!(pids_limit_hits(&job), Some(5), "hierarchical counts");
    }

    #[test]
    fn job_chains_list_every_enclosing_job() {
        let chain = |p: &str| -> Vec<String> {
            job_chain(Path::new(p))
                .iter()
                .map(|c| c.display().to_string())
                .collect()
        };
        assert_eq!(chain("/taskloom/a/b/@3"), ["/taskloom/a", "/taskloom/a/b"]);
        assert_eq!(
            chain("/m/taskloom/a/@0/taskloom/c/@1"),
            ["/m/taskloom/a", "/m/taskloom/a/@0/taskloom/c"]
        );
        assert!(chain("/taskloom/@breakaway").is_empty());
        assert!(chain("/user.slice/x").is_empty());
        // cgroup v1: members live in the job directory itself.
        assert_eq!(chain("/taskloom/a/b"), ["/taskloom/a", "/taskloom/a/b"]);
    }

    #[test]
    fn job_contexts_are_read_from_cgroup_paths() {
        let ctx = |p: &str| job_context(Path::new(p)).map(|c| c.display().to_string());
        assert_eq!(
            ctx("/taskloom/outer/@0").as_deref(),
            Some("taskloom/outer/@0")
        );
        assert_eq!(
            ctx("/m/taskloom/a/b/@3/taskloom/c/@12").as_deref(),
            Some("taskloom/a/b/@3/taskloom/c/@12")
        );
        assert_eq!(ctx("/taskloom/@breakaway"), None);
        assert_eq!(
            ctx("/taskloom/outer/@0/taskloom/@breakaway").as_deref(),
            Some("taskloom/outer/@0")
        );
        assert_eq!(ctx("/user.slice"), None);
        assert_eq!(outside_jobs(Path::new("/m/taskloom/a/@0")), Path::new("/m"));
        assert_eq!(outside_jobs(Path::new("/")), Path::new("/"));
    }

    #[test]
    fn a_member_finds_the_jobs_around_its_own_one_level_out_at_a_time() {
        let own = Roots {
            v2: Some("/sys/fs/cgroup/u/taskloom/outer/taskloom/mine/taskloom".into()),
            v2_controllers: vec!["pids".into()],
            v2_enable_in: None,
            v1: vec![(
                Controller::Memory,
                "/sys/fs/cgroup/memory/m/taskloom/outer/taskloom/mine/taskloom".into(),
            )],
            problems: Vec::new(),
        };
        let levels = enclosing_roots(&own);
        let v2: Vec<_> = levels.iter().map(|r| r.v2.clone().unwrap()).collect();
        assert_eq!(
            v2,
            [
                PathBuf::from("/sys/fs/cgroup/u/taskloom/outer/taskloom"),
                PathBuf::from("/sys/fs/cgroup/u/taskloom"),
            ]
        );
        assert_eq!(
            levels[1].v1,
            [(
                Controller::Memory,
                PathBuf::from("/sys/fs/cgroup/memory/m/taskloom")
            )]
        );
        // Outside every job there is no level out.
        let top = Roots {
            v2: Some("/sys/fs/cgroup/u/taskloom".into()),
            ..own
        };
        assert!(
            enclosing_roots(&Roots {
                v1: Vec::new(),
                ..top
            })
            .is_empty()
        );
    }

    #[test]
    fn a_member_makes_jobs_inside_its_own_job_in_every_hierarchy() {
        // Hybrid: a member of job `outer` (cgroup2 /taskloom/outer/@0) that never
        // joined the v1 pids hierarchy (still in /), or joined it (/taskloom/outer).
        let tmp = tempfile::tempdir().unwrap();
        let (v2, pids) = (tmp.path().join("unified"), tmp.path().join("pids"));
        fs::create_dir_all(v2.join("taskloom/outer/@0")).unwrap();
        fs::create_dir_all(pids.join("taskloom/outer")).unwrap();
        let mountinfo = format!(
            "25 1 0:22 / {} rw - cgroup2 cgroup2 rw\n26 1 0:23 / {} rw - cgroup cgroup rw,pids\n",
            v2.display(),
            pids.display()
        );
        for own_pids in ["/", "/taskloom/outer"] {
            let own = format!("8:pids:{own_pids}\n0::/taskloom/outer/@0\n");
            let roots = detect(&mountinfo, &own, true);
            assert_eq!(roots.v2, Some(v2.join("taskloom/outer/taskloom")));
            assert_eq!(
                roots.v1,
                [(Controller::Pids, pids.join("taskloom/outer/taskloom"))],
                "{own_pids}: not the outer job's own root"
            );
        }
        // Outside every job nothing changes.
        let roots = detect(&mountinfo, "8:pids:/\n0::/\n", true);
        assert_eq!(roots.v1, [(Controller::Pids, pids.join("taskloom"))]);
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
            "cpu memory pids io rdma\n",
        )
        .unwrap();
        let roots = detect(&mountinfo, "0::/user.slice/me\n", true);
        assert_eq!(
            roots.v2.as_deref(),
            Some(base.join("user.slice/me/taskloom").as_path())
        );
        assert!(roots.v1.is_empty());
        assert_eq!(
            roots.v2_controllers,
            ["cpu", "memory", "pids", "io"],
            "rdma is not one taskloom uses (io is: the job's I/O accounting)"
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
        let roots = detect(&mountinfo, "4:memory:/own\n0::/\n", true);
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
