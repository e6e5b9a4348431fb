//! Helpers shared by the job test binaries (included with `#[path]`).

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
/// Callers serialise their tests, so no other thread holds a lock across the fork.
pub fn breakaway_from(job_name: &str) -> String {
    let (mut r, w) = std::io::pipe().unwrap();
    // SAFETY: the child runs taskloom calls and _exits, never returning into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        use std::io::Write;
        let mut w = w;
        let text = (|| -> taskloom::Result<String> {
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
        .unwrap_or_else(|e| format!("err {e}"));
        let _ = w.write_all(text.as_bytes());
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
