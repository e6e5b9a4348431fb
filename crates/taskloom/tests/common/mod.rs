//! Helpers shared by the test binaries (included with `#[path]`).
#![allow(dead_code)]

use std::io::Read;
use std::time::{Duration, Instant};

use taskloom::job::{self, Job};
use taskloom::process::ProcessBuilder;

/// Polls `f` until it holds, failing the test after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kill-on-close with two handles: dropping one kills nothing, dropping the
/// last kills the member and removes the job.
pub fn kill_on_close_waits_for_every_handle(name: &str) {
    let job = Job::builder()
        .name(name)
        .kill_on_close(true)
        .create()
        .unwrap();
    let copy = job.duplicate().unwrap();
    let mut p = job.spawn(ProcessBuilder::new("sleep").arg("30")).unwrap();
    drop(job);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        p.try_wait().unwrap(),
        None,
        "killed while a handle was still open"
    );
    drop(copy);
    let status = p
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("killed on close");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    wait_until("the job to be removed", Duration::from_secs(10), || {
        !Job::list().unwrap().contains(&name.to_owned())
    });
}

/// In a forked process that joins `job_name`, spawns `sleep` with
/// `breakaway_from_job` and reports `ok <job of the child or ->` or `err <message>`.
pub fn breakaway_from(job_name: &str) -> String {
    report_from_child(|| {
        (|| -> taskloom::Result<String> {
            Job::open(job_name)?.assign_pid(std::process::id() as i32)?;
            let mut child = ProcessBuilder::new("sleep")
                .arg("30")
                .breakaway_from_job(true)
                .spawn()?;
            let inside = job::job_of(child.pid())?;
            child.terminate()?;
            child.wait()?;
            Ok(format!("ok {}", inside.unwrap_or_else(|| "-".into())))
        })()
        .unwrap_or_else(|e| format!("err {e}"))
    })
}

/// Runs `f` in a forked child and returns what it reports. Callers
/// serialise their tests, so no other thread holds a lock across the fork.
pub fn report_from_child(f: impl FnOnce() -> String) -> String {
    let (mut r, w) = std::io::pipe().unwrap();
    // SAFETY: the child runs `f` and _exits, never returning into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        use std::io::Write;
        let mut w = w;
        let _ = w.write_all(f().as_bytes());
        drop(w);
        // SAFETY: leave the forked child directly.
        unsafe { libc::_exit(0) };
    }
    drop(w);
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    // SAFETY: reaping the child forked above.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    out
}

/// Runs `body` as pid 1 of a new pid namespace, with its own `/proc` (root
/// only), in a forked child; returns what it reports, or `err …`. There
/// `/proc/sys/kernel/ns_last_pid` can hand a reaped process's pid to the
/// next one: how the pid-reuse tests force a reuse.
pub fn in_pid_namespace(body: impl FnOnce() -> Result<String, String>) -> String {
    report_from_child(|| {
        // SAFETY: unshare in the forked child.
        if unsafe { libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS) } != 0 {
            return format!("err unshare: {}", std::io::Error::last_os_error());
        }
        // The next child is pid 1 of the new namespace.
        report_from_child(|| {
            // SAFETY: mount syscalls with static C strings, in our own mount namespace.
            let mounted = unsafe {
                let none = std::ptr::null();
                let private = libc::MS_REC | libc::MS_PRIVATE;
                libc::mount(c"none".as_ptr(), c"/".as_ptr(), none, private, none.cast()) == 0
                    && libc::mount(
                        c"proc".as_ptr(),
                        c"/proc".as_ptr(),
                        c"proc".as_ptr(),
                        0,
                        none.cast(),
                    ) == 0
            };
            if !mounted {
                return format!("err mount: {}", std::io::Error::last_os_error());
            }
            body().unwrap_or_else(|e| format!("err {e}"))
        })
    })
}

/// Makes the next process of this pid namespace get `pid` (after
/// [`in_pid_namespace`] mounted its `/proc`).
pub fn next_pid_is(pid: i32) -> Result<(), String> {
    std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
        .map_err(|e| format!("ns_last_pid: {e}"))
}

mod not_run;
#[allow(unused_imports)] // not every test binary calls it
pub use not_run::not_run;
