//! [`JobBuilder`]: `CreateJobObject`'s options, the same on both systems
//! (what only Linux has is marked), and the job's own name.

use super::name::anon_name;
use super::{Job, JobLimits, validate_name};
use crate::error::Result;

/// Builds a job: `CreateJobObject` with its options.
///
/// Every option is its own setting: the order of the calls never matters
/// (kill-on-close is not one of the [`JobLimits`], so setting the limits
/// cannot switch it off).
///
/// ```
/// use taskloom::job::{Job, JobLimits};
/// let limits = JobLimits { active_processes: Some(8), ..Default::default() };
/// let a = Job::builder().kill_on_close(true).limits(limits.clone());
/// let b = Job::builder().limits(limits).kill_on_close(true);
/// assert!(a.is_kill_on_close() && b.is_kill_on_close());
/// ```
#[derive(Debug, Default)]
pub struct JobBuilder {
    pub(super) name: Option<String>,
    pub(super) limits: JobLimits,
    pub(super) kill_on_close: bool,
    #[cfg(target_os = "linux")]
    pub(super) mode: Option<u32>,
    #[cfg(target_os = "linux")]
    pub(super) uncontained: bool,
    #[cfg(target_os = "linux")]
    pub(super) hide_services: bool,
}

impl JobBuilder {
    /// A named job (`lpName`); anonymous when not called.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Limits applied before any process joins (they replace earlier
    /// `limits` calls; kill-on-close and the other options stay as set).
    pub fn limits(mut self, limits: JobLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Kill every member when the last handle closes
    /// (`JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`): on Linux a guardian process
    /// holds the job, so this holds even when the owner is SIGKILLed; on
    /// Windows the kernel acts when the last handle to the job closes.
    pub fn kill_on_close(mut self, yes: bool) -> Self {
        self.kill_on_close = yes;
        self
    }

    /// Whether the job will be created with kill-on-close.
    pub fn is_kill_on_close(&self) -> bool {
        self.kill_on_close
    }

    #[cfg(target_os = "linux")]
    /// The job's security descriptor as permission bits, e.g. `0o700`
    /// (permission bits only: anything above `0o777` is refused). The owner
    /// keeps every right; others may see the job with read bits, and assign
    /// processes to it, terminate and freeze it with write bits. Limits and
    /// the job's metadata stay the owner's.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    #[cfg(target_os = "linux")]
    /// Whether the processes this handle starts are kept in the job even
    /// when they try to leave it (on by default).
    ///
    /// Each starts in a cgroup namespace rooted at the job: where cgroup2
    /// is mounted with `nsdelegate` (systemd's default, and what a delegated
    /// subtree needs), the kernel then refuses to move it, or anything it
    /// starts, to a cgroup outside the job, and refuses its writes to the
    /// job's own limits, whoever the process runs as. Without this, a
    /// member that may write `cgroup.procs` above the job (its owner, on a
    /// delegated subtree; root) can move itself out with one write.
    ///
    /// Where the machine allows, the job also gets a pid namespace and a
    /// mount namespace of its own: a member sees and can signal only its
    /// job's processes (not the guardian, not the owner), the kernel ends
    /// every member when the job closes even without the guardian, and the
    /// member's `/sys/fs/cgroup` shows its job alone, so no enclosing job's
    /// limit is within its reach ([`JobBuilder::hide_services`] closes the
    /// service manager too).
    ///
    /// What it costs: one short-lived helper process when the job is made,
    /// and the pid namespace's init for as long as the job lasts.
    /// When the creator is not root, the namespace comes with a user
    /// namespace that maps only the creator's user and group (the kernel
    /// lets an unprivileged process make a cgroup namespace nowhere else);
    /// inside it set-user-ID programs (`sudo`, `su`) do not gain
    /// privileges, and files of other users show as `nobody`. Switch it off
    /// for jobs whose members need those. A job that allows breakaway is
    /// never contained (its members may leave by design), nor are jobs on
    /// machines without `nsdelegate` or without cgroups; processes assigned
    /// to a job keep their namespaces. A handle from [`Job::open`] starts
    /// its processes in the namespaces of a member it finds in the job
    /// (one a handle of the job started), so a job with no such member
    /// gets its first process from an opened handle uncontained.
    /// [`Job::is_contained`] says which it is.
    pub fn contain(mut self, yes: bool) -> Self {
        self.uncontained = !yes;
        self
    }

    #[cfg(target_os = "linux")]
    /// Hides the user's service manager and buses from the processes this
    /// handle starts (off by default: desktop programs need a session bus).
    ///
    /// A member that may talk to systemd can have it start a process that
    /// is in no job of ours (`systemd-run --user`), as a Windows process
    /// can through WMI. With this, the job's mount namespace covers the
    /// session bus and the manager's private socket (`$XDG_RUNTIME_DIR/bus`,
    /// `$XDG_RUNTIME_DIR/systemd`, the bus `DBUS_SESSION_BUS_ADDRESS` names
    /// by path), the system bus and the system manager's socket, so such a
    /// request fails. Only for a contained job (the default) on a machine
    /// where it gets a mount namespace ([`Job::capabilities`], row
    /// `containment`); creating the job fails where it cannot be done.
    pub fn hide_services(mut self, yes: bool) -> Self {
        self.hide_services = yes;
        self
    }

    /// The job's own name: the one given (checked), or a fresh anonymous one.
    pub(super) fn leaf_name(&self) -> Result<String> {
        match &self.name {
            Some(n) => {
                validate_name(n)?;
                Ok(n.clone())
            }
            None => Ok(anon_name()),
        }
    }

    /// Creates a top-level job.
    pub fn create(self) -> Result<Job> {
        Job::create_at(None, self)
    }

    /// Creates a job nested in `parent`: the parent's limits apply too, its
    /// accounting includes this job, and terminating it covers this job.
    pub fn create_in(self, parent: &Job) -> Result<Job> {
        Job::create_at(Some(parent), self)
    }
}

impl Job {
    /// `CreateJobObject(NULL, name)`: an empty job with no limits.
    pub fn create(name: Option<&str>) -> Result<Job> {
        let mut b = JobBuilder::default();
        if let Some(n) = name {
            b = b.name(n);
        }
        b.create()
    }

    /// A builder for a job with options.
    pub fn builder() -> JobBuilder {
        JobBuilder::default()
    }
}
