//! The parts of the process API that only Linux has: credentials by uid
//! and gid, resource limits, cgroup placement and the namespaces of a
//! contained job, and the placement hook a job sets on a spawn.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use super::{Process, sys};
use crate::error::{Error, Result};

/// Where a placer puts a child, decided just before it is started.
#[derive(Debug)]
pub(crate) enum Placement {
    /// Into these cgroups (before its first instruction).
    Cgroup(CgroupPlacement),
    /// Into a process group of its own.
    NewGroup,
}

/// The placement hook: how a layer above this one (the job layer, which
/// `process` knows nothing of) decides where a child starts. It runs in
/// [`ProcessBuilder::spawn`], before the fork; `None` leaves the child
/// where the caller is. It is the one way a job reaches a spawn that no
/// job handle makes (`CREATE_BREAKAWAY_FROM_JOB`); see
/// [`ProcessBuilder::place_with`].
pub(crate) struct Placer(Box<dyn FnOnce() -> Result<Option<Placement>> + Send>);

impl Placer {
    pub(crate) fn new(f: impl FnOnce() -> Result<Option<Placement>> + Send + 'static) -> Placer {
        Placer(Box::new(f))
    }

    pub(crate) fn decide(self) -> Result<Option<Placement>> {
        (self.0)()
    }
}

impl std::fmt::Debug for Placer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Placer")
    }
}

/// The user and groups a child runs as (`CreateProcessAsUser`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Real, effective and saved user id.
    pub uid: u32,
    /// Real, effective and saved group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Credentials {
    /// Looks up a user by name or numeric id, with its primary and
    /// supplementary groups, through NSS (files, LDAP, sssd …, as the
    /// machine is set up). A numeric id without an entry runs with its own
    /// number as group and no supplementary groups.
    pub fn for_user(user: &str) -> Result<Self> {
        use nix::unistd::{Uid, User};
        if user.contains('\0') {
            return Err(Error::NulByte {
                what: "user name",
                value: user.into(),
            });
        }
        let failed = |e: nix::Error| Error::os(format!("look up user {user}"), e.into());
        let entry = match User::from_name(user).map_err(failed)? {
            Some(entry) => entry,
            None => {
                let Ok(uid) = user.parse::<u32>() else {
                    return Err(Error::NoSuchUser {
                        kind: "user",
                        name: user.into(),
                    });
                };
                match User::from_uid(Uid::from_raw(uid)).map_err(failed)? {
                    Some(entry) => entry,
                    None => {
                        return Ok(Credentials {
                            uid,
                            gid: uid,
                            groups: Vec::new(),
                        });
                    }
                }
            }
        };
        let gid = entry.gid.as_raw();
        let mut groups: Vec<u32> = std::ffi::CString::new(entry.name)
            .ok()
            .and_then(|name| nix::unistd::getgrouplist(&name, entry.gid).ok())
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default();
        if groups.is_empty() {
            groups.push(gid);
        }
        Ok(Credentials {
            uid: entry.uid.as_raw(),
            gid,
            groups,
        })
    }

    /// The calling process's own user and primary group, with no
    /// supplementary groups (the start of a `--group`-only switch).
    pub fn of_caller() -> Self {
        Credentials {
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            groups: Vec::new(),
        }
    }

    /// The id of group `group`, a name (through NSS) or a number.
    pub fn group_id(group: &str) -> Result<u32> {
        if let Ok(gid) = group.parse::<u32>() {
            return Ok(gid);
        }
        if group.contains('\0') {
            return Err(Error::NulByte {
                what: "group name",
                value: group.into(),
            });
        }
        nix::unistd::Group::from_name(group)
            .map_err(|e| Error::os(format!("look up group {group}"), e.into()))?
            .map(|g| g.gid.as_raw())
            .ok_or_else(|| Error::NoSuchUser {
                kind: "group",
                name: group.into(),
            })
    }
}

/// A per-process resource limit (`setrlimit`) set before the first instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceLimit {
    /// `RLIMIT_AS`: address space in bytes (the job's per-process memory limit).
    AddressSpace,
    /// `RLIMIT_CPU`: CPU seconds; SIGXCPU at the soft limit, SIGKILL at the hard one.
    CpuTime,
    /// `RLIMIT_NOFILE`: open descriptors.
    OpenFiles,
    /// `RLIMIT_NPROC`: processes of the real user.
    Processes,
    /// `RLIMIT_CORE`: core file size.
    CoreSize,
    /// `RLIMIT_STACK`: main thread stack size.
    Stack,
}

impl ResourceLimit {
    pub(crate) fn raw(self) -> i32 {
        (match self {
            ResourceLimit::AddressSpace => libc::RLIMIT_AS,
            ResourceLimit::CpuTime => libc::RLIMIT_CPU,
            ResourceLimit::OpenFiles => libc::RLIMIT_NOFILE,
            ResourceLimit::Processes => libc::RLIMIT_NPROC,
            ResourceLimit::CoreSize => libc::RLIMIT_CORE,
            ResourceLimit::Stack => libc::RLIMIT_STACK,
        }) as i32
    }
}

/// Where a child is placed before its first instruction: the hook the job
/// code uses, open to anyone who manages cgroups themselves.
#[derive(Debug, Default)]
pub struct CgroupPlacement {
    /// A cgroup v2 directory, passed to `clone3(CLONE_INTO_CGROUP)`.
    pub v2_dir: Option<OwnedFd>,
    /// The `cgroup.procs` path of that same v2 directory: used instead of
    /// `CLONE_INTO_CGROUP` when the kernel refuses it or kills the child (a
    /// 6.18 bug after `cgroup.kill`, see ARCHITECTURE.md).
    pub v2_procs: Option<PathBuf>,
    /// `cgroup.procs` files (cgroup v1 hierarchies) the child writes itself into before `execve`.
    pub procs_files: Vec<PathBuf>,
    /// Namespaces the child joins once placed, before anything else it does
    /// (a contained job's: see [`Namespaces`]); shared, not copied, by the
    /// spawns of a job.
    pub namespaces: Option<std::sync::Arc<Namespaces>>,
}

/// A cgroup namespace rooted at a job's cgroup, and the user namespace that
/// owns it when the job's creator is not root (an unprivileged process may
/// only make a cgroup namespace inside a user namespace of its own, which
/// maps nothing but its own user and group).
///
/// Where cgroup2 is mounted with `nsdelegate` (systemd's default), a process
/// in it cannot move itself, or be moved by anyone inside, to a cgroup
/// outside the namespace's root, and cannot change the root's own limits:
/// what keeps a member in its job (`job::JobBuilder::contain`).
///
/// With an isolation, a job also has a pid namespace and a mount namespace
/// of its own: a member cannot name (so cannot signal, trace or read) any
/// process outside its job, the namespace's init ends every member when it
/// ends, and the member's cgroup2 mount shows only its job's subtree, so no
/// ancestor's limits can be reached through a path either.
#[derive(Debug)]
pub struct Namespaces {
    user: Option<OwnedFd>,
    cgroup: OwnedFd,
    mnt: Option<OwnedFd>,
    pid: Option<OwnedFd>,
    /// The pid namespace's init, when these were made here (not taken from a member).
    init: Option<Init>,
}

/// The init of a job's pid namespace, as its creator holds it.
#[derive(Debug)]
struct Init {
    pid: i32,
    ctl: OwnedFd,
    armed: std::sync::atomic::AtomicBool,
}

impl Namespaces {
    /// Makes them: a helper that `place` moves (given its pid) into the
    /// cgroup that becomes the root unshares them and hands them over.
    pub(crate) fn rooted_by(new_user: bool, place: &dyn Fn(i32) -> Result<()>) -> Result<Self> {
        Self::isolated_by(new_user, None, place)
    }

    /// As [`Namespaces::rooted_by`], and with `isolation` a mount and a pid
    /// namespace too (whose init the creator moves out of the job's cgroup:
    /// [`Namespaces::init_pid`]).
    pub(crate) fn isolated_by(
        new_user: bool,
        isolation: Option<&sys::Isolation>,
        place: &dyn Fn(i32) -> Result<()>,
    ) -> Result<Self> {
        let made = sys::make_namespaces(new_user, isolation, place)?;
        let (mnt, pid, init) = match made.isolated {
            Some(i) => (
                Some(i.mnt),
                Some(i.pid),
                Some(Init {
                    pid: i.init_pid,
                    ctl: i.init_ctl,
                    armed: false.into(),
                }),
            ),
            None => (None, None, None),
        };
        Ok(Namespaces {
            user: made.user,
            cgroup: made.cgroup,
            mnt,
            pid,
            init,
        })
    }

    /// The pid (in ours) of the pid namespace's init these were made with.
    pub(crate) fn init_pid(&self) -> Option<i32> {
        self.init.as_ref().map(|i| i.pid)
    }

    /// Whether members get a pid and a mount namespace of their job's own.
    pub fn is_isolated(&self) -> bool {
        self.pid.is_some()
    }

    /// Tells the init how the job ends (once; later calls do nothing): with
    /// its last handle (`holders`: a read end of the holders' pipe), or,
    /// without, only when the job is terminated with its init or deleted.
    pub(crate) fn arm_init(&self, holders: Option<std::os::fd::BorrowedFd<'_>>) -> Result<()> {
        let Some(init) = &self.init else {
            return Ok(());
        };
        if init.armed.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return Ok(());
        }
        use std::os::fd::AsFd;
        sys::arm_init(init.ctl.as_fd(), holders)
            .map_err(|e| Error::os("arm the job's init (pid namespace)", e))
    }

    /// The namespaces member `pid` started in, when a job's handle made them
    /// for it: a cgroup namespace other than ours, owned by a user namespace
    /// that is ours, or one this user made right below ours (so never one
    /// the member made itself, where it could be root). `None` when the
    /// member is in ours (it was assigned, or the job is not contained) or
    /// they are not such. The process is held by a pidfd while they are
    /// opened, so they are its own even if its number is reused.
    pub(crate) fn of_member(pid: i32) -> Option<Self> {
        use rustix::fs::{Mode, OFlags, fstat, open};
        use std::os::fd::AsFd;
        let process = Process::open(pid).ok()?;
        let ns = |who: &str, kind: &str| {
            open(
                format!("/proc/{who}/ns/{kind}").as_str(),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok()
        };
        let ino = |fd: &OwnedFd| fstat(fd).ok().map(|s| (s.st_dev, s.st_ino));
        let pid_s = pid.to_string();
        let (cgroup, user) = (ns(&pid_s, "cgroup")?, ns(&pid_s, "user")?);
        let (pidns, mnt) = (ns(&pid_s, "pid")?, ns(&pid_s, "mnt")?);
        // Still the process the pidfd holds: the descriptors are its.
        process.signal(0).ok()?;
        let (own_cgroup, own_user) = (ns("self", "cgroup")?, ns("self", "user")?);
        if ino(&cgroup)? == ino(&own_cgroup)? {
            return None;
        }
        let owner = sys::namespace_relative(cgroup.as_fd(), false).ok()?;
        if ino(&owner)? != ino(&user)? {
            return None;
        }
        // The job's own pid and mount namespaces, where it has them: made
        // with the cgroup namespace, so owned by the same user namespace.
        let (own_pid, own_mnt) = (ns("self", "pid")?, ns("self", "mnt")?);
        let isolated = ino(&pidns)? != ino(&own_pid)?;
        if isolated {
            let owned_alike = |fd: &OwnedFd| {
                sys::namespace_relative(fd.as_fd(), false)
                    .ok()
                    .and_then(|o| ino(&o))
                    == ino(&user)
            };
            if ino(&mnt)? == ino(&own_mnt)? || !owned_alike(&pidns) || !owned_alike(&mnt) {
                return None;
            }
        }
        let (pid, mnt) = if isolated {
            (Some(pidns), Some(mnt))
        } else {
            (None, None)
        };
        if ino(&user)? == ino(&own_user)? {
            return Some(Namespaces {
                user: None,
                cgroup,
                mnt,
                pid,
                init: None,
            });
        }
        let parent = sys::namespace_relative(user.as_fd(), true).ok()?;
        let ours = ino(&parent)? == ino(&own_user)?
            && sys::namespace_owner(user.as_fd()).ok()? == rustix::process::geteuid().as_raw();
        ours.then_some(Namespaces {
            user: Some(user),
            cgroup,
            mnt,
            pid,
            init: None,
        })
    }

    /// Whether a user namespace comes with the cgroup namespace.
    pub fn has_user_namespace(&self) -> bool {
        self.user.is_some()
    }

    /// The descriptors a spawn joins: user, cgroup, pid, mount (-1: none).
    pub(crate) fn raw(&self) -> [RawFd; 4] {
        let raw = |f: &Option<OwnedFd>| f.as_ref().map_or(-1, |f| f.as_raw_fd());
        [
            raw(&self.user),
            self.cgroup.as_raw_fd(),
            raw(&self.pid),
            raw(&self.mnt),
        ]
    }
}

#[cfg(test)]
mod namespace_tests {
    use super::*;
    use crate::process::{ProcessBuilder, Stdio};
    use std::io::Read;
    use std::os::fd::AsFd;

    fn inode(fd: std::os::fd::BorrowedFd<'_>) -> u64 {
        rustix::fs::fstat(fd).unwrap().st_ino
    }

    fn output_of(ns: &std::sync::Arc<Namespaces>, program: &str, args: &[&str]) -> String {
        let mut child = ProcessBuilder::new(program)
            .args(args)
            .stdin(Stdio::Null)
            .stdout(Stdio::Piped)
            .cgroup_placement(CgroupPlacement {
                namespaces: Some(ns.clone()),
                ..Default::default()
            })
            .spawn()
            .unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(child.wait().unwrap().success());
        out.trim().to_owned()
    }

    #[test]
    fn the_namespace_helper_roots_namespaces_that_spawns_join() {
        // With a user namespace: what an ordinary user's job gets (root may too).
        let ns = match Namespaces::rooted_by(true, &|_| Ok(())) {
            Ok(ns) => std::sync::Arc::new(ns),
            Err(e) => {
                // Some machines refuse unprivileged user namespaces; root is never refused.
                assert!(
                    !rustix::process::geteuid().is_root() && std::env::var_os("CI").is_none(),
                    "{e}"
                );
                eprintln!("not run: this machine refuses a user namespace: {e}");
                return;
            }
        };
        assert!(ns.has_user_namespace());
        let own = std::fs::File::open("/proc/self/ns/cgroup").unwrap();
        assert_ne!(
            inode(ns.cgroup.as_fd()),
            inode(own.as_fd()),
            "a new namespace"
        );
        // A spawned child is in it, with our own user id (the map holds only ours).
        let link = output_of(&ns, "readlink", &["/proc/self/ns/cgroup"]);
        assert_eq!(link, format!("cgroup:[{}]", inode(ns.cgroup.as_fd())));
        let uid = output_of(&ns, "id", &["-u"]);
        assert_eq!(uid, rustix::process::geteuid().as_raw().to_string());
        // A placement that fails: its error, and the helper is gone.
        let e = Namespaces::rooted_by(true, &|_| {
            Err(Error::InvalidInput {
                what: "test",
                reason: "refused".into(),
            })
        })
        .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{e}");
        // A placement that panics: the panic goes on, after the helper was stopped.
        let r = std::panic::catch_unwind(|| Namespaces::rooted_by(true, &|_| panic!("placement")));
        assert!(r.is_err());
    }
}
