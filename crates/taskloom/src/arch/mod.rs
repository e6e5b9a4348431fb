//! One folder per architecture: everything that depends on the instruction
//! set lives here, so a second architecture is one new folder providing the
//! same items (`x86_64/mod.rs` lists them; `other.rs` is what an
//! architecture without a folder gets). Each assembly file opens with the
//! stack and frame layout it refers to.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::ThreadContext;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::*;

#[cfg(not(target_arch = "x86_64"))]
mod other;
#[cfg(not(target_arch = "x86_64"))]
pub use other::ThreadContext;
#[cfg(not(target_arch = "x86_64"))]
pub(crate) use other::*;
