//! [`inspect`]: every section of one process (image, command line,
//! environment, modules, handle table, token, job, classification,
//! threads), and its threads alone.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use super::reader::{ProcReader, ReadErr};
use super::snapshot::entry_from;
use super::{ProcEntry, bytes, parse, secs};
use crate::error::{Error, Result};
use crate::linux::parse::{Mapping, PF_KTHREAD, Stat, Status};
use crate::linux::ticks;

/// How Windows would classify a process, with the Linux reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    /// An ordinary user process.
    Normal,
    /// A kernel thread (PF_KTHREAD): no user address space, like Windows' minimal processes.
    Minimal,
    /// Non-dumpable: its private `/proc` files are closed to other users.
    Protected,
    /// Its system calls go to a provider (a seccomp notification listener
    /// another process holds), or a foreign ABI (personality), or another
    /// pid namespace.
    Pico,
    /// It has exited and waits for its parent.
    Zombie,
}

/// One open descriptor (a handle table entry).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Handle {
    /// Descriptor number.
    pub fd: i32,
    /// file, directory, device, pipe, socket, eventfd, pidfd, epoll, signalfd, timerfd, inotify, anon, ...
    pub kind: &'static str,
    /// What it refers to (the `fd/N` link), exact bytes.
    #[serde(serialize_with = "bytes::serialize")]
    pub target: Vec<u8>,
    /// Open flags (octal in `fdinfo`), when readable.
    pub flags: Option<u32>,
    /// Close-on-exec.
    pub cloexec: Option<bool>,
}

fn handle_kind(target: &[u8]) -> &'static str {
    let t = target;
    let starts = |p: &str| t.starts_with(p.as_bytes());
    if starts("pipe:") {
        "pipe"
    } else if starts("socket:") {
        "socket"
    } else if starts("anon_inode:[eventfd]") {
        "eventfd"
    } else if starts("anon_inode:[pidfd]") || starts("pidfd:") {
        "pidfd"
    } else if starts("anon_inode:[eventpoll]") {
        "epoll"
    } else if starts("anon_inode:[signalfd]") {
        "signalfd"
    } else if starts("anon_inode:[timerfd]") {
        "timerfd"
    } else if starts("anon_inode:inotify") {
        "inotify"
    } else if starts("anon_inode:") {
        "anon"
    } else if starts("/dev/") {
        "device"
    } else if starts("/") {
        if std::fs::metadata(std::ffi::OsStr::new(
            &String::from_utf8_lossy(t).into_owned(),
        ))
        .is_ok_and(|m| m.is_dir())
        {
            "directory"
        } else {
            "file"
        }
    } else {
        "other"
    }
}

/// A mapped image (an entry of the loader's module list).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Module {
    /// Lowest mapped address.
    pub base: u64,
    /// From base to the end of the last mapping of the file.
    pub size: u64,
    /// The file, exact bytes.
    #[serde(serialize_with = "bytes::serialize")]
    pub path: Vec<u8>,
    /// Its GNU build-id in hex, read from the ELF notes of the file at
    /// `path` (the kernel does not report it), where readable.
    pub build_id: Option<String>,
}

/// Reads the build-id of a mapped image from its file. A file replaced on
/// disk since it was mapped (`(deleted)`) gives no id rather than a wrong one.
fn build_id(m: &Module) -> Option<String> {
    use std::io::Read;
    if m.path.ends_with(b" (deleted)") {
        return None;
    }
    let path = std::ffi::OsStr::from_bytes(&m.path);
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = vec![0u8; 64 * 1024];
    let n = f.read(&mut head).ok()?;
    let id = parse::elf_build_id(&head[..n])?;
    Some(id.iter().map(|b| format!("{b:02x}")).collect())
}

/// Modules from `maps`: file-backed mappings grouped by path, in address order.
pub fn modules_from_maps(maps: &[Mapping]) -> Vec<Module> {
    let mut out: Vec<Module> = Vec::new();
    for m in maps
        .iter()
        .filter(|m| m.inode != 0 && m.path.starts_with(b"/"))
    {
        match out.iter_mut().find(|x| x.path == m.path) {
            Some(x) => {
                let end = x.base.saturating_add(x.size).max(m.end);
                x.base = x.base.min(m.start);
                x.size = end - x.base;
            }
            None => out.push(Module {
                base: m.start,
                size: m.end.saturating_sub(m.start),
                path: m.path.clone(),
                build_id: None,
            }),
        }
    }
    out.sort_by_key(|m| m.base);
    out
}

/// The security token: identities, capabilities, restrictions.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Token {
    /// Real, effective, saved, filesystem uid.
    pub uid: [u32; 4],
    /// Real, effective, saved, filesystem gid.
    pub gid: [u32; 4],
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Effective capabilities, by name.
    pub effective: Vec<String>,
    /// Permitted capabilities.
    pub permitted: Vec<String>,
    /// Inheritable capabilities.
    pub inheritable: Vec<String>,
    /// Bounding set.
    pub bounding: Vec<String>,
    /// Ambient set.
    pub ambient: Vec<String>,
    /// `no_new_privs`.
    pub no_new_privs: bool,
    /// Seccomp: disabled, strict, filter.
    pub seccomp: &'static str,
    /// LSM label (`attr/current`), when an LSM is active.
    pub lsm_label: Option<String>,
}

/// One thread (TEB/ETHREAD view).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ThreadInfo {
    /// Thread id.
    pub tid: i32,
    /// Name, exact bytes.
    #[serde(serialize_with = "bytes::serialize")]
    pub name: Vec<u8>,
    /// State letter.
    pub state: char,
    /// Kernel priority and nice.
    pub priority: i64,
    /// Nice.
    pub nice: i64,
    /// Scheduling policy name.
    pub policy: &'static str,
    /// Allowed CPUs.
    pub affinity: String,
    /// CPU it last ran on.
    pub last_cpu: i32,
    /// User CPU time, seconds.
    #[serde(serialize_with = "secs")]
    pub user_time: Duration,
    /// Kernel CPU time, seconds.
    #[serde(serialize_with = "secs")]
    pub kernel_time: Duration,
    /// Voluntary context switches.
    pub voluntary_switches: u64,
    /// Involuntary context switches.
    pub involuntary_switches: u64,
    /// Where it sleeps in the kernel (`wchan`), where permitted.
    pub wait_channel: Option<String>,
    /// Kernel stack (`stack`; root only).
    pub kernel_stack: Option<Vec<String>>,
    /// Stack range (the main thread's `[stack]` mapping).
    pub stack: Option<(u64, u64)>,
}

fn policy_name(p: u32) -> &'static str {
    match p {
        0 => "other",
        1 => "fifo",
        2 => "rr",
        3 => "batch",
        5 => "idle",
        6 => "deadline",
        _ => "unknown",
    }
}

/// Every section of one process (PEB + EPROCESS + token + threads).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcessInfo {
    /// The basic row (stat).
    #[serde(flatten)]
    pub basic: ProcEntry,
    /// The image path (`exe`), exact bytes.
    #[serde(serialize_with = "opt_bytes")]
    pub image: Option<Vec<u8>>,
    /// Current directory, exact bytes.
    #[serde(serialize_with = "opt_bytes")]
    pub cwd: Option<Vec<u8>>,
    /// Environment, exact bytes.
    #[serde(serialize_with = "opt_bytes_list")]
    pub environment: Option<Vec<Vec<u8>>>,
    /// The tracer's pid, if being debugged.
    pub debugger: Option<i32>,
    /// Memory: virtual, resident, peak resident, private (anonymous resident), bytes.
    pub memory: Option<Memory>,
    /// Page faults (minor, major).
    pub page_faults: (u64, u64),
    /// I/O counters (`io`), where permitted.
    pub io: Option<IoCounters>,
    /// Mapped images.
    pub modules: Option<Vec<Module>>,
    /// Open descriptors.
    pub handles: Option<Vec<Handle>>,
    /// Identities and privileges.
    pub token: Option<Token>,
    /// Cgroup membership lines, and the taskloom job if it is in one.
    pub cgroups: Option<Vec<String>>,
    /// Classification, and why.
    pub classification: Classification,
    /// Why it was classified so.
    pub classification_reason: String,
    /// Exit code of a zombie (`waitpid` encoding).
    pub exit_code: Option<i32>,
    /// Threads.
    pub thread_list: Option<Vec<ThreadInfo>>,
    /// Sections that could not be read for lack of permission.
    pub denied: Vec<&'static str>,
}

/// Memory counters of a process.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Memory {
    /// Virtual size.
    pub virtual_bytes: u64,
    /// Resident now.
    pub resident: u64,
    /// Peak resident.
    pub peak_resident: Option<u64>,
    /// Private resident (anonymous).
    pub private: Option<u64>,
}

/// `/proc/<pid>/io`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct IoCounters {
    /// Bytes read (all sources).
    pub read_chars: u64,
    /// Bytes written.
    pub write_chars: u64,
    /// Read system calls.
    pub read_calls: u64,
    /// Write system calls.
    pub write_calls: u64,
    /// Bytes read from storage.
    pub read_bytes: u64,
    /// Bytes written to storage.
    pub write_bytes: u64,
}

fn opt_bytes<S: serde::Serializer>(
    v: &Option<Vec<u8>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(b) => bytes::serialize(b, s),
        None => s.serialize_none(),
    }
}

fn opt_bytes_list<S: serde::Serializer>(
    v: &Option<Vec<Vec<u8>>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(b) => bytes::serialize_list(b, s),
        None => s.serialize_none(),
    }
}

/// `<pid>/stat`, parsed: `NoSuchProcess` when it cannot be read.
fn read_stat(r: &mut ProcReader, p: &str, pid: i32) -> Result<Stat> {
    match r.read(&format!("{p}/stat")) {
        Ok(b) => parse::parse_stat(b).map_err(|e| Error::InvalidInput {
            what: "/proc/<pid>/stat",
            reason: e.to_string(),
        }),
        Err(_) => Err(Error::NoSuchProcess { pid }),
    }
}

/// Reads every section of process `pid`.
pub fn inspect(pid: i32) -> Result<ProcessInfo> {
    let mut r = ProcReader::new()?;
    let p = pid.to_string();
    let stat = read_stat(&mut r, &p, pid)?;
    let uid = r.owner(&p);
    let mut denied = Vec::new();
    let mut section =
        |name: &'static str, res: std::result::Result<Vec<u8>, ReadErr>| -> Option<Vec<u8>> {
            match res {
                Ok(b) => Some(b),
                Err(ReadErr::Denied) => {
                    denied.push(name);
                    None
                }
                Err(_) => None,
            }
        };
    let status_bytes = section("status", r.read(&format!("{p}/status")).map(<[u8]>::to_vec));
    let status: Option<Status> = status_bytes.as_deref().map(parse::parse_status);
    let cmdline = section(
        "cmdline",
        r.read(&format!("{p}/cmdline")).map(<[u8]>::to_vec),
    )
    .map(|b| parse::split_nul(&b))
    .unwrap_or_default();
    let environment = section(
        "environment",
        r.read(&format!("{p}/environ")).map(<[u8]>::to_vec),
    )
    .map(|b| parse::split_nul(&b));
    let image = section("image", r.readlink(&format!("{p}/exe")));
    let cwd = section("cwd", r.readlink(&format!("{p}/cwd")));
    let maps = section("modules", r.read(&format!("{p}/maps")).map(<[u8]>::to_vec))
        .map(|b| parse::parse_maps(&b));
    let io = section("io", r.read(&format!("{p}/io")).map(<[u8]>::to_vec)).map(|b| {
        let f = |k| {
            parse::status_field(&b, k)
                .and_then(parse::parse_int::<u64>)
                .unwrap_or(0)
        };
        IoCounters {
            read_chars: f("rchar"),
            write_chars: f("wchar"),
            read_calls: f("syscr"),
            write_calls: f("syscw"),
            read_bytes: f("read_bytes"),
            write_bytes: f("write_bytes"),
        }
    });
    let cgroup_text = section(
        "cgroups",
        r.read(&format!("{p}/cgroup")).map(<[u8]>::to_vec),
    )
    .map(|b| String::from_utf8_lossy(&b).into_owned());
    let lsm_label = r
        .read(&format!("{p}/attr/current"))
        .ok()
        .map(|b| {
            String::from_utf8_lossy(b)
                .trim_end_matches(['\n', '\0'])
                .to_owned()
        })
        .filter(|s| !s.is_empty());

    // Handles.
    let handles = match std::fs::read_dir(format!("/proc/{p}/fd")) {
        Ok(dir) => {
            let mut fds: Vec<i32> = dir
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect();
            fds.sort_unstable();
            Some(
                fds.into_iter()
                    .filter_map(|fd| {
                        let target = r.readlink(&format!("{p}/fd/{fd}")).ok()?;
                        let flags = r
                            .read(&format!("{p}/fdinfo/{fd}"))
                            .ok()
                            .and_then(parse::fdinfo_flags);
                        Some(Handle {
                            fd,
                            kind: handle_kind(&target),
                            target,
                            flags,
                            cloexec: flags.map(|f| f & libc::O_CLOEXEC as u32 != 0),
                        })
                    })
                    .collect(),
            )
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            denied.push("handles");
            None
        }
        Err(_) => None,
    };

    let mut basic = entry_from(stat.clone(), pid, uid);
    basic.cmdline = cmdline;
    basic.job = cgroup_text
        .as_deref()
        .and_then(crate::linux::job_name_seen_here);

    let (classification, classification_reason) = classify(&stat, status.as_ref(), uid, &mut r, &p);
    let token = status.as_ref().map(|s| Token {
        uid: s.uid,
        gid: s.gid,
        groups: s.groups.clone(),
        effective: parse::capability_names(s.cap_eff),
        permitted: parse::capability_names(s.cap_prm),
        inheritable: parse::capability_names(s.cap_inh),
        bounding: parse::capability_names(s.cap_bnd),
        ambient: parse::capability_names(s.cap_amb),
        no_new_privs: s.no_new_privs,
        seccomp: match s.seccomp {
            0 => "disabled",
            1 => "strict",
            _ => "filter",
        },
        lsm_label,
    });
    let stack_range = maps.as_ref().and_then(|m| {
        m.iter()
            .find(|x| x.path == b"[stack]")
            .map(|x| (x.start, x.end))
    });
    let thread_list = Some(threads_in(&mut r, pid, stack_range));
    Ok(ProcessInfo {
        image,
        cwd,
        environment,
        debugger: status.as_ref().map(|s| s.tracer_pid).filter(|&t| t != 0),
        memory: Some(Memory {
            virtual_bytes: stat.vsize,
            resident: basic.rss,
            peak_resident: status.as_ref().and_then(|s| s.vm_hwm),
            private: status.as_ref().and_then(|s| s.rss_anon),
        }),
        page_faults: (stat.minflt, stat.majflt),
        io,
        modules: maps.as_deref().map(|maps| {
            let mut mods = modules_from_maps(maps);
            for m in &mut mods {
                m.build_id = build_id(m);
            }
            mods
        }),
        handles,
        token,
        cgroups: cgroup_text.map(|t| t.lines().map(str::to_owned).collect()),
        classification,
        classification_reason,
        exit_code: if stat.state == 'Z' {
            stat.exit_code
        } else {
            None
        },
        thread_list,
        denied,
        basic,
    })
}

/// How Windows would classify process `pid` (minimal, protected, pico,
/// zombie or normal) and why, from its `stat`, `status` and `personality`
/// alone: the part of [`inspect`] a live view needs once per process.
pub fn classification(pid: i32) -> Result<(Classification, String)> {
    let mut r = ProcReader::new()?;
    let p = pid.to_string();
    let stat = read_stat(&mut r, &p, pid)?;
    let uid = r.owner(&p);
    let status = r.read(&format!("{p}/status")).ok().map(parse::parse_status);
    Ok(classify(&stat, status.as_ref(), uid, &mut r, &p))
}

fn classify(
    stat: &Stat,
    status: Option<&Status>,
    owner: Option<u32>,
    r: &mut ProcReader,
    p: &str,
) -> (Classification, String) {
    if stat.state == 'Z' {
        return (
            Classification::Zombie,
            "it has exited and its parent has not waited for it".into(),
        );
    }
    if stat.flags & PF_KTHREAD != 0 {
        return (
            Classification::Minimal,
            "kernel thread (PF_KTHREAD): no user address space".into(),
        );
    }
    if let Some(s) = status {
        if s.nspid.len() > 1 {
            return (
                Classification::Pico,
                format!(
                    "runs in a nested pid namespace (pids {:?}, outermost first)",
                    s.nspid
                ),
            );
        }
        if let Ok(b) = r.read(&format!("{p}/personality")) {
            let text = String::from_utf8_lossy(b).trim().to_owned();
            if let Ok(v) = u32::from_str_radix(&text, 16)
                && v & 0xff != 0
            {
                return (Classification::Pico, format!("foreign personality {v:#x}"));
            }
        }
        // A seccomp filter whose listener an ancestor holds: the provider of
        // a pico process (taskloom's, for `run --fail`), which sees its calls.
        if s.seccomp == 2
            && let Some(holder) = listener_holder(r, stat.ppid)
        {
            return (
                Classification::Pico,
                format!(
                    "its system calls go to a provider: pid {holder} holds the seccomp notification listener of its filter"
                ),
            );
        }
        // The files under /proc/<pid> belong to root when the process is
        // not dumpable (the directory keeps the process's owner).
        let files_owner = r.owner(&format!("{p}/status")).or(owner);
        if files_owner == Some(0) && s.uid[1] != 0 {
            return (
                Classification::Protected,
                "not dumpable: its /proc files belong to root although it runs as another user"
                    .into(),
            );
        }
    }
    (Classification::Normal, "an ordinary user process".into())
}

/// The nearest ancestor (from `ppid` up, at most eight, never pid 1)
/// holding a seccomp notification listener, when its descriptors may be read.
fn listener_holder(r: &mut ProcReader, mut ppid: i32) -> Option<i32> {
    for _ in 0..8 {
        if ppid <= 1 {
            return None;
        }
        let p = ppid.to_string();
        for fd in r.numeric_entries(&format!("{p}/fd")) {
            if r.readlink(&format!("{p}/fd/{fd}"))
                .is_ok_and(|t| t.as_slice() == b"anon_inode:seccomp notify")
            {
                return Some(ppid);
            }
        }
        ppid = read_stat(r, &p, ppid).ok()?.ppid;
    }
    None
}

fn threads_in(r: &mut ProcReader, pid: i32, main_stack: Option<(u64, u64)>) -> Vec<ThreadInfo> {
    let tids = r.numeric_entries(&format!("{pid}/task"));
    let mut out = Vec::new();
    for tid in tids {
        let base = format!("{pid}/task/{tid}");
        let Ok(stat) = r.read(&format!("{base}/stat")).map(parse::parse_stat) else {
            continue;
        };
        let Ok(stat) = stat else { continue };
        let status = r
            .read(&format!("{base}/status"))
            .ok()
            .map(parse::parse_status);
        let wait_channel = r
            .read(&format!("{base}/wchan"))
            .ok()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .filter(|s| !s.is_empty() && s != "0");
        let kernel_stack = r.read(&format!("{base}/stack")).ok().map(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .map(str::to_owned)
                .collect()
        });
        out.push(ThreadInfo {
            tid,
            state: stat.state,
            priority: stat.priority,
            nice: stat.nice,
            policy: policy_name(stat.policy),
            affinity: status
                .as_ref()
                .map(|s| s.cpus_allowed_list.clone())
                .unwrap_or_default(),
            last_cpu: stat.processor,
            user_time: ticks(stat.utime),
            kernel_time: ticks(stat.stime),
            voluntary_switches: status.as_ref().map_or(0, |s| s.voluntary_switches),
            involuntary_switches: status.as_ref().map_or(0, |s| s.involuntary_switches),
            wait_channel,
            kernel_stack,
            stack: if tid == pid { main_stack } else { None },
            name: stat.comm,
        });
    }
    out
}

/// The threads of one process (TEB view).
pub fn threads(pid: i32) -> Result<Vec<ThreadInfo>> {
    let mut r = ProcReader::new()?;
    if r.read(&format!("{pid}/stat")).is_err() {
        return Err(Error::NoSuchProcess { pid });
    }
    Ok(threads_in(&mut r, pid, None))
}
