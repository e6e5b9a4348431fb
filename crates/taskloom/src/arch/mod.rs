//! One folder per architecture: everything that depends on the instruction
//! set lives here, so a second architecture is one new folder providing the
//! same items (`x86_64/mod.rs` lists them; `other.rs` is what an
//! architecture without a folder gets). Each assembly file opens with the
//! stack and frame layout it refers to.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::ThreadContext;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(crate) use x86_64::*;

#[cfg(all(target_os = "linux", not(target_arch = "x86_64")))]
mod other;
#[cfg(all(target_os = "linux", not(target_arch = "x86_64")))]
pub use other::ThreadContext;
#[cfg(all(target_os = "linux", not(target_arch = "x86_64")))]
pub(crate) use other::*;

/// `struct clone_args` of `clone3(2)`, which each architecture's
/// `clone_raw` starts a spawn's child with.
#[cfg(target_os = "linux")]
#[repr(C)]
#[derive(Default)]
pub(crate) struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// Places the child in the cgroup whose descriptor `cgroup` holds (Linux 5.7).
#[cfg(target_os = "linux")]
pub(crate) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// Resets every caught signal to `SIG_DFL` in the child (Linux 5.5).
#[cfg(target_os = "linux")]
pub(crate) const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
