//! The parent's half of a spawn: everything that may allocate, resolve or
//! fail with a clear message happens here, before the child exists. The
//! child's half (`sys::child_main`) only replays this plan with raw syscalls.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::handle::Process;
use super::sys::{self, ChildPlan, FdMove, Stage};
use super::{ProcessBuilder, Stdio};
use crate::error::{Error, OrLog, Result};

const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn cstring(what: &'static str, bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::NulByte {
        what,
        value: String::from_utf8_lossy(bytes).into_owned(),
    })
}

fn check_env_name(name: &OsStr) -> Result<()> {
    let bytes = name.as_bytes();
    let reason = if bytes.is_empty() {
        "empty name"
    } else if bytes.contains(&b'=') {
        "name contains '='"
    } else if bytes.contains(&0) {
        "name contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(Error::InvalidEnvName {
        name: name.to_string_lossy().into_owned(),
        reason,
    })
}

/// The child's environment as `KEY=VALUE` strings, validated.
fn build_env(b: &ProcessBuilder) -> Result<(Vec<CString>, Option<OsString>)> {
    for key in b.env.keys() {
        check_env_name(key)?;
    }
    let mut vars: Vec<(OsString, OsString)> = Vec::new();
    if !b.env_clear {
        vars.extend(std::env::vars_os().filter(|(k, _)| !b.env.contains_key(k)));
    }
    vars.extend(
        b.env
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))),
    );
    let path = vars
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    let mut out = Vec::with_capacity(vars.len());
    for (k, v) in vars {
        let mut entry = k.into_vec();
        entry.push(b'=');
        entry.extend_from_slice(v.as_bytes());
        out.push(cstring("environment value", &entry)?);
    }
    Ok((out, path))
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    meta.permissions().mode() & 0o111 != 0
}

/// Resolves the program to an absolute or parent-relative path, with the
/// errors a person can act on.
fn resolve_program(program: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf> {
    if program.is_empty() {
        return Err(Error::InvalidInput {
            what: "program",
            reason: "empty program name".into(),
        });
    }
    if program.as_bytes().contains(&b'/') {
        let path = PathBuf::from(program);
        let path = if path.is_relative() {
            std::env::current_dir()
                .map_err(|e| Error::os("getcwd", e))?
                .join(path)
        } else {
            path
        };
        // No stat here: execve gives the verdict (ENOENT, EACCES, ...), and
        // its error is told apart after the fact (a directory, say).
        return Ok(path);
    }
    let search = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    match search_path(program, search) {
        Ok(path) => Ok(path),
        Err(Some(path)) => Err(Error::Exec {
            path,
            source: io::Error::from_raw_os_error(libc::EACCES),
        }),
        Err(None) => Err(Error::ProgramNotFound {
            program: program.to_string_lossy().into_owned(),
            search_path: search.to_string_lossy().into_owned(),
        }),
    }
}

/// The first executable `program` (a name without `/`) in the directories
/// of `search` (`PATH` syntax; an empty entry is the current directory).
/// Fails with the first non-executable match, if any, so that the caller can
/// say "permission denied" rather than "not found".
fn search_path(program: &OsStr, search: &OsStr) -> std::result::Result<PathBuf, Option<PathBuf>> {
    let mut denied: Option<PathBuf> = None;
    for dir in search.as_bytes().split(|&c| c == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(program);
        match std::fs::metadata(&candidate) {
            Ok(m) if m.is_file() && is_executable(&m) => {
                if rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok() {
                    return Ok(candidate);
                }
                denied.get_or_insert(candidate);
            }
            Ok(m) if m.is_file() => {
                denied.get_or_insert(candidate);
            }
            _ => {}
        }
    }
    Err(denied)
}

/// The executable a name without `/` runs, searched on this process's
/// `PATH` (or the default search path) as a spawn would.
pub(crate) fn find_executable(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH");
    search_path(
        OsStr::new(name),
        path.as_deref().unwrap_or(OsStr::new(DEFAULT_PATH)),
    )
    .ok()
}

/// Opens `/dev/null` for a standard stream.
fn dev_null(write: bool) -> Result<OwnedFd> {
    let file = std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .open("/dev/null")
        .map_err(|e| Error::os("open /dev/null", e))?;
    Ok(file.into())
}

pub(super) fn spawn(mut b: ProcessBuilder) -> Result<Process> {
    if let Some(placer) = b.placer.take() {
        match placer.decide()? {
            Some(super::Placement::Cgroup(p)) => b.placement = Some(p),
            Some(super::Placement::NewGroup) => b.group = super::ProcessGroup::NewGroup,
            None => {}
        }
    }
    // The environment passes through untouched when the builder changed nothing
    // (no copy of every variable on each spawn); otherwise it is built and checked.
    let inherit_env = !b.env_clear && b.env.is_empty();
    let (envp, path_var) = if inherit_env {
        (Vec::new(), None)
    } else {
        build_env(&b)?
    };
    let path_var = if b.env_clear || b.env.contains_key(OsStr::new("PATH")) {
        path_var
    } else {
        std::env::var_os("PATH")
    };
    let exe = resolve_program(&b.program, path_var.as_deref())?;
    // A protected process runs from an execute-only copy of its program
    // (removed when this function returns: by then it has exec'd).
    let protected_copy = if b.protected {
        if b.debugged {
            return Err(Error::InvalidInput {
                what: "process options",
                reason: "a protected process cannot be debugged".into(),
            });
        }
        Some(ExecuteOnlyCopy::of(&exe)?)
    } else {
        None
    };
    let exe_c = cstring(
        "program path",
        protected_copy
            .as_ref()
            .map_or(exe.as_path(), |c| c.path())
            .as_os_str()
            .as_bytes(),
    )?;

    let mut argv = Vec::with_capacity(b.args.len() + 1);
    let arg0 = b.arg0.as_deref().unwrap_or(&b.program);
    argv.push(cstring("argument", arg0.as_bytes())?);
    for a in &b.args {
        argv.push(cstring("argument", a.as_bytes())?);
    }
    let cwd = match &b.cwd {
        Some(dir) => Some(cstring("current directory", dir.as_os_str().as_bytes())?),
        None => None,
    };

    // Descriptor plan: stdio first, then the explicit handle list.
    let mut keep: Vec<OwnedFd> = Vec::new(); // parent-side copies kept alive until exec
    let mut moves: Vec<FdMove> = Vec::new();
    let mut parent_ends: [Option<OwnedFd>; 3] = [None, None, None];
    let streams = [
        std::mem::take(&mut b.stdin),
        std::mem::take(&mut b.stdout),
        std::mem::take(&mut b.stderr),
    ];
    for (target, stdio) in streams.into_iter().enumerate() {
        let target = target as i32;
        let child_end = match stdio {
            Stdio::Inherit => {
                moves.push(FdMove {
                    src: target,
                    target,
                    optional: true,
                });
                continue;
            }
            Stdio::Null => dev_null(target != 0)?,
            Stdio::Piped => {
                let (reader, writer) = io::pipe().map_err(|e| Error::os("pipe", e))?;
                if target == 0 {
                    parent_ends[0] = Some(writer.into());
                    reader.into()
                } else {
                    parent_ends[target as usize] = Some(reader.into());
                    writer.into()
                }
            }
            Stdio::Fd(fd) => fd,
        };
        moves.push(FdMove {
            src: child_end.as_raw_fd(),
            target,
            optional: false,
        });
        keep.push(child_end);
    }
    for (fd, target) in std::mem::take(&mut b.inherit) {
        if target < 0 {
            return Err(Error::InvalidInput {
                what: "descriptor number",
                reason: format!("{target} is negative"),
            });
        }
        if moves.iter().any(|m| m.target == target) {
            return Err(Error::FdCollision { target });
        }
        moves.push(FdMove {
            src: fd.as_raw_fd(),
            target,
            optional: false,
        });
        keep.push(fd);
    }
    if moves.len() > sys::MAX_FD_MOVES {
        return Err(Error::InvalidInput {
            what: "descriptor list",
            reason: format!(
                "{} descriptors; at most {} besides the standard streams",
                moves.len() - 3,
                sys::MAX_FD_MOVES - 3
            ),
        });
    }
    let tmp_base = moves.iter().map(|m| m.target.max(m.src)).max().unwrap_or(2) + 1;

    let placement = b.placement.take();
    let procs_files = match &placement {
        Some(p) => p
            .procs_files
            .iter()
            .map(|f| cstring("cgroup path", f.as_os_str().as_bytes()))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    let v2_procs = match placement.as_ref().and_then(|p| p.v2_procs.as_ref()) {
        Some(f) => Some(cstring("cgroup path", f.as_os_str().as_bytes())?),
        None => None,
    };

    let ns_fds = placement
        .as_ref()
        .and_then(|p| p.namespaces.as_ref())
        .map_or([-1; 4], |n| n.raw());
    // Joining a mount namespace moves the child to its root: it goes back
    // to our directory (the same path there), unless it has its own.
    let ns_cwd = if ns_fds[3] >= 0 && cwd.is_none() {
        let here =
            std::env::current_dir().map_err(|e| Error::os("find the current directory", e))?;
        Some(cstring("current directory", here.as_os_str().as_bytes())?)
    } else {
        None
    };
    let rlimits: Vec<(i32, libc::rlimit64)> = b
        .rlimits
        .iter()
        .map(|&(r, soft, hard)| {
            (
                r.raw(),
                libc::rlimit64 {
                    rlim_cur: soft,
                    rlim_max: hard,
                },
            )
        })
        .collect();
    let groups: Vec<libc::gid_t> = b
        .credentials
        .as_ref()
        .map(|c| c.groups.clone())
        .unwrap_or_default();
    let env_block = sys::NullTerminated::new(&envp);
    if b.protected && ns_fds[0] >= 0 {
        // Inside a user namespace the process could read its own copy (it
        // has every capability there), and the namespace's owner, the same
        // user as everyone who would attack it, may trace anything in it.
        return Err(Error::Unsupported {
            what: "a protected process",
            reason: "it cannot run in a user namespace (a contained job of an ordinary user): \
                     the namespace's owner may trace anything in it; run it uncontained, or as root"
                .into(),
        });
    }
    // A pico process's server starts first: it must answer the child's
    // calls from the moment its filter is in, while this thread waits.
    let pico = match b.pico.take() {
        Some(spec) => Some(super::pico::Server::start(spec)?),
        None => None,
    };
    let plan = ChildPlan {
        path: &exe_c,
        argv: sys::NullTerminated::new(&argv),
        envp: if inherit_env {
            sys::inherited_environ()
        } else {
            env_block.as_ptr()
        },
        cwd: cwd.as_deref(),
        moves: &moves,
        tmp_base,
        group: b.group,
        nice: b.priority.map(|p| p.nice()),
        realtime: b.priority.is_some_and(|p| p.is_realtime()),
        affinity: b.affinity.as_ref(),
        creds: b
            .credentials
            .as_ref()
            .map(|c| (c.uid, c.gid, groups.as_slice())),
        procs_files: &procs_files,
        // Where clone3 cannot be called directly (no CLONE_INTO_CGROUP), the
        // child joins its v2 cgroup by writing `cgroup.procs` itself.
        extra_procs_file: if sys::CLONE_INTO_CGROUP_WORKS {
            None
        } else {
            v2_procs.as_deref()
        },
        userns: ns_fds[0],
        cgroupns: ns_fds[1],
        pidns: ns_fds[2],
        mntns: ns_fds[3],
        ns_cwd: ns_cwd.as_deref(),
        // A protected process is traced by us until its exec completes: no
        // one else can attach before it is non-dumpable.
        traceme: b.suspended || b.debugged || b.protected,
        rlimits: &rlimits,
        pico: pico.as_ref().map(|s| &*s.handoff),
    };
    let created = SystemTime::now();
    let v2_dir = placement
        .as_ref()
        .and_then(|p| p.v2_dir.as_ref())
        .filter(|_| sys::CLONE_INTO_CGROUP_WORKS);
    let spawned = match sys::spawn(&plan, v2_dir) {
        Err(sys::SpawnError::KilledBeforeStart) if v2_procs.is_some() => {
            // CLONE_INTO_CGROUP killed the child (kernel bug, see ARCHITECTURE.md):
            // have the child join the v2 cgroup by writing cgroup.procs instead.
            let plan = ChildPlan {
                extra_procs_file: v2_procs.as_deref(),
                ..plan
            };
            sys::spawn(&plan, None)
        }
        other => other,
    };
    let (pid, pidfd) = match spawned {
        Ok(spawned) => spawned,
        Err(e) => {
            if let Some(server) = &pico {
                server.abandon();
            }
            return Err(child_error(e, &b, &exe));
        }
    };
    drop(keep);
    let mut process = Process::from_spawn(pid, pidfd, created, parent_ends);
    if let Some(server) = pico {
        process.set_pico(server.stats);
    }
    // The exec stop of a traced start: a suspended process stays stopped
    // (until `resume`), a protected one runs (a debugged one is the
    // debugger's).
    let exec_stop = if b.suspended && !b.debugged {
        Some(true)
    } else {
        b.protected.then_some(false)
    };
    if let Some(stay_stopped) = exec_stop
        && let Err(e) = sys::hand_over_exec_stop(pid, process.pidfd(), stay_stopped)
    {
        // Still alive (a failed detach): kill it; the wait reaps whatever is left.
        process
            .terminate()
            .or_log(|| format!("kill process {} after a failed start", process.pid()));
        process
            .try_wait()
            .or_log(|| format!("reap process {} after a failed start", process.pid()));
        return Err(e);
    }
    drop(protected_copy);
    Ok(process)
}

/// Turns the child's report into the error a person can act on.
fn child_error(e: sys::SpawnError, b: &ProcessBuilder, exe: &Path) -> Error {
    use sys::SpawnError as S;
    let (stage, errno) = match e {
        S::Os(op, err) => return Error::os(op, err),
        S::KilledBeforeStart => {
            return Error::ChildSetup {
                what: "start (killed before its first step)",
                source: io::Error::from_raw_os_error(libc::EINTR),
            };
        }
        S::Child { stage, errno } => (stage, io::Error::from_raw_os_error(errno)),
    };
    let denied = matches!(errno.raw_os_error(), Some(libc::EPERM | libc::EACCES));
    match stage {
        Stage::Exec => match errno.raw_os_error() {
            Some(libc::ENOENT) if exe.exists() => Error::Exec {
                path: exe.to_owned(),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "its interpreter or dynamic loader was not found",
                ),
            },
            Some(libc::ENOENT) => Error::NoSuchFile {
                path: exe.to_owned(),
            },
            Some(libc::EACCES) if exe.is_dir() => Error::IsADirectory {
                path: exe.to_owned(),
            },
            _ => Error::Exec {
                path: exe.to_owned(),
                source: errno,
            },
        },
        Stage::Cwd => Error::CurrentDir {
            path: b.cwd.clone().unwrap_or_default(),
            source: errno,
        },
        Stage::Credentials if denied => Error::PermissionDenied {
            what: match &b.credentials {
                Some(c) => format!("run as uid {} gid {}", c.uid, c.gid),
                None => "switch user".into(),
            },
            source: errno,
        },
        Stage::Priority if denied => Error::PermissionDenied {
            what: format!(
                "set priority class {}",
                b.priority.map(|p| p.name()).unwrap_or("?")
            ),
            source: errno,
        },
        Stage::Affinity if errno.raw_os_error() == Some(libc::EINVAL) => Error::InvalidCpuList {
            input: b.affinity.map(|c| c.to_string()).unwrap_or_default(),
            reason: "no CPU in the list is online and allowed".into(),
        },
        Stage::Rlimit if denied => Error::PermissionDenied {
            what: "raise a hard resource limit".into(),
            source: errno,
        },
        Stage::Cgroup if denied => Error::PermissionDenied {
            what: "join the job's cgroup".into(),
            source: errno,
        },
        other => Error::ChildSetup {
            what: other.describe(),
            source: errno,
        },
    }
}

/// A private, execute-only copy of a program (`0111` in a `0711`
/// directory of its own): the kernel makes a process that executes a file
/// it may not read non-dumpable from its first instruction. Removed on drop.
struct ExecuteOnlyCopy {
    dir: PathBuf,
    file: PathBuf,
}

impl ExecuteOnlyCopy {
    fn of(exe: &Path) -> Result<ExecuteOnlyCopy> {
        let refuse = |reason: String| Error::Unsupported {
            what: "a protected process",
            reason,
        };
        let dumpable = std::fs::read_to_string("/proc/sys/fs/suid_dumpable").unwrap_or_default();
        if dumpable.trim() == "1" {
            return Err(refuse(
                "this machine makes such processes dumpable (fs.suid_dumpable = 1)".into(),
            ));
        }
        let bytes = std::fs::read(exe).map_err(|e| Error::Exec {
            path: exe.to_owned(),
            source: e,
        })?;
        if !bytes.starts_with(b"\x7fELF") {
            return Err(refuse(format!(
                "{} is not an ELF executable (a script's interpreter would have to read it)",
                exe.display()
            )));
        }
        let name = exe.file_name().unwrap_or(OsStr::new("program"));
        // A directory where files may be executed: the first that is not noexec.
        let bases = [
            std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
            Some(PathBuf::from("/dev/shm")),
            Some(std::env::temp_dir()),
        ];
        let mut last = None;
        for base in bases.into_iter().flatten() {
            match Self::make_in(&base, name, &bytes) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some((base, e)),
            }
        }
        let (base, e) = last.expect("three places were tried");
        Err(Error::os(
            format!(
                "make an execute-only copy of {} in {}",
                exe.display(),
                base.display()
            ),
            e,
        ))
    }

    fn make_in(base: &Path, name: &OsStr, bytes: &[u8]) -> io::Result<ExecuteOnlyCopy> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let noexec = rustix::fs::statvfs(base)
            .map(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::NOEXEC))
            .map_err(io::Error::from)?;
        if noexec {
            return Err(io::Error::other("mounted noexec"));
        }
        let dir = base.join(format!(
            "taskloom-protected-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        // Others may pass through (to execute the copy as another user), not list.
        std::fs::DirBuilder::new().mode(0o711).create(&dir)?;
        let file = dir.join(name);
        let copy = ExecuteOnlyCopy { dir, file };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&copy.file)?;
        f.write_all(bytes)?;
        // Execute-only for everyone, its owner included.
        f.set_permissions(std::fs::Permissions::from_mode(0o111))?;
        Ok(copy)
    }

    fn path(&self) -> &Path {
        &self.file
    }
}

impl Drop for ExecuteOnlyCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_dir(&self.dir);
    }
}
