//! The low layer on Windows (what `linux/` is on Linux): handles as
//! `OwnedHandle`, strings as NUL-terminated UTF-16, and the calling
//! thread's last error as a typed [`Error`], over `windows-sys`.
//!
//! One of the fenced unsafe modules: every block is one Win32 call whose
//! pointers come from live Rust values of the sizes passed.
#![allow(unsafe_code)] // fenced: ARCHITECTURE.md, "Invariants"

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{FromRawHandle, OwnedHandle, RawHandle};

use windows_sys::Win32::Foundation::{
    DUPLICATE_SAME_ACCESS, DuplicateHandle, GetLastError, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

use crate::error::{Error, Result};

/// `s` as a NUL-terminated UTF-16 string, for a `PCWSTR`.
pub(crate) fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain(Some(0)).collect()
}

/// The calling thread's last error, as an `io::Error`.
pub(crate) fn last_error() -> io::Error {
    // SAFETY: GetLastError reads the calling thread's error value; no arguments.
    io::Error::from_raw_os_error(unsafe { GetLastError() } as i32)
}

/// The calling thread's last error, as the typed error of operation `op`.
pub(crate) fn last_os(op: impl Into<String>) -> Error {
    Error::os(op, last_error())
}

/// Takes ownership of a handle a call returned (`NULL` or
/// `INVALID_HANDLE_VALUE` mean it failed: the last error then).
///
/// # Safety
/// `h` must be a handle the caller owns and nothing else closes.
pub(crate) unsafe fn owned(h: HANDLE, op: impl Into<String>) -> Result<OwnedHandle> {
    if h.is_null() || h == INVALID_HANDLE_VALUE {
        return Err(last_os(op));
    }
    // SAFETY: the caller owns `h` (this function's contract), and it is valid.
    Ok(unsafe { OwnedHandle::from_raw_handle(h as RawHandle) })
}

/// The raw value of a handle, for a Win32 call.
pub(crate) fn raw(h: &impl std::os::windows::io::AsRawHandle) -> HANDLE {
    h.as_raw_handle() as HANDLE
}

/// A second handle to the same object in this process, inheritable or not
/// (`DuplicateHandle`): the original stays as it was.
pub(crate) fn duplicate(
    h: &impl std::os::windows::io::AsRawHandle,
    inheritable: bool,
) -> Result<OwnedHandle> {
    let mut out: HANDLE = std::ptr::null_mut();
    // SAFETY: both process handles are the current-process pseudo handle;
    // `h` is a live handle; `out` is written on success.
    let ok = unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            raw(h),
            GetCurrentProcess(),
            &mut out,
            0,
            i32::from(inheritable),
            DUPLICATE_SAME_ACCESS,
        )
    };
    if ok == 0 {
        return Err(last_os("duplicate a handle"));
    }
    // SAFETY: DuplicateHandle succeeded, so `out` is a new handle we own.
    unsafe { owned(out, "duplicate a handle") }
}

/// This process's affinity mask (`GetProcessAffinityMask`).
pub(crate) fn own_affinity_mask() -> Result<usize> {
    let (mut mine, mut system) = (0usize, 0usize);
    // SAFETY: the current-process pseudo handle and two out-pointers.
    let ok = unsafe {
        windows_sys::Win32::System::Threading::GetProcessAffinityMask(
            GetCurrentProcess(),
            &mut mine,
            &mut system,
        )
    };
    if ok == 0 {
        return Err(last_os("read this process's affinity"));
    }
    Ok(mine)
}

/// A `FILETIME` (100 ns units since 1601) as a duration.
pub(crate) fn filetime_duration(
    ft: windows_sys::Win32::Foundation::FILETIME,
) -> std::time::Duration {
    let t = (u64::from(ft.dwHighDateTime) << 32) | u64::from(ft.dwLowDateTime);
    std::time::Duration::from_nanos(t.saturating_mul(100))
}

/// A `FILETIME` as a point in time.
pub(crate) fn filetime_instant(
    ft: windows_sys::Win32::Foundation::FILETIME,
) -> std::time::SystemTime {
    // 1601-01-01 to 1970-01-01.
    const EPOCH_DIFF: std::time::Duration = std::time::Duration::from_secs(11_644_473_600);
    let since_1601 = filetime_duration(ft);
    std::time::UNIX_EPOCH + since_1601.saturating_sub(EPOCH_DIFF)
}

/// A duration in the 100 ns units job limits take.
pub(crate) fn hundred_ns(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos() / 100).unwrap_or(i64::MAX)
}
