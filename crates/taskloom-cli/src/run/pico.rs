//! `taskloom run --fail`, `--deny`, `--trace`, `--trace-syscalls`: PROGRAM
//! as a pico process whose provider injects faults and reports what it saw.

use std::io::Write;
use std::str::FromStr;

use clap::Args;
use taskloom::process::pico::{
    Errno, Provider, Reply, Syscall, SyscallSet, Sysno, errno_by_name, errno_name,
};

/// The pico options of `run`.
#[derive(Debug, Args, Default)]
pub struct PicoArgs {
    /// Make SYSCALL fail with ERRNO (default EIO): every call, or only the N-th
    /// (`write:ENOSPC@3`), or only those on PATH (`openat:ENOENT=/etc/hostname`;
    /// without one, the dynamic loader's opens fail too). PROGRAM and every
    /// process it starts (repeatable).
    #[arg(
        long,
        value_name = "SYSCALL[:ERRNO][@N][=PATH]",
        help_heading = "System calls (PROGRAM as a pico process)"
    )]
    pub fail: Vec<Fault>,
    /// Make SYSCALL fail with EPERM, every call (repeatable).
    #[arg(
        long,
        value_name = "SYSCALL",
        help_heading = "System calls (PROGRAM as a pico process)"
    )]
    pub deny: Vec<String>,
    /// Also watch SYSCALL, without changing it (for --trace-syscalls; repeatable).
    #[arg(
        long,
        value_name = "SYSCALL",
        help_heading = "System calls (PROGRAM as a pico process)"
    )]
    pub trace: Vec<String>,
    /// Print each call the provider saw, and its answer, on stderr (JSON Lines with --json).
    #[arg(long, help_heading = "System calls (PROGRAM as a pico process)")]
    pub trace_syscalls: bool,
}

/// One `--fail`: the call, the errno, which call (1-based) or all, and
/// the path its calls must name to count.
#[derive(Debug, Clone)]
pub struct Fault {
    sysno: Sysno,
    errno: i32,
    nth: Option<u64>,
    path: Option<Vec<u8>>,
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(whole: &str) -> Result<Self, String> {
        let (s, path) = match whole.split_once('=') {
            Some((r, p)) if !p.is_empty() => (r, Some(p.as_bytes().to_vec())),
            Some(_) => return Err(format!("{whole:?}: =PATH names a path")),
            None => (whole, None),
        };
        let (rest, nth) = match s.split_once('@') {
            Some((r, n)) => {
                let n: u64 = n
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("{s:?}: @N counts calls from 1"))?;
                (r, Some(n))
            }
            None => (s, None),
        };
        let (name, errno) = match rest.split_once(':') {
            Some((n, e)) => (
                n,
                errno_by_name(e).ok_or_else(|| format!("{s:?}: no errno named {e:?}"))?,
            ),
            None => (rest, Errno::EIO.into_raw()),
        };
        let sysno = sysno_named(name)?;
        if path.is_some() && path_arg(sysno).is_none() {
            return Err(format!("{whole:?}: {name} takes no path"));
        }
        Ok(Fault {
            sysno,
            errno,
            nth,
            path,
        })
    }
}

fn sysno_named(name: &str) -> Result<Sysno, String> {
    name.parse().map_err(|_| {
        format!(
            "{name:?} is not a system call of {}",
            std::env::consts::ARCH
        )
    })
}

impl PicoArgs {
    /// Whether PROGRAM becomes a pico process.
    pub fn any(&self) -> bool {
        !self.fail.is_empty() || !self.deny.is_empty() || !self.trace.is_empty()
    }

    /// The provider and the calls it sees.
    pub fn provider(&self, json: bool) -> anyhow::Result<(Injector, SyscallSet)> {
        let mut faults = self.fail.clone();
        for d in &self.deny {
            faults.push(Fault {
                sysno: sysno_named(d).map_err(anyhow::Error::msg)?,
                errno: Errno::EPERM.into_raw(),
                nth: None,
                path: None,
            });
        }
        let mut seen: Vec<Sysno> = faults.iter().map(|f| f.sysno).collect();
        for t in &self.trace {
            seen.push(sysno_named(t).map_err(anyhow::Error::msg)?);
        }
        let set = SyscallSet::from_sysnos(seen);
        let counts = vec![0; faults.len()];
        Ok((
            Injector {
                faults,
                counts,
                trace: self.trace_syscalls.then_some(json),
            },
            set,
        ))
    }
}

/// The provider: counts each faulted call, fails the one asked, and traces.
pub struct Injector {
    faults: Vec<Fault>,
    counts: Vec<u64>,
    /// `Some(json)` when tracing.
    trace: Option<bool>,
}

/// The argument that names a path, for the calls that take one.
fn path_arg(s: Sysno) -> Option<usize> {
    match s.name() {
        "openat" | "openat2" | "newfstatat" | "faccessat" | "faccessat2" | "mkdirat"
        | "unlinkat" | "readlinkat" | "statx" | "execveat" | "mknodat" | "fchmodat"
        | "fchownat" | "utimensat" | "renameat" | "renameat2" | "linkat" => Some(1),
        "open" | "stat" | "lstat" | "access" | "execve" | "mkdir" | "rmdir" | "unlink"
        | "chdir" | "readlink" | "creat" | "truncate" | "chmod" | "chown" | "rename" => Some(0),
        _ => None,
    }
}

impl Provider for Injector {
    fn on_syscall(&mut self, call: &Syscall) -> Reply {
        // The path argument, read once, for the faults that name one and the trace.
        let wants_path = self.trace.is_some()
            || self
                .faults
                .iter()
                .any(|f| f.sysno == call.sysno && f.path.is_some());
        let path = path_arg(call.sysno)
            .filter(|_| wants_path)
            .and_then(|i| call.read_c_string(call.args[i]).ok());
        let mut reply = Reply::Continue;
        for (i, f) in self.faults.iter().enumerate() {
            if f.sysno != call.sysno || f.path.as_ref().is_some_and(|p| path.as_ref() != Some(p)) {
                continue;
            }
            self.counts[i] += 1;
            if f.nth.is_none_or(|n| n == self.counts[i]) && reply == Reply::Continue {
                reply = Reply::Fail(f.errno);
            }
        }
        if let Some(json) = self.trace {
            let path = path.map(|p| String::from_utf8_lossy(&p).into_owned());
            let answer = match reply {
                Reply::Continue => "continue".to_owned(),
                Reply::Return(v) => format!("return {v}"),
                Reply::Fail(e) => format!("fail {}", errno_name(e)),
            };
            let line = if json {
                serde_json::json!({
                    "pid": call.pid,
                    "syscall": call.name(),
                    "args": call.args,
                    "path": path,
                    "reply": answer,
                })
                .to_string()
            } else {
                let shown = path.map_or_else(
                    || {
                        call.args[..3]
                            .iter()
                            .map(|a| format!("{a:#x}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    |p| format!("{p:?}"),
                );
                format!(
                    "taskloom: pid {} {}({shown}): {answer}",
                    call.pid,
                    call.name()
                )
            };
            let _ = writeln!(std::io::stderr(), "{line}");
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_as_users_write_them() {
        let f: Fault = "write:ENOSPC@3".parse().unwrap();
        assert_eq!((f.sysno.name(), f.errno, f.nth), ("write", 28, Some(3)));
        let f: Fault = "openat".parse().unwrap();
        assert_eq!((f.errno, f.nth), (5, None));
        let f: Fault = "openat:2".parse().unwrap();
        assert_eq!(f.errno, 2);
        assert!(
            "opnat"
                .parse::<Fault>()
                .unwrap_err()
                .contains("not a system call")
        );
        assert!(
            "write:ENOPE"
                .parse::<Fault>()
                .unwrap_err()
                .contains("no errno named")
        );
        assert!("write@0".parse::<Fault>().unwrap_err().contains("from 1"));
        let f: Fault = "openat:ENOENT=/etc/hostname".parse().unwrap();
        assert_eq!(f.path.as_deref(), Some(&b"/etc/hostname"[..]));
        assert!(
            "write=/x"
                .parse::<Fault>()
                .unwrap_err()
                .contains("takes no path")
        );
    }
}
