//! taskloom: the Windows process, thread, fiber and job model on Linux,
//! with the kernel doing the enforcing.
//!
//! | Windows                       | taskloom                                  |
//! |-------------------------------|-------------------------------------------|
//! | `CreateProcess`               | [`process::ProcessBuilder`]               |
//! | process `HANDLE`              | [`process::Process`] (a pidfd)            |
//! | `OpenProcess`                 | [`process::Process::open`]                |
//! | `WaitForMultipleObjects`      | [`process::wait_any`], [`process::wait_all`] |
//! | `ShellExecuteEx`              | [`shell::ShellExecute`]          |
//! | priority class, affinity mask | [`PriorityClass`], [`CpuSet`]             |
//! | job object                    | [`job::Job`] (cgroups)                    |
//! | fiber, FLS                    | [`fiber`]                                 |
//! | PEB/TEB/EPROCESS view         | [`inspect`]                               |
//! | `CreateThread`, `SuspendThread`, TLS | [`thread`]                         |
//! | `OpenThread`                  | [`thread::ThreadHandle::open`]            |
//! | `DEBUG_PROCESS`, `WaitForDebugEvent` | [`debug::Debugger`]             |
//!
//! # Requirements
//!
//! Linux 5.11 or later and glibc. Jobs use whatever cgroups this process
//! may write (cgroup2, v1 or both; on pure cgroup2 with systemd, a scope
//! the user's manager delegates), else process groups; `job::Job::capabilities`
//! says which limits the kernel enforces here. Fibers and thread register
//! contexts are written for x86_64 (`arch/`); elsewhere they are absent or
//! an error. Logon with a password is the `logon` feature (PAM).
//!
//! # A first example
//!
//! `CreateProcess`, then `WaitForSingleObject` and `GetExitCodeProcess`:
//!
//! ```
//! use taskloom::process::ProcessBuilder;
//!
//! let mut child = ProcessBuilder::new("sh").args(["-c", "exit 3"]).spawn()?;
//! let status = child.wait()?;
//! assert_eq!(status.code(), Some(3));
//! # Ok::<(), taskloom::Error>(())
//! ```
//!
//! The same program in a job that no process leaves, with a memory limit
//! the kernel enforces, killed with everything it started when the last
//! handle closes (this needs cgroups, so it is not run as a doctest):
//!
//! ```no_run
//! use taskloom::job::{Job, JobLimits};
//! use taskloom::process::ProcessBuilder;
//!
//! let job = Job::builder()
//!     .limits(JobLimits { job_memory: Some(256 << 20), ..Default::default() })
//!     .kill_on_close(true)
//!     .create()?;
//! let mut child = job.spawn(ProcessBuilder::new("make").arg("-j8"))?;
//! child.wait()?;
//! println!("{:?}", job.info()?);
//! # Ok::<(), taskloom::Error>(())
//! ```
//!
//! The crate is Linux-only. See `ARCHITECTURE.md` in the repository for the
//! map of the code and the invariants it keeps.
#![deny(unsafe_code)] // allowed only in the modules ARCHITECTURE.md lists
#![warn(missing_docs)]
#![cfg(any(target_os = "linux", windows))]

// On both systems: the model's processes, jobs and threads, and what they share.
mod arch;
mod bytes;
pub mod cpuset;
pub mod error;
pub mod fiber;
pub mod inspect;
pub mod job;
pub mod priority;
pub mod process;
pub mod thread;
pub mod units;

// Linux only, for now (ARCHITECTURE.md, "Two systems, one API").
#[cfg(target_os = "linux")]
pub mod debug;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub mod shell;
#[cfg(windows)]
mod windows;

pub use cpuset::CpuSet;
pub use error::{Error, ErrorKind, LogonFailure, Result};
pub use job::{Job, JobLimits};
pub use priority::PriorityClass;

/// The top-level modules' layers: each may use only the modules before it
/// in [`LAYERS`](layers::LAYERS). A path that points up the list fails this
/// test, in every form it can take: `crate::x::…`, a group
/// (`crate::{x::…, y}`), an item the crate root re-exports (`crate::Job`
/// is `job`'s), and `super::` climbing to the crate root. A layer above
/// reaches a spawn only through the placement hook
/// (`process::Placer`), which it hands down.
#[cfg(test)]
mod layers {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// Lowest first.
    pub(super) const LAYERS: [&str; 15] = [
        "error", "bytes", "linux", "windows", "arch", "cpuset", "units", "priority", "fiber",
        "process", "shell", "thread", "inspect", "job", "debug",
    ];

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// The items the crate root re-exports (`pub use job::{Job, …};`), by
    /// the module they come from.
    fn root_items(lib: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for line in lib.lines() {
            let Some(rest) = line.trim().strip_prefix("pub use ") else {
                continue;
            };
            let Some((module, items)) = rest.split_once("::") else {
                continue;
            };
            for item in first_segments(items) {
                out.insert(item, module.to_owned());
            }
        }
        out
    }

    /// How many modules deep a file's module is below the crate root
    /// (`job/backend/mod.rs` and `job/backend.rs`: 2).
    fn depth(src: &Path, file: &Path) -> usize {
        let rel = file.strip_prefix(src).unwrap();
        let parts = rel.components().count();
        if rel.file_name().is_some_and(|n| n == "mod.rs") {
            parts - 1
        } else {
            parts
        }
    }

    /// The top-level modules a module's files name, in any path form.
    fn uses(src: &Path, module: &str, roots: &BTreeMap<String, String>) -> BTreeSet<String> {
        let mut files = Vec::new();
        let dir = src.join(module);
        if dir.is_dir() {
            sources(&dir, &mut files);
        } else {
            files.push(src.join(format!("{module}.rs")));
        }
        let mut out = BTreeSet::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let climb = "super::".repeat(depth(src, &f));
            let mut at_root: Vec<&str> = text
                .match_indices("crate::")
                .map(|(i, _)| &text[i + 7..])
                .collect();
            // `super::` as many times as the file is deep names the root
            // (one more `super::` would not compile).
            at_root.extend(
                text.match_indices(&climb)
                    .filter(|(i, _)| !text[..*i].ends_with("super::"))
                    .map(|(i, _)| &text[i + climb.len()..]),
            );
            for after in at_root {
                for name in first_segments(after) {
                    let name = roots.get(&name).cloned().unwrap_or(name);
                    if LAYERS.contains(&name.as_str()) && name != module {
                        out.insert(name);
                    }
                }
            }
        }
        out
    }

    /// The first path segment after `crate::`: `job` in `crate::job::Job`,
    /// and each item's in a group, `crate::{job::Job, inspect}`.
    fn first_segments(after: &str) -> Vec<String> {
        let ident = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let Some(group) = after.strip_prefix('{') else {
            return vec![ident(after)];
        };
        let (mut depth, mut items, mut start) = (0usize, Vec::new(), 0usize);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    items.push(ident(&group[start..i]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(ident(&group[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
        items
    }

    #[test]
    fn every_path_form_is_seen() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let roots = root_items("pub use cpuset::CpuSet;\npub use job::{Job, JobLimits};\n");
        assert_eq!(roots["Job"], "job");
        assert_eq!(roots["CpuSet"], "cpuset");
        assert_eq!(depth(&src, &src.join("job/backend/mod.rs")), 2);
        assert_eq!(depth(&src, &src.join("job/name.rs")), 2);
        assert_eq!(depth(&src, &src.join("cpuset.rs")), 1);
    }

    #[test]
    fn grouped_paths_are_seen() {
        assert_eq!(first_segments("job::Job;"), ["job"]);
        assert_eq!(
            first_segments("{job::{Job, JobLimits}, inspect,\n  error::Result};"),
            ["job", "inspect", "error"]
        );
    }

    #[test]
    fn every_module_uses_only_the_layers_below_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
        // Every top-level module has its place in the list.
        for line in lib.lines() {
            let line = line
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            if let Some(m) = line.strip_prefix("mod ").and_then(|l| l.strip_suffix(';')) {
                assert!(LAYERS.contains(&m), "module {m} has no layer in LAYERS");
            }
        }
        let roots = root_items(&lib);
        let mut wrong = Vec::new();
        for (i, module) in LAYERS.iter().enumerate() {
            for used in uses(&src, module, &roots) {
                let at = LAYERS.iter().position(|l| *l == used).unwrap();
                if at > i {
                    wrong.push(format!("{module} uses {used}, a layer above it"));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
