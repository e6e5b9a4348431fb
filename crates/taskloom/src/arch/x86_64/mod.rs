//! x86_64: the register set (both systems) and, on Linux, everything
//! else that depends on the instruction set (`linux.rs`, `fiber.rs`).

mod context;
#[cfg(target_os = "linux")]
pub(crate) mod fiber;
#[cfg(target_os = "linux")]
mod linux;

pub use context::ThreadContext;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
