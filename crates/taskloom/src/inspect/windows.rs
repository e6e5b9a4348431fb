//! Inspection on Windows: [`snapshot`] through the system's own calls
//! (Toolhelp for the process and thread lists, then per process
//! `GetProcessTimes`, `K32GetProcessMemoryInfo`, the owner from its token,
//! and the command line from `NtQueryInformationProcess`), into the same
//! [`ProcEntry`] shape where a field means the same on both systems.
//!
//! One of the fenced unsafe modules: every block is one Win32 call on live
//! values of the sizes passed.
#![allow(unsafe_code)] // fenced: ARCHITECTURE.md, "Invariants"

use std::collections::HashMap;
use std::os::windows::io::OwnedHandle;
use std::ptr;
use std::time::{Duration, SystemTime};

use windows_sys::Wdk::System::Threading::{
    NtQueryInformationProcess, ProcessBasicInformation, ProcessCommandLineInformation,
};
use windows_sys::Win32::Foundation::{FILETIME, UNICODE_STRING};
use windows_sys::Win32::Security::{
    GetTokenInformation, LookupAccountSidW, SID_NAME_USE, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::System::Diagnostics::Debug::ReadProcessMemory;
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS,
    TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::ProcessStatus::{K32GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS};
use windows_sys::Win32::System::Threading::{
    GetProcessTimes, OpenProcess, OpenProcessToken, PROCESS_BASIC_INFORMATION,
    PROCESS_QUERY_INFORMATION, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_VM_READ,
};

use super::{SnapshotOptions, epoch_secs, secs};
use crate::bytes;
use crate::error::{Error, Result};
use crate::windows::{filetime_duration, filetime_instant, owned, raw};

/// One row of a process (or thread) listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcEntry {
    /// Process id (thread id in a thread listing).
    pub pid: i32,
    /// The owning process's id (equals `pid` for a process).
    pub tgid: i32,
    /// The id of the process that created it (Windows keeps it even after
    /// that process ended, so it may name a process that is gone or a
    /// later one with the same id).
    pub ppid: i32,
    /// The owner, `DOMAIN\name`, when its token may be read.
    pub user: Option<String>,
    /// The image name (`szExeFile`), UTF-8.
    #[serde(serialize_with = "bytes::serialize")]
    pub name: Vec<u8>,
    /// Threads.
    pub threads: i64,
    /// Working set, bytes (what Task Manager calls memory in use).
    pub rss: u64,
    /// User CPU time, seconds.
    #[serde(serialize_with = "secs")]
    pub user_time: Duration,
    /// Kernel CPU time, seconds.
    #[serde(serialize_with = "secs")]
    pub kernel_time: Duration,
    /// Creation time (seconds since the epoch).
    #[serde(serialize_with = "epoch_secs")]
    pub start_time: SystemTime,
    /// The command line split as the Microsoft C runtime splits it into
    /// `argv` (what a program built with it receives); empty when it cannot
    /// be read. UTF-8.
    #[serde(serialize_with = "bytes::serialize_list")]
    pub cmdline: Vec<Vec<u8>>,
}

/// Lists every process (or thread) on the machine, by pid. What may not be
/// read of a process (times, memory, owner, command line of another user's
/// process) is left empty; a process that ends during the listing is
/// skipped. Naming each one's job is not possible on Windows (`job: true`
/// is `Unsupported`: the system tells whether a process is in a job, not
/// which).
pub fn snapshot(opts: SnapshotOptions) -> Result<Vec<ProcEntry>> {
    if opts.job {
        return Err(Error::Unsupported {
            what: "naming each process's job",
            reason: "Windows tells whether a process is in a job, not which".into(),
        });
    }
    let procs = toolhelp_processes()?;
    let mut users = HashMap::new();
    let mut out = Vec::with_capacity(procs.len());
    for (pid, ppid, threads, name) in procs {
        let mut e = ProcEntry {
            pid,
            tgid: pid,
            ppid,
            user: None,
            name,
            threads,
            rss: 0,
            user_time: Duration::ZERO,
            kernel_time: Duration::ZERO,
            start_time: SystemTime::UNIX_EPOCH,
            cmdline: Vec::new(),
        };
        // SAFETY: no pointers; a new handle or NULL.
        let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid as u32) };
        // SAFETY: as above; NULL (not ours to read) leaves the row as it is.
        if let Ok(h) = unsafe { owned(h, "open") } {
            fill(&h, &mut e, opts, &mut users);
        }
        out.push(e);
    }
    if opts.threads {
        return thread_rows(out);
    }
    Ok(out)
}

/// What Toolhelp gives of a process: pid, ppid, threads, image name.
type Listed = (i32, i32, i64, Vec<u8>);

/// Every process Toolhelp lists, by pid.
fn toolhelp_processes() -> Result<Vec<Listed>> {
    // SAFETY: a snapshot of every process; a new handle or INVALID_HANDLE_VALUE.
    let snap = unsafe {
        owned(
            CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0),
            "list processes",
        )?
    };
    // SAFETY: a plain C struct; zero is its initial state.
    let mut entry: PROCESSENTRY32W = unsafe { std::mem::zeroed() };
    entry.dwSize = size_of::<PROCESSENTRY32W>() as u32;
    let mut out = Vec::new();
    // SAFETY: a live snapshot handle and a sized entry.
    let mut more = unsafe { Process32FirstW(raw(&snap), &mut entry) } != 0;
    while more {
        let len = entry
            .szExeFile
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(entry.szExeFile.len());
        let name = String::from_utf16_lossy(&entry.szExeFile[..len]).into_bytes();
        out.push((
            entry.th32ProcessID as i32,
            entry.th32ParentProcessID as i32,
            i64::from(entry.cntThreads),
            name,
        ));
        // SAFETY: as for Process32FirstW.
        more = unsafe { Process32NextW(raw(&snap), &mut entry) } != 0;
    }
    out.sort_by_key(|p| p.0);
    Ok(out)
}

/// Times, memory, owner and command line of one process.
fn fill(
    h: &OwnedHandle,
    e: &mut ProcEntry,
    opts: SnapshotOptions,
    users: &mut HashMap<Vec<u8>, Option<String>>,
) {
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: a live handle and four out-pointers.
    if unsafe { GetProcessTimes(raw(h), &mut created, &mut exited, &mut kernel, &mut user) } != 0 {
        e.start_time = filetime_instant(created);
        e.kernel_time = filetime_duration(kernel);
        e.user_time = filetime_duration(user);
    }
    // SAFETY: a plain C struct of the size passed.
    let mut mem: PROCESS_MEMORY_COUNTERS = unsafe { std::mem::zeroed() };
    mem.cb = size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
    // SAFETY: a live handle and a sized struct.
    if unsafe { K32GetProcessMemoryInfo(raw(h), &mut mem, mem.cb) } != 0 {
        e.rss = mem.WorkingSetSize as u64;
    }
    e.user = owner(h, users);
    if opts.cmdline {
        e.cmdline = command_line(h)
            .or_else(|| command_line_from_peb(e.pid))
            .map(|line| split_command_line(&line))
            .unwrap_or_default();
    }
}

/// The user a process runs as, `DOMAIN\name` (looked up once per SID).
fn owner(h: &OwnedHandle, users: &mut HashMap<Vec<u8>, Option<String>>) -> Option<String> {
    let mut token = ptr::null_mut();
    // SAFETY: a live process handle and an out-pointer.
    if unsafe { OpenProcessToken(raw(h), TOKEN_QUERY, &mut token) } == 0 {
        return None;
    }
    // SAFETY: a new handle we own.
    let token = unsafe { owned(token, "open a token") }.ok()?;
    let mut buf = vec![0u64; 64]; // 512 bytes, aligned for TOKEN_USER
    let mut len = 0u32;
    // SAFETY: a live token and a buffer of the size passed.
    let ok = unsafe {
        GetTokenInformation(
            raw(&token),
            TokenUser,
            buf.as_mut_ptr().cast(),
            512,
            &mut len,
        )
    };
    if ok == 0 {
        return None;
    }
    // SAFETY: GetTokenInformation wrote a TOKEN_USER at the buffer's start.
    let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    // SID bytes: revision, count, authority (6), then count sub-authorities of 4.
    // SAFETY: a valid SID the token holds; its second byte is its sub-authority count.
    let sid_len = 8 + 4 * usize::from(unsafe { *sid.cast::<u8>().add(1) });
    // SAFETY: the SID is `sid_len` bytes long (its own count says so).
    let key = unsafe { std::slice::from_raw_parts(sid.cast::<u8>(), sid_len) }.to_vec();
    users
        .entry(key)
        .or_insert_with(|| {
            let mut name = [0u16; 256];
            let mut domain = [0u16; 256];
            let (mut nl, mut dl) = (256u32, 256u32);
            let mut kind: SID_NAME_USE = 0;
            // SAFETY: a valid SID and buffers of the lengths passed.
            let ok = unsafe {
                LookupAccountSidW(
                    ptr::null(),
                    sid,
                    name.as_mut_ptr(),
                    &mut nl,
                    domain.as_mut_ptr(),
                    &mut dl,
                    &mut kind,
                )
            };
            (ok != 0).then(|| {
                let n = String::from_utf16_lossy(&name[..nl as usize]);
                let d = String::from_utf16_lossy(&domain[..dl as usize]);
                if d.is_empty() { n } else { format!("{d}\\{n}") }
            })
        })
        .clone()
}

/// The process's command line, as it was given to `CreateProcess`.
fn command_line(h: &OwnedHandle) -> Option<Vec<u16>> {
    let mut buf = vec![0u64; 512];
    loop {
        let size = (buf.len() * 8) as u32;
        let mut needed = 0u32;
        // SAFETY: a live handle and a buffer of the size passed; on success it
        // holds a UNICODE_STRING whose text lies inside the same buffer.
        let status = unsafe {
            NtQueryInformationProcess(
                raw(h),
                ProcessCommandLineInformation,
                buf.as_mut_ptr().cast(),
                size,
                &mut needed,
            )
        };
        if status >= 0 {
            // SAFETY: as above: a UNICODE_STRING at the start.
            let us = unsafe { &*buf.as_ptr().cast::<UNICODE_STRING>() };
            let n = usize::from(us.Length) / 2;
            if us.Buffer.is_null() || n == 0 {
                return Some(Vec::new());
            }
            // SAFETY: `n` UTF-16 units at `Buffer`, inside `buf`.
            return Some(unsafe { std::slice::from_raw_parts(us.Buffer, n) }.to_vec());
        }
        let want = needed as usize;
        if want <= buf.len() * 8 || want > 1 << 20 {
            return None;
        }
        buf = vec![0u64; want.div_ceil(8)];
    }
}

/// The command line read from the process's own PEB (its
/// `RTL_USER_PROCESS_PARAMETERS`), for systems that do not answer
/// `ProcessCommandLineInformation` (Wine; Windows before 8.1). Needs read
/// access to its memory, so only a process of this user (or any, as an
/// administrator).
fn command_line_from_peb(pid: i32) -> Option<Vec<u16>> {
    /// x64 offsets: `PEB.ProcessParameters`, `RTL_USER_PROCESS_PARAMETERS.CommandLine`.
    const PROCESS_PARAMETERS: usize = 0x20;
    const COMMAND_LINE: usize = 0x70;
    // SAFETY: no pointers; a new handle or NULL.
    let h = unsafe { OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ, 0, pid as u32) };
    // SAFETY: as above.
    let h = unsafe { owned(h, "open") }.ok()?;
    // SAFETY: a plain C struct.
    let mut pbi: PROCESS_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    let mut got = 0u32;
    // SAFETY: a live handle and a struct of the size passed.
    let status = unsafe {
        NtQueryInformationProcess(
            raw(&h),
            ProcessBasicInformation,
            (&raw mut pbi).cast(),
            size_of::<PROCESS_BASIC_INFORMATION>() as u32,
            &mut got,
        )
    };
    if status < 0 || pbi.PebBaseAddress.is_null() {
        return None;
    }
    let params: usize = read_remote(&h, pbi.PebBaseAddress as usize + PROCESS_PARAMETERS)?;
    // UNICODE_STRING: Length (u16), MaximumLength (u16), padding, Buffer (pointer).
    let lengths: u32 = read_remote(&h, params + COMMAND_LINE)?;
    let buffer: usize = read_remote(&h, params + COMMAND_LINE + 8)?;
    let units = (lengths & 0xffff) as usize / 2;
    let mut line = vec![0u16; units];
    let mut read = 0usize;
    // SAFETY: a live handle with VM_READ and a local buffer of the size passed;
    // the remote address is only read by the system, which checks it.
    let ok = unsafe {
        ReadProcessMemory(
            raw(&h),
            buffer as *const _,
            line.as_mut_ptr().cast(),
            units * 2,
            &mut read,
        )
    };
    (ok != 0 && read == units * 2).then_some(line)
}

/// A plain value (`usize`, `u32`) read from another process's memory.
fn read_remote<T: Copy + Default>(h: &OwnedHandle, addr: usize) -> Option<T> {
    let mut v = T::default();
    let mut read = 0usize;
    // SAFETY: a live handle with VM_READ and a local value of the size passed.
    let ok = unsafe {
        ReadProcessMemory(
            raw(h),
            addr as *const _,
            (&raw mut v).cast(),
            size_of::<T>(),
            &mut read,
        )
    };
    (ok != 0 && read == size_of::<T>()).then_some(v)
}

/// Splits a command line into `argv` by the Microsoft C runtime's rules
/// (those of 2008 and later): the program name runs to the next blank, or
/// between quotes with no escapes; after it, blanks separate arguments,
/// quotes group, `2n` backslashes before a quote are `n` backslashes and
/// the quote groups, `2n+1` are `n` and a literal quote, backslashes
/// elsewhere are literal, and `""` inside quotes is a literal quote.
pub fn split_command_line(line: &[u16]) -> Vec<Vec<u8>> {
    let text: Vec<char> = char::decode_utf16(line.iter().copied())
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    let mut args = Vec::new();
    let mut i = 0;
    let n = text.len();
    // The program name.
    let mut prog = String::new();
    if text.first() == Some(&'"') {
        i = 1;
        while i < n && text[i] != '"' {
            prog.push(text[i]);
            i += 1;
        }
        i += 1; // the closing quote, if any
    } else {
        while i < n && text[i] != ' ' && text[i] != '\t' {
            prog.push(text[i]);
            i += 1;
        }
    }
    args.push(prog.into_bytes());
    loop {
        while i < n && (text[i] == ' ' || text[i] == '\t') {
            i += 1;
        }
        if i >= n {
            break;
        }
        let mut arg = String::new();
        let mut quoted = false;
        while i < n {
            let c = text[i];
            if c == '\\' {
                let start = i;
                while i < n && text[i] == '\\' {
                    i += 1;
                }
                let slashes = i - start;
                if i < n && text[i] == '"' {
                    arg.extend(std::iter::repeat_n('\\', slashes / 2));
                    if slashes % 2 == 1 {
                        arg.push('"');
                        i += 1;
                    }
                } else {
                    arg.extend(std::iter::repeat_n('\\', slashes));
                }
                continue;
            }
            if c == '"' {
                if quoted && i + 1 < n && text[i + 1] == '"' {
                    arg.push('"');
                    i += 2;
                    continue;
                }
                quoted = !quoted;
                i += 1;
                continue;
            }
            if !quoted && (c == ' ' || c == '\t') {
                break;
            }
            arg.push(c);
            i += 1;
        }
        args.push(arg.into_bytes());
    }
    args
}

/// One row per thread: the owner's row for each of its threads.
fn thread_rows(procs: Vec<ProcEntry>) -> Result<Vec<ProcEntry>> {
    let by_pid: HashMap<i32, ProcEntry> = procs.into_iter().map(|p| (p.pid, p)).collect();
    // SAFETY: a snapshot of every thread; a new handle or INVALID_HANDLE_VALUE.
    let snap = unsafe {
        owned(
            CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0),
            "list threads",
        )?
    };
    // SAFETY: a plain C struct; zero is its initial state.
    let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
    entry.dwSize = size_of::<THREADENTRY32>() as u32;
    let mut out = Vec::new();
    // SAFETY: a live snapshot handle and a sized entry.
    let mut more = unsafe { Thread32First(raw(&snap), &mut entry) } != 0;
    while more {
        if let Some(p) = by_pid.get(&(entry.th32OwnerProcessID as i32)) {
            let mut row = p.clone();
            row.pid = entry.th32ThreadID as i32;
            row.threads = 1;
            out.push(row);
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(raw(&snap), &mut entry) } != 0;
    }
    out.sort_by_key(|r| (r.tgid, r.pid));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::split_command_line;

    fn split(s: &str) -> Vec<String> {
        let w: Vec<u16> = s.encode_utf16().collect();
        split_command_line(&w)
            .into_iter()
            .map(|a| String::from_utf8(a).unwrap())
            .collect()
    }

    #[test]
    fn the_c_runtimes_rules() {
        // Microsoft's own table ("Parsing C command-line arguments").
        assert_eq!(split(r#"p "a b c" d e"#), ["p", "a b c", "d", "e"]);
        assert_eq!(split(r#"p "ab\"c" "\\" d"#), ["p", r#"ab"c"#, "\\", "d"]);
        assert_eq!(split(r#"p a\\\b d"e f"g h"#), ["p", r"a\\\b", "de fg", "h"]);
        assert_eq!(split(r#"p a\\\"b c d"#), ["p", r#"a\"b"#, "c", "d"]);
        assert_eq!(split(r#"p a\\\\"b c" d e"#), ["p", r"a\\b c", "d", "e"]);
        assert_eq!(split(r#"p a"b"" c d"#), ["p", r#"ab" c d"#]);
        // The program name: quotes, no escapes.
        assert_eq!(split(r#""C:\x y\p.exe" z"#), [r"C:\x y\p.exe", "z"]);
        assert_eq!(split(r"C:\p.exe"), [r"C:\p.exe"]);
        assert_eq!(split("p  \t "), ["p"]);
        assert_eq!(split(r#"p """#), ["p", ""]);
    }
}
