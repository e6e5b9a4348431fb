//! Image load and unload events from the dynamic loader's own list.
//!
//! At the exec stop the loader has not run yet: the auxiliary vector gives
//! the program headers (`AT_PHDR`, `AT_PHNUM`), the loader's base
//! (`AT_BASE`) and the entry point (`AT_ENTRY`). The main image and the
//! loader are reported at once; a breakpoint on the entry point waits for
//! the loader to finish. There the main image's `DT_DEBUG` entry points to
//! `struct r_debug`, whose `r_map` lists every loaded object (`link_map`)
//! and whose `r_brk` is the function the loader calls before and after
//! each change (`dlopen`, `dlclose`). A breakpoint on `r_brk` then reports
//! each change when `r_state` is `RT_CONSISTENT` again, by comparing the
//! list with what was reported.
//!
//! Memory is read and breakpoints written through `/proc/<pid>/mem`, which
//! the tracer may write even on read-only text. The breakpoint instruction
//! and the program counter come from `arch` (x86_64: `int3`, `rip`); on an
//! architecture without them only the images at start are reported.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::FileExt;

use nix::sys::ptrace;
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

use super::DebugEvent;
use crate::error::OrLog;

const AT_PHDR: u64 = 3;
const AT_PHNUM: u64 = 5;
const AT_BASE: u64 = 7;
const AT_ENTRY: u64 = 9;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const DT_NULL: i64 = 0;
const DT_DEBUG: i64 = 21;
const RT_CONSISTENT: u32 = 0;

/// A software breakpoint: the byte it replaced.
#[derive(Debug, Clone, Copy)]
struct Breakpoint {
    addr: u64,
    saved: u8,
}

/// What is known of one process's images.
#[derive(Debug, Clone, Default)]
pub(super) struct Images {
    /// On the program's entry point, until the loader has run.
    entry: Option<Breakpoint>,
    /// On the loader's `r_brk`.
    brk: Option<Breakpoint>,
    /// Where the `DT_DEBUG` value is (it points to `r_debug` once set).
    dt_debug: Option<u64>,
    /// The images reported loaded: base and path.
    loaded: BTreeSet<(u64, Vec<u8>)>,
}

fn mem(pid: i32) -> Option<File> {
    File::options()
        .read(true)
        .write(true)
        .open(format!("/proc/{pid}/mem"))
        .ok()
}

fn read_u64(f: &File, addr: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, addr).ok()?;
    Some(u64::from_ne_bytes(b))
}

fn read_u32(f: &File, addr: u64) -> Option<u32> {
    let mut b = [0u8; 4];
    f.read_exact_at(&mut b, addr).ok()?;
    Some(u32::from_ne_bytes(b))
}

/// A NUL-terminated string of at most 4096 bytes.
fn read_cstr(f: &File, addr: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 256];
    while out.len() < 4096 {
        let Ok(n) = f.read_at(&mut chunk, addr + out.len() as u64) else {
            break;
        };
        if n == 0 {
            break;
        }
        if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return out;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    out
}

fn auxv(pid: i32) -> Vec<(u64, u64)> {
    let bytes = std::fs::read(format!("/proc/{pid}/auxv")).unwrap_or_default();
    bytes
        .chunks_exact(16)
        .map(|c| {
            let k = u64::from_ne_bytes(c[..8].try_into().expect("8 bytes"));
            let v = u64::from_ne_bytes(c[8..].try_into().expect("8 bytes"));
            (k, v)
        })
        .take_while(|(k, _)| *k != 0)
        .collect()
}

impl Breakpoint {
    /// `None` where the architecture has no breakpoint written for it.
    fn insert(f: &File, addr: u64) -> Option<Breakpoint> {
        let insn = crate::arch::BREAKPOINT?;
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, addr).ok()?;
        f.write_all_at(&[insn], addr).ok()?;
        Some(Breakpoint { addr, saved: b[0] })
    }

    fn remove(&self, f: &File) {
        f.write_all_at(&[self.saved], self.addr)
            .or_log(|| format!("restore the byte under a breakpoint at {:#x}", self.addr));
    }
}

impl Images {
    /// The images of a process at its exec stop (`at_exec`: the loader has
    /// not run; a breakpoint on the entry point waits for it) or of a
    /// running one (attach: the loader's list is read now).
    pub(super) fn start(&mut self, pid: i32, at_exec: bool) -> Vec<DebugEvent> {
        let Some(f) = mem(pid) else {
            return Vec::new();
        };
        let aux = auxv(pid);
        let get = |k| aux.iter().find(|(x, _)| *x == k).map(|(_, v)| *v);
        let (Some(phdr), Some(phnum)) = (get(AT_PHDR), get(AT_PHNUM)) else {
            return Vec::new();
        };
        let mut bias = 0;
        let mut dynamic = None;
        let mut interp = None;
        let headers: Vec<(u32, u64)> = (0..phnum.min(256))
            .filter_map(|i| {
                let at = phdr + i * 56;
                Some((read_u32(&f, at)?, read_u64(&f, at + 16)?))
            })
            .collect();
        for &(kind, vaddr) in &headers {
            if kind == PT_PHDR {
                bias = phdr.wrapping_sub(vaddr);
            }
        }
        for &(kind, vaddr) in &headers {
            match kind {
                PT_DYNAMIC => dynamic = Some(bias.wrapping_add(vaddr)),
                PT_INTERP => interp = Some(read_cstr(&f, bias.wrapping_add(vaddr))),
                _ => {}
            }
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.into_os_string().into_encoded_bytes())
            .unwrap_or_default();
        let mut events = vec![DebugEvent::LoadDll {
            pid,
            base: bias,
            path: exe,
        }];
        if let (Some(base), Some(path)) = (get(AT_BASE).filter(|&b| b != 0), interp) {
            self.loaded.insert((base, path.clone()));
            events.push(DebugEvent::LoadDll { pid, base, path });
        }
        // The DT_DEBUG slot of the main image's dynamic section.
        self.dt_debug = dynamic.and_then(|d| {
            (0..512).find_map(|i| {
                let at = d + i * 16;
                match read_u64(&f, at)? as i64 {
                    DT_NULL => Some(None),
                    DT_DEBUG => Some(Some(at + 8)),
                    _ => None,
                }
            })?
        });
        if self.dt_debug.is_none() {
            // Statically linked: the main image is all there is.
            return events;
        }
        if at_exec {
            if let Some(entry) = get(AT_ENTRY) {
                self.entry = Breakpoint::insert(&f, entry);
            }
        } else {
            events.extend(self.sync(pid, &f));
        }
        events
    }

    /// The loader's list now against what was reported: loads and unloads;
    /// the `r_brk` breakpoint is set the first time `r_debug` is seen.
    fn sync(&mut self, pid: i32, f: &File) -> Vec<DebugEvent> {
        let Some(r_debug) = self
            .dt_debug
            .and_then(|at| read_u64(f, at))
            .filter(|&a| a != 0)
        else {
            return Vec::new();
        };
        if self.brk.is_none()
            && let Some(brk) = read_u64(f, r_debug + 16).filter(|&a| a != 0)
        {
            self.brk = Breakpoint::insert(f, brk);
        }
        if read_u32(f, r_debug + 24) != Some(RT_CONSISTENT) {
            return Vec::new();
        }
        let mut now = BTreeSet::new();
        let mut map = read_u64(f, r_debug + 8).unwrap_or(0);
        while map != 0 && now.len() < 65536 {
            let base = read_u64(f, map).unwrap_or(0);
            let name = read_u64(f, map + 8)
                .filter(|&a| a != 0)
                .map(|a| read_cstr(f, a))
                .unwrap_or_default();
            // The main program's entry has no name: it was reported at start.
            if !name.is_empty() {
                now.insert((base, name));
            }
            map = read_u64(f, map + 24).unwrap_or(0);
        }
        let mut events = Vec::new();
        for (base, path) in self.loaded.difference(&now) {
            events.push(DebugEvent::UnloadDll {
                pid,
                base: *base,
                path: path.clone(),
            });
        }
        for (base, path) in now.difference(&self.loaded) {
            events.push(DebugEvent::LoadDll {
                pid,
                base: *base,
                path: path.clone(),
            });
        }
        self.loaded = now;
        events
    }

    /// A SIGTRAP of thread `tid` of process `pid`: the events, when it was
    /// one of our breakpoints (then the thread is ready to go on as if it
    /// had not been there), `None` when it is the program's own trap.
    pub(super) fn on_trap(&mut self, pid: i32, tid: i32) -> Option<Vec<DebugEvent>> {
        let at = crate::arch::breakpoint_address(tid)?;
        let hit_entry = self.entry.is_some_and(|b| b.addr == at);
        let hit_brk = self.brk.is_some_and(|b| b.addr == at);
        if !hit_entry && !hit_brk {
            return None;
        }
        let f = mem(pid)?;
        crate::arch::set_pc(tid, at)?;
        if hit_entry {
            // Once only: the loader has run.
            self.entry.take()?.remove(&f);
        } else {
            // Over the original instruction, then the breakpoint back.
            let bp = self.brk?;
            bp.remove(&f);
            if ptrace::step(Pid::from_raw(tid), None).is_ok() {
                waitpid(Pid::from_raw(tid), Some(WaitPidFlag::__WALL))
                    .or_log(|| format!("wait for thread {tid} to stop"));
            }
            if let Some(insn) = crate::arch::BREAKPOINT {
                f.write_all_at(&[insn], bp.addr)
                    .or_log(|| format!("write a breakpoint at {:#x}", bp.addr));
            }
        }
        Some(self.sync(pid, &f))
    }

    /// Takes the breakpoints out of process `pid`'s memory (a detach, or a
    /// fork child that is not followed).
    pub(super) fn remove_breakpoints(&self, pid: i32) {
        let Some(f) = mem(pid) else { return };
        for bp in self.entry.iter().chain(self.brk.iter()) {
            bp.remove(&f);
        }
    }
}
