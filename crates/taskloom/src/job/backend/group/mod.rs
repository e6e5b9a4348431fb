//! The process-group backend, for machines where this process may write no
//! cgroup (see `pgroup.rs` for what a group can and cannot hold): a job
//! is a process group and a private state directory of this user's.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::direct::cgroup;
use super::{Accounting, JobBackend, Marks, limits_from_json, limits_to_json};
use crate::error::{Error, OrLog, Result};
use crate::job::{Capability, JobLimits, guardian};

pub(crate) mod pgroup;
use crate::process::{Process, ProcessBuilder, ProcessGroup};

/// A job kept as a process group.
#[derive(Debug)]
pub(crate) struct Group {
    name: String,
    /// The job's state directory (its group id, limits, marks).
    dir: PathBuf,
    /// The creating handle's shared lock on `dir` (the guardian holds one
    /// too): while either lives, a kill-on-close job is not stale.
    _lock: Option<std::os::fd::OwnedFd>,
}

impl Group {
    /// A new job's state directory.
    pub(crate) fn create(name: &str) -> Result<Group> {
        let dir = pgroup::create_state(name)?;
        let lock = pgroup::lock_shared(&dir)
            .map_err(|e| Error::os(format!("lock the state of job {name}"), e))?;
        Ok(Group {
            name: name.to_owned(),
            dir,
            _lock: Some(lock),
        })
    }

    /// The job `name` of this user's, with its limits; `None` when there is
    /// no such job of this user's.
    pub(crate) fn open(name: &str) -> Result<Option<(Group, JobLimits)>> {
        let dir = pgroup::state_root().join(name);
        if !dir.is_dir() {
            return Ok(None);
        }
        pgroup::check_private(&pgroup::state_root())?;
        pgroup::check_private(&dir)?;
        if let Err(e) = rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK) {
            return Err(Error::PermissionDenied {
                what: format!("open job {name}"),
                source: e.into(),
            });
        }
        if pgroup::is_stale(&dir) {
            // Kill-on-close, and its creator and guardian are gone (killed
            // with an enclosing job, say): whatever is left of it goes, as
            // kill-on-close says, and so does its state.
            let pgid = pgroup::pgid(&dir);
            if pgid > 1 {
                pgroup::kill_group(pgid);
            }
            fs::remove_dir_all(&dir).or_log(|| format!("remove the stale state of job {name}"));
            return Ok(None);
        }
        let limits = fs::read(dir.join("limits.json"))
            .ok()
            .and_then(|b| limits_from_json(&b))
            .unwrap_or_default();
        let job = Group {
            name: name.to_owned(),
            dir,
            _lock: None,
        };
        Ok(Some((job, limits)))
    }

    fn pgid(&self) -> i32 {
        pgroup::pgid(&self.dir)
    }

    fn check_exists(&self) -> Result<()> {
        if self.dir.is_dir() {
            Ok(())
        } else {
            Err(Error::NoSuchJob(self.name.clone()))
        }
    }
}

impl JobBackend for Group {
    fn create_nested(
        &self,
        _name: &str,
        _leaf: &str,
        _contain: Option<super::Containment>,
    ) -> Result<Box<dyn JobBackend>> {
        Err(Error::JobsUnavailable(format!(
            "nested jobs need cgroups, and none is writable here ({})",
            cgroup::roots().problems.join("; ")
        )))
    }

    fn secure(&self, mode: u32) -> Result<()> {
        // Job state outside cgroups is trusted only while it is private.
        if mode & 0o077 != 0 {
            return Err(Error::InvalidInput {
                what: "job mode",
                reason: format!(
                    "{mode:o} shares the job with other users, which needs cgroups (see `taskloom job caps`)"
                ),
            });
        }
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::os(format!("chmod {}", self.dir.display()), e))
    }

    fn apply_limits(&self, limits: &JobLimits, _before: &JobLimits) -> Result<()> {
        let cgroup_only = [
            (limits.active_processes.is_some(), "an active process limit"),
            (limits.job_memory.is_some(), "a job memory limit"),
            (limits.affinity.is_some(), "a job affinity limit"),
            (limits.cpu_rate_percent.is_some(), "a CPU rate limit"),
            (limits.cpu_weight.is_some(), "a CPU weight"),
            (limits.memory_low.is_some(), "a memory floor"),
            (limits.memory_high.is_some(), "a memory ceiling"),
            (limits.notify.any(), "a soft (notification) limit"),
            (!limits.io_rates.is_empty(), "an I/O rate limit"),
        ];
        if let Some((_, what)) = cgroup_only.iter().find(|(set, _)| *set) {
            return Err(Error::InvalidInput {
                what: "job limit",
                reason: format!(
                    "{what} needs cgroups, and none is writable here (see `taskloom job caps`)"
                ),
            });
        }
        fs::write(self.dir.join("limits.json"), limits_to_json(limits)).map_err(|e| {
            Error::os(
                format!("write {}", self.dir.join("limits.json").display()),
                e,
            )
        })
    }

    fn spawn(&self, builder: ProcessBuilder, _limits: &JobLimits) -> Result<Process> {
        let pgid = self.pgid();
        let lead = pgid <= 0 || pgroup::members(pgid).is_empty();
        let group = if lead {
            ProcessGroup::NewGroup
        } else {
            ProcessGroup::Join(pgid)
        };
        let child = builder.process_group(group).spawn()?;
        if lead {
            pgroup::set_pgid(&self.dir, child.pid())?;
        }
        Ok(child)
    }

    fn assign(&self, pid: i32, _limits: &JobLimits, _alive: &dyn Fn() -> bool) -> Result<()> {
        let pgid = self.pgid();
        let target = if pgid > 0 && !pgroup::members(pgid).is_empty() {
            pgid
        } else {
            pid
        };
        let (p, t) = (
            rustix::process::Pid::from_raw(pid),
            rustix::process::Pid::from_raw(target),
        );
        if let Err(e) = rustix::process::setpgid(p, t) {
            let e = std::io::Error::from(e);
            return Err(match e.raw_os_error() {
                Some(libc::ESRCH) if !std::path::Path::new(&format!("/proc/{pid}")).exists() => {
                    Error::NoSuchProcess { pid }
                }
                _ => Error::InvalidInput {
                    what: "assign",
                    reason: format!(
                        "without cgroups a job is a process group, and only a child of this process that has not yet called execve can join one ({e}); spawn it into the job instead"
                    ),
                },
            });
        }
        if target == pid {
            pgroup::set_pgid(&self.dir, pid)?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        self.check_exists()?;
        Ok(pgroup::members(self.pgid()))
    }

    fn accounting(&self, _limits: &JobLimits) -> Result<Accounting> {
        self.check_exists()?;
        let live = pgroup::member_rows(self.pgid());
        Ok(Accounting {
            pids: live.iter().map(|e| e.pid).collect(),
            peak_processes: None,
            user_time: live.iter().map(|e| e.user_time).sum(),
            kernel_time: live.iter().map(|e| e.kernel_time).sum(),
            memory_current: Some(live.iter().map(|e| e.rss).sum()),
            memory_peak: None,
            io: None,
            pressure: None,
            oom_kills: None,
            memory_high_hits: None,
            process_limit_hits: None,
            frozen: self.dir.join("frozen").exists(),
        })
    }

    fn kill_all(&self) -> Result<usize> {
        Ok(pgroup::kill_group(self.pgid()))
    }

    fn is_empty(&self) -> Result<bool> {
        Ok(self.pids()?.is_empty())
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let pgid = self.pgid();
        // The job's process group (checked: a real group of this user's).
        if pgid > 1
            && let Some(group) = rustix::process::Pid::from_raw(pgid)
        {
            let sig = if frozen {
                rustix::process::Signal::STOP
            } else {
                rustix::process::Signal::CONT
            };
            match rustix::process::kill_process_group(group, sig) {
                // No member left: nothing to stop or start.
                Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                Err(e) => {
                    return Err(Error::os(
                        if frozen {
                            "freeze job (SIGSTOP to its group)"
                        } else {
                            "thaw job (SIGCONT to its group)"
                        },
                        e.into(),
                    ));
                }
            }
        }
        let flag = self.dir.join("frozen");
        if frozen {
            fs::write(&flag, "1")
        } else {
            fs::remove_file(&flag).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
        }
        .or_log(|| format!("record the frozen state in {}", flag.display()));
        Ok(())
    }

    fn marks(&self) -> Marks {
        Marks::Files(self.dir.clone())
    }

    fn guardian_plan(&self) -> guardian::Plan {
        guardian::Plan::for_process_group(&self.dir)
    }

    fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::os(format!("remove {}", self.dir.display()), e))
            }
            _ => {
                pgroup::remove_empty_roots();
                Ok(())
            }
        }
    }
}

/// What a process group can and cannot enforce.
pub(crate) fn capabilities() -> Vec<Capability> {
    let why = if pgroup::forced() {
        "TASKLOOM_JOB_BACKEND=process-group".to_string()
    } else {
        format!(
            "no cgroup is writable here: {}",
            cgroup::roots().problems.join("; ")
        )
    };
    let no = |feature: &'static str| Capability {
        feature,
        enforced: false,
        detail: "needs cgroups (why there are none: see membership)".into(),
    };
    let yes = |feature: &'static str, detail: &str| Capability {
        feature,
        enforced: true,
        detail: detail.into(),
    };
    vec![
        Capability {
            feature: "membership",
            enforced: true,
            detail: format!(
                "process group ({why}); double forks stay in, but a member that calls setsid or setpgid leaves the job"
            ),
        },
        no("active-processes"),
        no("job-memory"),
        yes("process-memory", "RLIMIT_AS per process"),
        no("affinity"),
        no("cpu-rate"),
        no("cpu-weight"),
        no("memory-low"),
        no("memory-high"),
        no("notification-limits"),
        no("io-rate"),
        yes("priority", "nice of each member"),
        yes("process-time", "RLIMIT_CPU per process"),
        yes(
            "die-on-unhandled-exception",
            &super::direct::die_on_exception_detail(),
        ),
        yes(
            "job-time",
            "summed over live members by a watcher (time of ended members is not counted)",
        ),
        yes(
            "terminate",
            "kill(-pgid) until the group is empty; escaped members survive",
        ),
        yes(
            "freeze",
            "SIGSTOP/SIGCONT to the group (a member may handle SIGCONT)",
        ),
        yes(
            "kill-on-close",
            "guardian process kills the group when the last handle closes; survives SIGKILL of the owner",
        ),
        yes("notifications", "member scans, polled"),
        no("nesting"),
        no("total-processes"),
    ]
}
