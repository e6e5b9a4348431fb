//! Processes on Windows: [`ProcessBuilder`] through `CreateProcessW`, the
//! process handle, and console control events, over the real calls.
//!
//! A spawn builds the command line by the rules `CommandLineToArgvW` and
//! the C runtime read back, the environment block sorted as Windows wants
//! it, and passes exactly the three standard handles
//! (`PROC_THREAD_ATTRIBUTE_HANDLE_LIST`): duplicates made inheritable for
//! the call and closed after it, so no other handle of this process leaks
//! into the child and the caller's own handles stay as they were.
//!
//! One of the fenced unsafe modules: every block is one Win32 call on live
//! values of the sizes passed.
#![allow(unsafe_code)] // fenced: ARCHITECTURE.md, "Invariants"

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString, c_void};
use std::fs::File;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsHandle, AsRawHandle, BorrowedHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_BAD_EXE_FORMAT, ERROR_DIRECTORY, ERROR_FILE_NOT_FOUND,
    ERROR_PATH_NOT_FOUND, FILETIME, HANDLE, STILL_ACTIVE, WAIT_FAILED, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::System::Console::{
    CTRL_BREAK_EVENT, CTRL_C_EVENT, CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT,
    GetStdHandle, STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, SetConsoleCtrlHandler,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::Threading::{
    ABOVE_NORMAL_PRIORITY_CLASS, BELOW_NORMAL_PRIORITY_CLASS, CREATE_BREAKAWAY_FROM_JOB,
    CREATE_NEW_PROCESS_GROUP, CREATE_SUSPENDED, CREATE_UNICODE_ENVIRONMENT, CreateEventW,
    CreateProcessW, DETACHED_PROCESS, DeleteProcThreadAttributeList, EXTENDED_STARTUPINFO_PRESENT,
    GetExitCodeProcess, GetProcessAffinityMask, GetProcessTimes, HIGH_PRIORITY_CLASS,
    IDLE_PRIORITY_CLASS, INFINITE, InitializeProcThreadAttributeList, LPPROC_THREAD_ATTRIBUTE_LIST,
    NORMAL_PRIORITY_CLASS, OpenProcess, OpenThread, PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
    PROCESS_CREATION_FLAGS, PROCESS_INFORMATION, PROCESS_QUERY_INFORMATION,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SET_INFORMATION, PROCESS_SET_QUOTA,
    PROCESS_SUSPEND_RESUME, PROCESS_TERMINATE, REALTIME_PRIORITY_CLASS, ResumeThread,
    STARTF_USESTDHANDLES, STARTUPINFOEXW, SetEvent, SetPriorityClass, SetProcessAffinityMask,
    SuspendThread, THREAD_SUSPEND_RESUME, TerminateProcess, UpdateProcThreadAttribute,
    WaitForMultipleObjects, WaitForSingleObject,
};

use windows_sys::Win32::Storage::FileSystem::SYNCHRONIZE;

use super::{ExitStatus, ProcessAccess, ProcessBuilder, ProcessGroup, ProcessTimes, Stdio};
use crate::cpuset::CpuSet;
use crate::error::{Error, OrLog, Result};
use crate::priority::PriorityClass;
use crate::windows::{
    duplicate, filetime_duration, filetime_instant, last_error, last_os, owned, raw, wide,
};

/// The exit code a process ended by [`Process::terminate`] reports (as
/// `std::process::Child::kill` uses).
pub(crate) const TERMINATED: u32 = 1;

/// A handle to a process (`HANDLE` from `CreateProcessW` or `OpenProcess`).
///
/// Dropping it neither kills nor waits for the process, as closing a
/// Windows handle does neither.
#[derive(Debug)]
pub struct Process {
    pid: i32,
    handle: OwnedHandle,
    /// The main thread of a process this handle started suspended, for
    /// [`Process::resume`].
    thread: Mutex<Option<OwnedHandle>>,
    access: ProcessAccess,
    status: Option<ExitStatus>,
    /// The parent's end of a piped stdin.
    pub stdin: Option<File>,
    /// The parent's end of a piped stdout.
    pub stdout: Option<File>,
    /// The parent's end of a piped stderr.
    pub stderr: Option<File>,
}

/// The Windows priority class flag of a [`PriorityClass`].
pub(crate) fn priority_flag(class: PriorityClass) -> PROCESS_CREATION_FLAGS {
    match class {
        PriorityClass::Idle => IDLE_PRIORITY_CLASS,
        PriorityClass::BelowNormal => BELOW_NORMAL_PRIORITY_CLASS,
        PriorityClass::Normal => NORMAL_PRIORITY_CLASS,
        PriorityClass::AboveNormal => ABOVE_NORMAL_PRIORITY_CLASS,
        PriorityClass::High => HIGH_PRIORITY_CLASS,
        PriorityClass::Realtime => REALTIME_PRIORITY_CLASS,
    }
}

/// Appends `arg` to a command line so that `CommandLineToArgvW` (and the C
/// runtime) read it back as one argument, exactly.
fn append_arg(line: &mut Vec<u16>, arg: &OsStr) {
    if !line.is_empty() {
        line.push(u16::from(b' '));
    }
    let units: Vec<u16> = arg.encode_wide().collect();
    let quote = units.is_empty()
        || units
            .iter()
            .any(|&c| c == u16::from(b' ') || c == u16::from(b'\t') || c == u16::from(b'"'));
    if !quote {
        line.extend_from_slice(&units);
        return;
    }
    line.push(u16::from(b'"'));
    let mut backslashes = 0usize;
    for &c in &units {
        if c == u16::from(b'\\') {
            backslashes += 1;
            continue;
        }
        if c == u16::from(b'"') {
            // Backslashes before a quote are doubled, and the quote escaped.
            line.extend(std::iter::repeat_n(u16::from(b'\\'), backslashes * 2 + 1));
        } else {
            line.extend(std::iter::repeat_n(u16::from(b'\\'), backslashes));
        }
        backslashes = 0;
        line.push(c);
    }
    // Backslashes before the closing quote are doubled.
    line.extend(std::iter::repeat_n(u16::from(b'\\'), backslashes * 2));
    line.push(u16::from(b'"'));
}

/// The command line of `argv` (argument 0 first), for `CreateProcessW`.
pub(crate) fn command_line<'a>(argv: impl IntoIterator<Item = &'a OsStr>) -> Result<Vec<u16>> {
    let mut line = Vec::new();
    for arg in argv {
        if arg.encode_wide().any(|c| c == 0) {
            return Err(Error::NulByte {
                what: "argument",
                value: arg.to_string_lossy().into_owned(),
            });
        }
        append_arg(&mut line, arg);
    }
    line.push(0);
    Ok(line)
}

/// Splits a command line as the C runtime (and `CommandLineToArgvW`) does:
/// words separated by spaces and tabs; `"` starts and ends quoting; `2n`
/// backslashes before a quote are `n` backslashes (and the quote quotes),
/// `2n+1` are `n` and a literal quote; `""` inside quotes is a literal
/// quote; other backslashes are themselves. The inverse of how a spawn
/// builds its command line.
pub fn split(line: &str) -> Result<Vec<OsString>> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let mut word = String::new();
        let mut quoted = false;
        while i < chars.len() {
            let c = chars[i];
            if !quoted && (c == ' ' || c == '\t') {
                break;
            }
            if c == '\\' {
                let start = i;
                while i < chars.len() && chars[i] == '\\' {
                    i += 1;
                }
                let n = i - start;
                if i < chars.len() && chars[i] == '"' {
                    word.extend(std::iter::repeat_n('\\', n / 2));
                    if n % 2 == 1 {
                        word.push('"');
                        i += 1;
                    }
                } else {
                    word.extend(std::iter::repeat_n('\\', n));
                }
                continue;
            }
            if c == '"' {
                if quoted && i + 1 < chars.len() && chars[i + 1] == '"' {
                    word.push('"');
                    i += 2;
                    continue;
                }
                quoted = !quoted;
                i += 1;
                continue;
            }
            word.push(c);
            i += 1;
        }
        if quoted {
            return Err(Error::CommandLine(format!(
                "unterminated quote in {line:?}"
            )));
        }
        words.push(OsString::from(word));
    }
    Ok(words)
}

/// The environment variables the child gets: the parent's (unless
/// cleared) with the builder's changes, names compared as Windows compares
/// them (case-insensitively), sorted as `CreateProcessW` wants them.
fn environment(b: &ProcessBuilder) -> Result<BTreeMap<String, (OsString, OsString)>> {
    let mut vars: BTreeMap<String, (OsString, OsString)> = BTreeMap::new();
    let key = |k: &OsStr| k.to_string_lossy().to_uppercase();
    if !b.env_clear {
        for (k, v) in std::env::vars_os() {
            vars.insert(key(&k), (k, v));
        }
    }
    for (k, v) in &b.env {
        let name = k.to_string_lossy();
        // A leading `=` is how Windows keeps per-drive directories (`=C:`).
        if name.is_empty() || name[1..].contains('=') || name.contains('\0') {
            return Err(Error::InvalidEnvName {
                name: name.into_owned(),
                reason: "empty, or holds '=' or NUL",
            });
        }
        match v {
            Some(v) => {
                if v.encode_wide().any(|c| c == 0) {
                    return Err(Error::NulByte {
                        what: "environment value",
                        value: v.to_string_lossy().into_owned(),
                    });
                }
                vars.insert(key(k), (k.clone(), v.clone()));
            }
            None => {
                vars.remove(&key(k));
            }
        }
    }
    Ok(vars)
}

/// The environment block (`K=V\0…\0`) of `vars`.
fn environment_block(vars: &BTreeMap<String, (OsString, OsString)>) -> Vec<u16> {
    let mut block = Vec::new();
    for (k, v) in vars.values() {
        block.extend(k.encode_wide());
        block.push(u16::from(b'='));
        block.extend(v.encode_wide());
        block.push(0);
    }
    if block.is_empty() {
        block.push(0);
    }
    block.push(0);
    block
}

/// Finds `program` as `CreateProcessW` would be asked to run it: a name
/// with a path separator is a path (relative to this process's directory);
/// a bare name is searched in the child's `PATH`, with `.exe` added when it
/// has no extension.
fn resolve(program: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf> {
    let p = Path::new(program);
    let has_sep = program
        .encode_wide()
        .any(|c| c == u16::from(b'\\') || c == u16::from(b'/'));
    if has_sep {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        let exe = p.with_extension("exe");
        if p.extension().is_none() && exe.is_file() {
            return Ok(exe);
        }
        if p.is_dir() {
            return Err(Error::IsADirectory { path: p.into() });
        }
        return Err(Error::NoSuchFile { path: p.into() });
    }
    let search = path_var.map(OsStr::to_owned).unwrap_or_default();
    for dir in std::env::split_paths(&search) {
        let candidate = dir.join(p);
        if candidate.is_file() {
            return Ok(candidate);
        }
        if p.extension().is_none() {
            let exe = candidate.with_extension("exe");
            if exe.is_file() {
                return Ok(exe);
            }
        }
    }
    Err(Error::ProgramNotFound {
        program: program.to_string_lossy().into_owned(),
        search_path: search.to_string_lossy().into_owned(),
    })
}

/// One of the child's standard handles, made inheritable for the call,
/// and the parent's end of a pipe.
struct StdHandle {
    child: Option<OwnedHandle>,
    parent: Option<File>,
}

fn std_handle(stdio: Stdio, which: u32, input: bool) -> Result<StdHandle> {
    let what = match which {
        STD_INPUT_HANDLE => "stdin",
        STD_OUTPUT_HANDLE => "stdout",
        _ => "stderr",
    };
    let (child, parent) = match stdio {
        Stdio::Inherit => {
            // SAFETY: GetStdHandle takes a constant and returns a borrowed handle.
            let h = unsafe { GetStdHandle(which) };
            if h.is_null() || h == windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE {
                return Ok(StdHandle {
                    child: None,
                    parent: None,
                });
            }
            // SAFETY: a valid standard handle of this process, borrowed for the duplicate.
            let borrowed = unsafe { BorrowedHandle::borrow_raw(h as _) };
            (duplicate(&borrowed, true)?, None)
        }
        Stdio::Null => {
            let f = std::fs::OpenOptions::new()
                .read(input)
                .write(!input)
                .open("NUL")
                .map_err(|e| Error::os(format!("open NUL for the child's {what}"), e))?;
            (duplicate(&f, true)?, None)
        }
        Stdio::Piped => {
            let (r, w) = std::io::pipe()
                .map_err(|e| Error::os(format!("make a pipe for the child's {what}"), e))?;
            if input {
                (duplicate(&r, true)?, Some(File::from(OwnedHandle::from(w))))
            } else {
                (duplicate(&w, true)?, Some(File::from(OwnedHandle::from(r))))
            }
        }
        Stdio::Handle(h) => (duplicate(&h, true)?, None),
    };
    Ok(StdHandle {
        child: Some(child),
        parent,
    })
}

/// `PROC_THREAD_ATTRIBUTE_HANDLE_LIST`: the handles the child inherits.
struct AttributeList {
    buf: Vec<u64>,
    /// The list the attribute points to, alive until the list is deleted.
    _handles: Box<[HANDLE]>,
}

impl AttributeList {
    fn with_handles(handles: Vec<HANDLE>) -> Result<AttributeList> {
        let mut size = 0usize;
        // SAFETY: the documented size query: a null list and a size pointer.
        unsafe { InitializeProcThreadAttributeList(ptr::null_mut(), 1, 0, &mut size) };
        let mut buf = vec![0u64; size.div_ceil(8)];
        let list = buf.as_mut_ptr() as LPPROC_THREAD_ATTRIBUTE_LIST;
        // SAFETY: `buf` holds `size` bytes, 8-aligned.
        if unsafe { InitializeProcThreadAttributeList(list, 1, 0, &mut size) } == 0 {
            return Err(last_os("initialise the child's attribute list"));
        }
        let handles = handles.into_boxed_slice();
        // SAFETY: `list` was initialised above; the handle array lives in
        // `_handles` as long as the list.
        let ok = unsafe {
            UpdateProcThreadAttribute(
                list,
                0,
                PROC_THREAD_ATTRIBUTE_HANDLE_LIST as usize,
                handles.as_ptr() as *const c_void,
                std::mem::size_of_val(&*handles),
                ptr::null_mut(),
                ptr::null(),
            )
        };
        let out = AttributeList {
            buf,
            _handles: handles,
        };
        if ok == 0 {
            return Err(last_os("list the handles the child inherits"));
        }
        Ok(out)
    }

    fn as_ptr(&mut self) -> LPPROC_THREAD_ATTRIBUTE_LIST {
        self.buf.as_mut_ptr() as LPPROC_THREAD_ATTRIBUTE_LIST
    }
}

impl Drop for AttributeList {
    fn drop(&mut self) {
        // SAFETY: the list was initialised in `with_handles`.
        unsafe { DeleteProcThreadAttributeList(self.as_ptr()) };
    }
}

/// `CreateProcessW` with every choice of `b`.
pub(crate) fn spawn(b: ProcessBuilder) -> Result<Process> {
    spawn_then(b, |_| Ok(()))
}

/// Starts `b`'s process suspended, lets `before` act on it (assign it to
/// jobs) and lets it run unless `b` asked for a suspended start. If
/// `before` fails, the process is terminated and the error returned.
pub(crate) fn spawn_then(
    mut b: ProcessBuilder,
    before: impl FnOnce(&Process) -> Result<()>,
) -> Result<Process> {
    let vars = environment(&b)?;
    let inherit_env = !b.env_clear && b.env.is_empty();
    let path_var = vars.get("PATH").map(|(_, v)| v.clone());
    let exe = resolve(&b.program, path_var.as_deref())?;
    let arg0 = b.arg0.clone().unwrap_or_else(|| b.program.clone());
    let mut line = command_line(
        std::iter::once(arg0.as_os_str()).chain(b.args.iter().map(OsString::as_os_str)),
    )?;
    let exe_w = wide(&exe);
    let mut env_block = (!inherit_env).then(|| environment_block(&vars));
    let cwd_w = match &b.cwd {
        Some(d) => {
            if !d.is_dir() {
                return Err(Error::CurrentDir {
                    path: d.clone(),
                    source: std::io::Error::from_raw_os_error(ERROR_DIRECTORY as i32),
                });
            }
            Some(wide(d))
        }
        None => None,
    };
    let stdin = std_handle(std::mem::take(&mut b.stdin), STD_INPUT_HANDLE, true)?;
    let stdout = std_handle(std::mem::take(&mut b.stdout), STD_OUTPUT_HANDLE, false)?;
    let stderr = std_handle(std::mem::take(&mut b.stderr), STD_ERROR_HANDLE, false)?;
    let h = |s: &StdHandle| s.child.as_ref().map_or(ptr::null_mut(), raw);
    let mut listed: Vec<HANDLE> = [h(&stdin), h(&stdout), h(&stderr)]
        .into_iter()
        .filter(|h| !h.is_null())
        .collect();
    listed.dedup();
    let mut attrs = if listed.is_empty() {
        None
    } else {
        Some(AttributeList::with_handles(listed)?)
    };

    let mut flags = CREATE_UNICODE_ENVIRONMENT | EXTENDED_STARTUPINFO_PRESENT | CREATE_SUSPENDED;
    if let Some(class) = b.priority {
        flags |= priority_flag(class);
    }
    match b.group {
        ProcessGroup::Inherit => {}
        ProcessGroup::NewGroup => flags |= CREATE_NEW_PROCESS_GROUP,
        ProcessGroup::NewSession => flags |= DETACHED_PROCESS,
        ProcessGroup::Join(_) => {
            return Err(Error::Unsupported {
                what: "joining another process group",
                reason: "Windows starts a process in a new group or its parent's, never another's"
                    .into(),
            });
        }
    }
    if b.breakaway {
        flags |= CREATE_BREAKAWAY_FROM_JOB;
    }
    let affinity = b.affinity.map(CpuSet::to_mask).transpose()?;

    // SAFETY: STARTUPINFOEXW and PROCESS_INFORMATION are plain C structs
    // for which all-zero is the documented initial state.
    let mut si: STARTUPINFOEXW = unsafe { std::mem::zeroed() };
    si.StartupInfo.cb = std::mem::size_of::<STARTUPINFOEXW>() as u32;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = h(&stdin);
    si.StartupInfo.hStdOutput = h(&stdout);
    si.StartupInfo.hStdError = h(&stderr);
    si.lpAttributeList = attrs
        .as_mut()
        .map_or(ptr::null_mut(), AttributeList::as_ptr);
    // SAFETY: as above.
    let mut pi: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: every pointer is NUL-terminated UTF-16 (or the environment
    // block, double-NUL-terminated) owned above and alive for the call;
    // `line` is mutable as CreateProcessW requires; `si` and `pi` are live.
    let ok = unsafe {
        CreateProcessW(
            exe_w.as_ptr(),
            line.as_mut_ptr(),
            ptr::null(),
            ptr::null(),
            1,
            flags,
            env_block
                .as_mut()
                .map_or(ptr::null(), |e| e.as_mut_ptr() as *const c_void),
            cwd_w.as_ref().map_or(ptr::null(), |d| d.as_ptr()),
            &si.StartupInfo,
            &mut pi,
        )
    };
    drop(attrs);
    if ok == 0 {
        let e = last_error();
        return Err(match e.raw_os_error().map(|c| c as u32) {
            Some(ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND) => Error::NoSuchFile { path: exe },
            Some(ERROR_DIRECTORY) => Error::CurrentDir {
                path: b.cwd.clone().unwrap_or_default(),
                source: e,
            },
            Some(ERROR_BAD_EXE_FORMAT) => Error::Exec {
                path: exe,
                source: e,
            },
            Some(ERROR_ACCESS_DENIED) if b.breakaway => Error::PermissionDenied {
                what: "start a process outside the caller's job (the job does not allow breakaway)"
                    .into(),
                source: e,
            },
            _ => Error::Exec {
                path: exe,
                source: e,
            },
        });
    }
    // SAFETY: CreateProcessW succeeded: both handles are new and ours.
    let handle = unsafe { owned(pi.hProcess, "take the new process's handle")? };
    // SAFETY: as above.
    let thread = unsafe { owned(pi.hThread, "take the new process's main thread")? };
    let mut child = Process {
        pid: pi.dwProcessId as i32,
        handle,
        thread: Mutex::new(Some(thread)),
        access: ProcessAccess::all(),
        status: None,
        stdin: stdin.parent,
        stdout: stdout.parent,
        stderr: stderr.parent,
    };
    let started = (|| {
        if let Some(mask) = affinity {
            // SAFETY: a live process handle with full access.
            if unsafe { SetProcessAffinityMask(raw(&child.handle), mask) } == 0 {
                return Err(last_os(format!(
                    "set the affinity of process {}",
                    child.pid
                )));
            }
        }
        before(&child)?;
        if !b.suspended {
            child.resume()?;
        }
        Ok(())
    })();
    if let Err(e) = started {
        // SAFETY: a live process handle with full access; it never ran.
        unsafe { TerminateProcess(raw(&child.handle), TERMINATED) };
        let pid = child.pid;
        child
            .wait()
            .or_log(|| format!("wait for process {pid} after a failed start"));
        return Err(e);
    }
    Ok(child)
}

/// The Windows access mask of [`ProcessAccess`] rights.
fn windows_access(access: ProcessAccess) -> u32 {
    let mut a = SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION;
    if access.contains(ProcessAccess::TERMINATE) {
        a |= PROCESS_TERMINATE;
    }
    if access.contains(ProcessAccess::SUSPEND_RESUME) {
        a |= PROCESS_SUSPEND_RESUME;
    }
    if access.contains(ProcessAccess::QUERY_INFORMATION) {
        a |= PROCESS_QUERY_INFORMATION;
    }
    if access.contains(ProcessAccess::SET_INFORMATION) {
        // Assigning a process to a job takes PROCESS_SET_QUOTA too.
        a |= PROCESS_SET_INFORMATION | PROCESS_SET_QUOTA;
    }
    a
}

impl Process {
    /// `OpenProcess(SYNCHRONIZE)`: a handle to wait for process `pid`.
    pub fn open(pid: i32) -> Result<Self> {
        Self::open_with_access(pid, ProcessAccess::SYNCHRONIZE)
    }

    /// `OpenProcess` with access rights, each checked by Windows now.
    pub fn open_with_access(pid: i32, access: ProcessAccess) -> Result<Self> {
        if pid <= 0 {
            return Err(Error::NoSuchProcess { pid });
        }
        // SAFETY: OpenProcess takes plain integers and returns a new handle or NULL.
        let h = unsafe { OpenProcess(windows_access(access), 0, pid as u32) };
        if h.is_null() {
            let e = last_error();
            return Err(match e.kind() {
                std::io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                    what: format!("open process {pid}"),
                    source: e,
                },
                _ => Error::NoSuchProcess { pid },
            });
        }
        // SAFETY: a new handle we own.
        let handle = unsafe { owned(h, format!("open process {pid}"))? };
        Ok(Process {
            pid,
            handle,
            thread: Mutex::new(None),
            access: access | ProcessAccess::SYNCHRONIZE,
            status: None,
            stdin: None,
            stdout: None,
            stderr: None,
        })
    }

    /// The rights this handle holds.
    pub fn access(&self) -> ProcessAccess {
        self.access
    }

    fn require(&self, right: ProcessAccess, what: &str) -> Result<()> {
        if self.access.contains(right) {
            return Ok(());
        }
        let name = format!("{right:?}");
        let name = name
            .trim_start_matches("ProcessAccess(")
            .trim_end_matches(')');
        Err(Error::not_granted(
            format!("{what} process {}", self.pid),
            "PROCESS",
            name,
        ))
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The process handle.
    pub fn handle(&self) -> BorrowedHandle<'_> {
        self.handle.as_handle()
    }

    /// Resumes a process that was started suspended (its main thread), or
    /// suspended with [`suspend`](Self::suspend) (every thread).
    pub fn resume(&self) -> Result<()> {
        self.require(ProcessAccess::SUSPEND_RESUME, "resume")?;
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // SAFETY: the main thread handle CreateProcessW gave us.
            if unsafe { ResumeThread(raw(&t)) } == u32::MAX {
                return Err(last_os(format!("resume process {}", self.pid)));
            }
            return Ok(());
        }
        self.each_thread(true)
    }

    /// Suspends every thread of the process (`SuspendThread` on each).
    pub fn suspend(&self) -> Result<()> {
        self.require(ProcessAccess::SUSPEND_RESUME, "suspend")?;
        self.each_thread(false)
    }

    fn each_thread(&self, resume: bool) -> Result<()> {
        // SAFETY: a snapshot of every thread; a new handle or INVALID_HANDLE_VALUE.
        let snap = unsafe {
            owned(
                CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0),
                "list threads",
            )?
        };
        // SAFETY: THREADENTRY32 is a plain C struct; zero is its initial state.
        let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
        entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
        // SAFETY: a live snapshot handle and a sized entry.
        let mut more = unsafe { Thread32First(raw(&snap), &mut entry) } != 0;
        while more {
            if entry.th32OwnerProcessID == self.pid as u32 {
                // SAFETY: OpenThread returns a new handle or NULL.
                let t = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) };
                if !t.is_null() {
                    // SAFETY: a new handle we own.
                    let t = unsafe { owned(t, "open a thread")? };
                    // SAFETY: a live thread handle with THREAD_SUSPEND_RESUME.
                    unsafe {
                        if resume {
                            ResumeThread(raw(&t));
                        } else {
                            SuspendThread(raw(&t));
                        }
                    }
                }
            }
            // SAFETY: as for Thread32First.
            more = unsafe { Thread32Next(raw(&snap), &mut entry) } != 0;
        }
        Ok(())
    }

    /// `TerminateProcess`: ends the process; it reports exit code 1.
    pub fn terminate(&self) -> Result<()> {
        self.require(ProcessAccess::TERMINATE, "terminate")?;
        // SAFETY: a live process handle.
        if unsafe { TerminateProcess(raw(&self.handle), TERMINATED) } == 0 {
            // Terminating a process that has ended already is not an error.
            if self.exit_code()?.is_some() {
                return Ok(());
            }
            return Err(last_os(format!("terminate process {}", self.pid)));
        }
        Ok(())
    }

    /// `GetProcessAffinityMask`.
    pub fn affinity(&self) -> Result<CpuSet> {
        let (mut mine, mut system) = (0usize, 0usize);
        // SAFETY: a live handle and two out-pointers.
        if unsafe { GetProcessAffinityMask(raw(&self.handle), &mut mine, &mut system) } == 0 {
            return Err(last_os(format!(
                "read the affinity of process {}",
                self.pid
            )));
        }
        Ok(CpuSet::from_mask(mine))
    }

    /// `SetProcessAffinityMask`.
    pub fn set_affinity(&self, cpus: &CpuSet) -> Result<()> {
        self.require(ProcessAccess::SET_INFORMATION, "set the affinity of")?;
        let mask = cpus.to_mask()?;
        // SAFETY: a live handle.
        if unsafe { SetProcessAffinityMask(raw(&self.handle), mask) } == 0 {
            return Err(last_os(format!("set the affinity of process {}", self.pid)));
        }
        Ok(())
    }

    /// `SetPriorityClass`.
    pub fn set_priority_class(&self, class: PriorityClass) -> Result<()> {
        self.require(ProcessAccess::SET_INFORMATION, "set the priority of")?;
        // SAFETY: a live handle.
        if unsafe { SetPriorityClass(raw(&self.handle), priority_flag(class)) } == 0 {
            return Err(last_os(format!("set the priority of process {}", self.pid)));
        }
        Ok(())
    }

    fn exit_code(&self) -> Result<Option<u32>> {
        let mut code = 0u32;
        // SAFETY: a live handle and an out-pointer.
        if unsafe { GetExitCodeProcess(raw(&self.handle), &mut code) } == 0 {
            return Err(last_os(format!(
                "read the exit code of process {}",
                self.pid
            )));
        }
        // STILL_ACTIVE is also a code a process may exit with: the handle's
        // signalled state decides.
        if code == STILL_ACTIVE as u32 && self.wait_handle(Some(Duration::ZERO))?.is_none() {
            return Ok(None);
        }
        Ok(Some(code))
    }

    fn wait_handle(&self, timeout: Option<Duration>) -> Result<Option<()>> {
        let ms = timeout.map_or(INFINITE, |t| {
            t.as_millis().min(u128::from(INFINITE - 1)) as u32
        });
        // SAFETY: a live handle.
        match unsafe { WaitForSingleObject(raw(&self.handle), ms) } {
            WAIT_OBJECT_0 => Ok(Some(())),
            WAIT_TIMEOUT => Ok(None),
            _ => Err(last_os(format!("wait for process {}", self.pid))),
        }
    }

    fn settle(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none()
            && let Some(code) = self.exit_code()?
        {
            self.status = Some(ExitStatus::Exited { code: code as i32 });
        }
        Ok(self.status)
    }

    /// The exit status if the process has ended, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        match self.wait_handle(Some(Duration::ZERO))? {
            Some(()) => self.settle(),
            None => Ok(None),
        }
    }

    /// Waits for the process to end.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        self.wait_handle(None)?;
        Ok(self.settle()?.unwrap_or(ExitStatus::Unknown))
    }

    /// Waits at most `timeout`; `None` if the process still runs.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        match self.wait_handle(Some(timeout))? {
            Some(()) => self.settle(),
            None => Ok(None),
        }
    }

    /// How the process ended, once a wait has seen it end.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// `GetProcessTimes`.
    pub fn times(&self) -> Result<ProcessTimes> {
        let zero = FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        };
        let (mut c, mut e, mut k, mut u) = (zero, zero, zero, zero);
        // SAFETY: a live handle and four out-pointers.
        if unsafe { GetProcessTimes(raw(&self.handle), &mut c, &mut e, &mut k, &mut u) } == 0 {
            return Err(last_os(format!("read the times of process {}", self.pid)));
        }
        let ended = e.dwHighDateTime != 0 || e.dwLowDateTime != 0;
        Ok(ProcessTimes {
            creation: filetime_instant(c),
            exit: ended.then(|| filetime_instant(e)),
            user: filetime_duration(u),
            kernel: filetime_duration(k),
        })
    }
}

impl AsHandle for Process {
    fn as_handle(&self) -> BorrowedHandle<'_> {
        self.handle.as_handle()
    }
}

/// `WaitForMultipleObjects(.., FALSE, ..)`: the index of a process that has
/// ended, or `None` at the timeout.
pub fn wait_any(procs: &mut [&mut Process], timeout: Option<Duration>) -> Result<Option<usize>> {
    let handles: Vec<HANDLE> = procs.iter().map(|p| raw(&p.handle)).collect();
    let i = wait_multiple(&handles, false, timeout)?;
    if let Some(i) = i {
        procs[i].settle()?;
    }
    Ok(i)
}

/// `WaitForMultipleObjects(.., TRUE, ..)`: whether all ended before the timeout.
pub fn wait_all(procs: &mut [&mut Process], timeout: Option<Duration>) -> Result<bool> {
    let handles: Vec<HANDLE> = procs.iter().map(|p| raw(&p.handle)).collect();
    let done = wait_multiple(&handles, true, timeout)?.is_some();
    if done {
        for p in procs.iter_mut() {
            p.settle()?;
        }
    }
    Ok(done)
}

fn wait_multiple(
    handles: &[HANDLE],
    all: bool,
    timeout: Option<Duration>,
) -> Result<Option<usize>> {
    if handles.is_empty() || handles.len() > 64 {
        return Err(Error::InvalidInput {
            what: "wait",
            reason: format!("{} handles (Windows waits on 1 to 64)", handles.len()),
        });
    }
    let ms = timeout.map_or(INFINITE, |t| {
        t.as_millis().min(u128::from(INFINITE - 1)) as u32
    });
    // SAFETY: `handles` are live handles, their count passed.
    let r = unsafe {
        WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), i32::from(all), ms)
    };
    match r {
        WAIT_TIMEOUT => Ok(None),
        WAIT_FAILED => Err(last_os("wait for processes")),
        r if r < WAIT_OBJECT_0 + handles.len() as u32 => Ok(Some((r - WAIT_OBJECT_0) as usize)),
        _ => Err(last_os("wait for processes")),
    }
}

/// One console control event that reached this process (`CTRL_C_EVENT`,
/// `CTRL_BREAK_EVENT`, `CTRL_CLOSE_EVENT`, …), the Windows form of the
/// signals a supervisor takes on Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlEvent {
    /// The event's number (`CTRL_C_EVENT` is 0).
    pub signal: i32,
    /// Sent to the whole console (every process attached to it has it).
    pub from_terminal: bool,
    /// The sender (0: the console).
    pub sender: i32,
}

/// Control event numbers by the names the Linux signals have.
pub mod signals {
    /// Ctrl-C (`CTRL_C_EVENT`).
    pub const INT: i32 = super::CTRL_C_EVENT as i32;
    /// Ctrl-Break (`CTRL_BREAK_EVENT`).
    pub const QUIT: i32 = super::CTRL_BREAK_EVENT as i32;
    /// The console window was closed (`CTRL_CLOSE_EVENT`).
    pub const HUP: i32 = super::CTRL_CLOSE_EVENT as i32;
    /// The user logs off (`CTRL_LOGOFF_EVENT`).
    pub const LOGOFF: i32 = super::CTRL_LOGOFF_EVENT as i32;
    /// The system shuts down (`CTRL_SHUTDOWN_EVENT`).
    pub const TERM: i32 = super::CTRL_SHUTDOWN_EVENT as i32;
}

/// Events the handler has seen and the caller has not yet read.
static PENDING: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// The event object the handler sets (a `HANDLE`, null until the first catch).
static WAKE: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
/// Which events the handler takes (the rest go to the next handler).
static CAUGHT: Mutex<Vec<i32>> = Mutex::new(Vec::new());

unsafe extern "system" fn on_control(event: u32) -> i32 {
    let caught = CAUGHT
        .lock()
        .map(|c| c.contains(&(event as i32)))
        .unwrap_or(false);
    if !caught {
        return 0;
    }
    if let Ok(mut p) = PENDING.lock() {
        p.push(event as i32);
    }
    let wake = WAKE.load(Ordering::Acquire);
    if !wake.is_null() {
        // SAFETY: the event object made in `catch`, never closed.
        unsafe { SetEvent(wake) };
    }
    1
}

/// Console control events caught for the calling thread's loop
/// (`SetConsoleCtrlHandler`): the events it is given are queued instead of
/// ending the process.
#[derive(Debug)]
pub struct ControlEvents {
    _private: (),
}

impl ControlEvents {
    /// Takes `events` (numbers from [`signals`]) from now on.
    pub fn catch(events: &[i32]) -> Result<ControlEvents> {
        if WAKE.load(Ordering::Acquire).is_null() {
            // SAFETY: an unnamed auto-reset event; a new handle or NULL.
            let h = unsafe { CreateEventW(ptr::null(), 0, 0, ptr::null()) };
            if h.is_null() {
                return Err(last_os("create the control event"));
            }
            // Kept for the life of the process (the handler may run at any time).
            if WAKE
                .compare_exchange(ptr::null_mut(), h, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // SAFETY: our own new handle, never shared.
                unsafe { windows_sys::Win32::Foundation::CloseHandle(h) };
            }
        }
        CAUGHT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(events);
        // SAFETY: a handler with the PHANDLER_ROUTINE signature.
        if unsafe { SetConsoleCtrlHandler(Some(on_control), 1) } == 0 {
            return Err(last_os("install the console control handler"));
        }
        Ok(ControlEvents { _private: () })
    }

    /// The next event waiting, if any (never blocks).
    pub fn next(&self) -> Result<Option<ControlEvent>> {
        let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        Ok((!p.is_empty()).then(|| ControlEvent {
            signal: p.remove(0),
            from_terminal: true,
            sender: 0,
        }))
    }

    /// Sleeps until an event is waiting, `process` (when given) has ended,
    /// or `until` (when given) has come; whichever is first.
    pub fn wait(&self, process: Option<&Process>, until: Option<Instant>) -> Result<()> {
        if !PENDING.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            return Ok(());
        }
        let mut handles = vec![WAKE.load(Ordering::Acquire)];
        if let Some(p) = process {
            handles.push(raw(&p.handle));
        }
        let timeout = until.map(|t| t.saturating_duration_since(Instant::now()));
        wait_multiple(&handles, false, timeout).map(|_| ())
    }
}

impl AsRawHandle for Process {
    fn as_raw_handle(&self) -> std::os::windows::io::RawHandle {
        self.handle.as_raw_handle()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> String {
        let l = command_line(args.iter().map(OsStr::new)).unwrap();
        String::from_utf16(&l[..l.len() - 1]).unwrap()
    }

    #[test]
    fn a_command_line_splits_back_into_its_arguments() {
        let args = [
            "prog",
            "plain",
            "two words",
            "",
            r#"say "hi""#,
            r"C:\dir\",
            r"a\\b",
            "tab\there",
            r#"a\"b c"#,
        ];
        let line = command_line(args.iter().map(OsStr::new)).unwrap();
        let line = String::from_utf16(&line[..line.len() - 1]).unwrap();
        let back = split(&line).unwrap();
        assert_eq!(back, args.iter().map(OsString::from).collect::<Vec<_>>());
        assert_eq!(split(r#"a "b"" c""#).unwrap(), ["a", r#"b" c"#]);
        assert!(split(r#"a "b"#).is_err());
    }

    #[test]
    fn arguments_are_quoted_as_the_c_runtime_reads_them() {
        assert_eq!(line(&["a", "b c", ""]), r#"a "b c" """#);
        assert_eq!(line(&[r#"say "hi""#]), r#""say \"hi\"""#);
        assert_eq!(line(&[r"C:\dir\"]), r"C:\dir\");
        assert_eq!(line(&[r"C:\my dir\"]), r#""C:\my dir\\""#);
        assert_eq!(line(&[r#"a\"b c"#]), r#""a\\\"b c""#);
    }
}
