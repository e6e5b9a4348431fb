//! How the job layer reaches a spawn that no job handle makes: the
//! placement hook ([`Placer`]). `CREATE_BREAKAWAY_FROM_JOB` is a flag on
//! [`ProcessBuilder`], but what it means depends on the caller's job, which
//! the process layer knows nothing of; this module adds the flag to the
//! builder and hands it the decision, to run just before the fork. On
//! Windows the flag goes to `CreateProcessW` as it is, and the kernel
//! decides.

#[cfg(target_os = "linux")]
use super::backend;
#[cfg(target_os = "linux")]
use crate::process::Placer;
use crate::process::ProcessBuilder;

impl ProcessBuilder {
    /// `CREATE_BREAKAWAY_FROM_JOB`: when the calling process is in a job, start
    /// the child outside it. Allowed only if that job's limits say
    /// `breakaway_ok`; otherwise the spawn fails with a permission error.
    /// The child lands in taskloom's own `@breakaway` cgroup beside the jobs
    /// (or, without cgroups, in a process group of its own). Which job the
    /// caller is in is read when the child is spawned.
    #[cfg(target_os = "linux")]
    pub fn breakaway_from_job(self, yes: bool) -> Self {
        self.place_with(yes.then(|| Placer::new(backend::breakaway)))
    }

    /// `CREATE_BREAKAWAY_FROM_JOB`: when the calling process is in a job, start
    /// the child outside it. Allowed only if that job's limits say
    /// `breakaway_ok` (`JOB_OBJECT_LIMIT_BREAKAWAY_OK`); otherwise the spawn
    /// fails with a permission error.
    #[cfg(windows)]
    pub fn breakaway_from_job(mut self, yes: bool) -> Self {
        self.breakaway = yes;
        self
    }
}
