//! Integration tests for the CreateProcess family and the process handle.
//!
//! Every test takes the `serial()` lock: some count this process's open
//! descriptors, which other tests running at the same time would disturb.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use taskloom::process::{
    Credentials, ExitStatus, Process, ProcessAccess, ProcessBuilder, ProcessGroup, Stdio, wait_all,
    wait_any,
};
use taskloom::{CpuSet, Error, PriorityClass};

#[path = "../common/mod.rs"]
mod common;
mod shell;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn output(b: ProcessBuilder) -> (ExitStatus, String) {
    let mut child = b.stdout(Stdio::Piped).spawn().expect("spawn");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (child.wait().unwrap(), out)
}

fn sh(script: &str) -> ProcessBuilder {
    ProcessBuilder::new("sh").arg("-c").arg(script)
}

/// Fields after the name in /proc/<pid>/stat (index 0 = state).
fn stat_fields(pid: i32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let close = stat.rfind(')').unwrap();
    stat[close + 2..].split(' ').map(str::to_owned).collect()
}

fn open_fds() -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    fds
}

#[test]
fn runs_a_program_and_reads_its_output() {
    let _g = serial();
    let (status, out) = output(ProcessBuilder::new("echo").args(["hello", "world"]));
    assert!(status.success());
    assert_eq!(out, "hello world\n");
}

#[test]
fn command_line_is_split_like_a_shell() {
    let _g = serial();
    let b = ProcessBuilder::from_command_line(r#"printf '%s|' "a b" 'c"d' e\ f"#).unwrap();
    let (_, out) = output(b);
    assert_eq!(out, "a b|c\"d|e f|");
    assert!(matches!(
        ProcessBuilder::from_command_line("'open"),
        Err(Error::CommandLine(_))
    ));
    assert!(matches!(
        ProcessBuilder::from_command_line("   "),
        Err(Error::CommandLine(_))
    ));
}

/// The signal mask of `/proc/<pid>/status` field `key` (`SigIgn`, `SigCgt`, `SigBlk`).
fn signal_set(pid: i32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:\t")))
        .unwrap_or_else(|| panic!("no {key} in {status}"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

#[test]
fn a_child_starts_with_default_signal_handling() {
    let _g = serial();
    let bit = |sig: i32| 1u64 << (sig - 1);
    // This test process ignores SIGPIPE (as every Rust program does) and,
    // for the test, SIGUSR2; it catches SIGUSR1 and blocks SIGTERM.
    extern "C" fn on_usr1(_: libc::c_int) {}
    // SAFETY: installing a no-op handler and an ignore, restored below; the
    // serial lock keeps the other tests of this binary from spawning meanwhile.
    let (old_usr1, old_usr2) = unsafe {
        (
            libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t),
            libc::signal(libc::SIGUSR2, libc::SIG_IGN),
        )
    };
    let mut term = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut old_mask = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: valid sigset storage; the mask is restored below.
    unsafe {
        libc::sigemptyset(term.as_mut_ptr());
        libc::sigaddset(term.as_mut_ptr(), libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, term.as_ptr(), old_mask.as_mut_ptr());
    }
    let child = ProcessBuilder::new("sleep")
        .arg("10")
        .suspended(true)
        .spawn();
    // SAFETY: restoring what was saved above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old_mask.as_ptr(), std::ptr::null_mut());
        libc::signal(libc::SIGUSR1, old_usr1);
        libc::signal(libc::SIGUSR2, old_usr2);
    }
    let mut child = child.unwrap();
    let pid = child.pid();
    let ignored = signal_set(pid, "SigIgn");
    assert_eq!(
        ignored & bit(libc::SIGPIPE),
        0,
        "SIGPIPE is back to default"
    );
    assert_ne!(
        ignored & bit(libc::SIGUSR2),
        0,
        "other ignores are inherited, as on exec"
    );
    assert_eq!(
        signal_set(pid, "SigCgt") & bit(libc::SIGUSR1),
        0,
        "no handler"
    );
    assert_eq!(
        signal_set(pid, "SigBlk"),
        0,
        "nothing blocked: not the parent's mask"
    );
    child.terminate().unwrap();
    child.wait().unwrap();
}

#[test]
fn exit_codes_and_signals_are_told_apart() {
    let _g = serial();
    let status = sh("exit 7").spawn().unwrap().wait().unwrap();
    assert_eq!(status, ExitStatus::Exited { code: 7 });
    assert_eq!(status.shell_code(), 7);
    let status = sh("kill -TERM $$").spawn().unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert_eq!(status.shell_code(), 128 + libc::SIGTERM);
    assert_eq!(status.to_string(), "killed by SIGTERM");
}

#[test]
fn environment_inherit_set_remove_clear() {
    let _g = serial();
    // SAFETY: tests in this binary are serialised, so no thread reads the environment concurrently.
    unsafe { std::env::set_var("TASKLOOM_TEST_INHERITED", "yes") };
    let (_, out) = output(
        sh("echo $TASKLOOM_TEST_INHERITED:$EXTRA:${HOME+home}")
            .env("EXTRA", "x")
            .env_remove("HOME"),
    );
    assert_eq!(out, "yes:x:\n");
    let (_, out) = output(
        ProcessBuilder::new("/usr/bin/env")
            .env_clear()
            .env("ONLY", "1"),
    );
    assert_eq!(out, "ONLY=1\n");
}

#[test]
fn invalid_environment_names_are_refused() {
    let _g = serial();
    for (name, want) in [("A=B", "'='"), ("", "empty"), ("A\0B", "NUL")] {
        let err = ProcessBuilder::new("true")
            .env(name, "v")
            .spawn()
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidEnvName { .. }),
            "{name:?}: {err}"
        );
        assert!(err.to_string().contains(want), "{err}");
    }
    let err = ProcessBuilder::new("true")
        .env("K", "a\0b")
        .spawn()
        .unwrap_err();
    assert!(matches!(err, Error::NulByte { .. }), "{err}");
    let err = ProcessBuilder::new("true").arg("a\0b").spawn().unwrap_err();
    assert!(matches!(err, Error::NulByte { .. }), "{err}");
}

#[test]
fn current_directory_is_applied_and_checked() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = output(ProcessBuilder::new("pwd").current_dir(dir.path()));
    assert_eq!(
        out.trim_end(),
        dir.path().canonicalize().unwrap().to_str().unwrap()
    );
    let missing = dir.path().join("missing");
    let err = ProcessBuilder::new("true")
        .current_dir(&missing)
        .spawn()
        .unwrap_err();
    match err {
        Error::CurrentDir { path, source } => {
            assert_eq!(path, missing);
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn missing_and_unrunnable_programs_give_real_errors() {
    let _g = serial();
    let err = ProcessBuilder::new("taskloom-no-such-program")
        .spawn()
        .unwrap_err();
    assert!(matches!(err, Error::ProgramNotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("program not found: taskloom-no-such-program"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let err = ProcessBuilder::new(dir.path()).spawn().unwrap_err();
    assert!(matches!(err, Error::IsADirectory { .. }), "{err}");

    let err = ProcessBuilder::new(dir.path().join("nope"))
        .spawn()
        .unwrap_err();
    assert!(matches!(err, Error::NoSuchFile { .. }), "{err}");

    let plain = dir.path().join("plain");
    std::fs::write(&plain, "#!/bin/sh\ntrue\n").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = ProcessBuilder::new(&plain).spawn().unwrap_err();
    match &err {
        Error::Exec { source, .. } => {
            assert_eq!(source.raw_os_error(), Some(libc::EACCES), "{err}")
        }
        e => panic!("unexpected {e}"),
    }

    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, [0u8, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = ProcessBuilder::new(&garbage).spawn().unwrap_err();
    match &err {
        Error::Exec { source, .. } => {
            assert_eq!(source.raw_os_error(), Some(libc::ENOEXEC), "{err}")
        }
        e => panic!("unexpected {e}"),
    }

    let no_interp = dir.path().join("no-interp");
    std::fs::write(&no_interp, "#!/nonexistent/interpreter\n").unwrap();
    std::fs::set_permissions(&no_interp, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = ProcessBuilder::new(&no_interp).spawn().unwrap_err();
    assert!(err.to_string().contains("interpreter"), "{err}");
}

#[test]
fn path_search_uses_the_childs_path() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let tool = dir.path().join("taskloom-test-tool");
    std::fs::write(&tool, "#!/bin/sh\necho found\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("/nonexistent:{}:/usr/bin:/bin", dir.path().display());
    let (_, out) = output(ProcessBuilder::new("taskloom-test-tool").env("PATH", &path));
    assert_eq!(out, "found\n");
    let err = ProcessBuilder::new("taskloom-test-tool")
        .env("PATH", "/nonexistent")
        .spawn()
        .unwrap_err();
    assert!(
        err.to_string().contains("searched PATH=/nonexistent"),
        "{err}"
    );
}

#[test]
fn the_child_gets_exactly_the_listed_descriptors() {
    let _g = serial();
    // A descriptor without close-on-exec in the parent must still not leak.
    let (r, w) = std::io::pipe().unwrap();
    let leaky = rustix::io::dup(&r).unwrap();
    assert!(
        !rustix::io::fcntl_getfd(&leaky)
            .unwrap()
            .contains(rustix::io::FdFlags::CLOEXEC)
    );
    let child = ProcessBuilder::new("/bin/true")
        .inherit_fd(OwnedFd::from(w), 7)
        .stdin(Stdio::Null)
        .suspended(true)
        .spawn()
        .unwrap();
    // Stopped before its first instruction: its table is exactly what spawn built.
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{}/fd", child.pid()))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    fds.sort();
    assert_eq!(
        fds,
        [0, 1, 2, 7],
        "leaky fd {} must not be inherited",
        leaky.as_raw_fd()
    );
    let target = std::fs::read_link(format!("/proc/{}/fd/0", child.pid())).unwrap();
    assert_eq!(target.to_str(), Some("/dev/null"));
    let mut child = child;
    child.terminate().unwrap();
    child.wait().unwrap();
    drop(r);
}

#[test]
fn listed_descriptors_are_usable_even_when_numbers_cross() {
    let _g = serial();
    // Two pipes whose write ends swap numbers in the child: the copy-then-dup2 plan must not clobber.
    let (mut r1, w1) = std::io::pipe().unwrap();
    let (mut r2, w2) = std::io::pipe().unwrap();
    let (n1, n2) = (w1.as_raw_fd(), w2.as_raw_fd());
    let mut child = sh(&format!("echo one >&{n2}; echo two >&{n1}"))
        .inherit_fd(OwnedFd::from(w1), n2)
        .inherit_fd(OwnedFd::from(w2), n1)
        .spawn()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let (mut a, mut b) = (String::new(), String::new());
    r1.read_to_string(&mut a).unwrap();
    r2.read_to_string(&mut b).unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("one\n", "two\n"));
}

#[test]
fn colliding_descriptor_numbers_are_refused() {
    let _g = serial();
    let (_r, w) = std::io::pipe().unwrap();
    let err = ProcessBuilder::new("true")
        .inherit_fd(OwnedFd::from(w), 1)
        .spawn()
        .unwrap_err();
    assert!(matches!(err, Error::FdCollision { target: 1 }), "{err}");
    let (_r, w) = std::io::pipe().unwrap();
    let w2 = w.try_clone().unwrap();
    let err = ProcessBuilder::new("true")
        .inherit_fd(OwnedFd::from(w), 9)
        .inherit_fd(OwnedFd::from(w2), 9)
        .spawn()
        .unwrap_err();
    assert!(matches!(err, Error::FdCollision { target: 9 }), "{err}");
}

#[test]
fn failures_leak_no_descriptor_and_leave_no_child() {
    let _g = serial();
    let before = open_fds();
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..20 {
        assert!(
            ProcessBuilder::new("taskloom-no-such-program")
                .spawn()
                .is_err()
        );
        assert!(
            ProcessBuilder::new("true")
                .current_dir(dir.path().join("x"))
                .stdout(Stdio::Piped)
                .spawn()
                .is_err()
        );
        assert!(ProcessBuilder::new("true").env("A=B", "").spawn().is_err());
        let (_r, w) = std::io::pipe().unwrap();
        assert!(
            ProcessBuilder::new("true")
                .inherit_fd(OwnedFd::from(w), 2)
                .spawn()
                .is_err()
        );
        let mut ok = ProcessBuilder::new("true")
            .stdout(Stdio::Piped)
            .stdin(Stdio::Piped)
            .spawn()
            .unwrap();
        ok.wait().unwrap();
    }
    assert_eq!(open_fds(), before);
    // No unreaped child is left behind by the failed spawns.
    // SAFETY: waitpid with WNOHANG and a null status pointer.
    let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
    assert_eq!(r, -1, "a child was left to reap");
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ECHILD)
    );
}

#[test]
fn suspended_start_runs_no_user_code_until_resumed() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let mut child = sh(&format!("echo ran > {}", marker.display()))
        .suspended(true)
        .spawn()
        .unwrap();
    let pid = child.pid();
    assert_eq!(stat_fields(pid)[0], "T", "stopped");
    // The new image is mapped: /proc shows the program, not the parent.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_str().unwrap().ends_with("sh")
            || exe.to_str().unwrap().contains("dash")
            || exe.to_str().unwrap().contains("bash"),
        "{exe:?}"
    );
    assert_eq!(
        child.wait_timeout(Duration::from_millis(200)).unwrap(),
        None
    );
    assert!(!marker.exists(), "ran while suspended");
    // Not traced any more: TracerPid is 0.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("TracerPid:\t0\n"), "{status}");
    child.resume().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
}

#[test]
fn priority_affinity_and_session_apply_before_the_first_instruction() {
    let _g = serial();
    let cpus = CpuSet::current().unwrap();
    let first = cpus.iter().next().unwrap();
    let mut one = CpuSet::new();
    one.insert(first);
    let mut child = ProcessBuilder::new("/bin/true")
        .priority(PriorityClass::BelowNormal)
        .affinity(one)
        .process_group(ProcessGroup::NewSession)
        .suspended(true)
        .spawn()
        .unwrap();
    let pid = child.pid();
    let f = stat_fields(pid);
    assert_eq!(f[16], "10", "nice");
    assert_eq!(f[2], pid.to_string(), "process group");
    assert_eq!(f[3], pid.to_string(), "session");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains(&format!("Cpus_allowed_list:\t{first}\n")),
        "{status}"
    );
    child.terminate().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));

    let err = ProcessBuilder::new("true")
        .affinity(CpuSet::parse_list("1000").unwrap())
        .spawn()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCpuList { .. }), "{err}");
}

#[test]
fn new_process_group() {
    let _g = serial();
    let mut child = ProcessBuilder::new("/bin/true")
        .process_group(ProcessGroup::NewGroup)
        .suspended(true)
        .spawn()
        .unwrap();
    let f = stat_fields(child.pid());
    assert_eq!(f[2], child.pid().to_string());
    assert_ne!(f[3], child.pid().to_string(), "same session as the parent");
    child.terminate().unwrap();
    child.wait().unwrap();
}

#[test]
fn waits_with_timeouts_and_terminates() {
    let _g = serial();
    let mut child = ProcessBuilder::new("sleep").arg("30").spawn().unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    let t = Instant::now();
    assert_eq!(
        child.wait_timeout(Duration::from_millis(100)).unwrap(),
        None
    );
    assert!(t.elapsed() >= Duration::from_millis(100));
    child.terminate().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // The handle is a pidfd: after the end, signals fail cleanly instead of hitting a recycled pid.
    assert!(matches!(
        child.signal(libc::SIGTERM),
        Err(Error::NoSuchProcess { .. })
    ));
    assert_eq!(child.exit_status(), Some(status));
}

#[test]
fn suspend_and_resume_a_running_process() {
    let _g = serial();
    let mut child = ProcessBuilder::new("sleep").arg("30").spawn().unwrap();
    child.suspend().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while stat_fields(child.pid())[0] != "T" {
        assert!(Instant::now() < deadline, "never stopped");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.resume().unwrap();
    while stat_fields(child.pid())[0] == "T" {
        assert!(Instant::now() < deadline, "never resumed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.terminate().unwrap();
    child.wait().unwrap();
}

#[test]
fn wait_for_any_and_all() {
    let _g = serial();
    let mut slow = ProcessBuilder::new("sleep").arg("30").spawn().unwrap();
    let mut fast = sh("exit 4").spawn().unwrap();
    let idx = wait_any(&mut [&mut slow, &mut fast], Some(Duration::from_secs(10))).unwrap();
    assert_eq!(idx, Some(1));
    assert_eq!(fast.exit_status(), Some(ExitStatus::Exited { code: 4 }));
    assert!(!wait_all(&mut [&mut slow, &mut fast], Some(Duration::from_millis(50))).unwrap());
    slow.terminate().unwrap();
    assert!(wait_all(&mut [&mut slow, &mut fast], Some(Duration::from_secs(10))).unwrap());
    assert_eq!(
        slow.exit_status().and_then(|s| s.signal()),
        Some(libc::SIGKILL)
    );
}

#[test]
fn process_times_count_cpu_use() {
    let _g = serial();
    let mut child = sh("i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
        .spawn()
        .unwrap();
    let running = child.times().unwrap();
    assert!(running.exit.is_none());
    child.wait().unwrap();
    let times = child.times().unwrap();
    let exit = times.exit.expect("exit time");
    assert!(exit >= times.creation);
    assert!(
        times.user + times.kernel > Duration::from_millis(10),
        "{times:?}"
    );
    let usage = child.resource_usage().unwrap();
    assert!(usage.peak_rss > 0);
}

#[test]
fn open_process_by_pid() {
    let _g = serial();
    let child = sh("exit 9").stdin(Stdio::Null).spawn().unwrap();
    let mut opened = Process::open(child.pid()).unwrap();
    // We are its parent, so the opened handle reaps it and knows its code.
    assert_eq!(opened.wait().unwrap(), ExitStatus::Exited { code: 9 });
    drop(child);
    assert!(matches!(
        Process::open(i32::MAX - 1),
        Err(Error::NoSuchProcess { .. })
    ));
    assert!(matches!(Process::open(0), Err(Error::NoSuchProcess { .. })));
    let me = Process::open_with_access(std::process::id() as i32, ProcessAccess::all()).unwrap();
    assert_eq!(me.pid(), std::process::id() as i32);
}

#[test]
fn access_rights_are_checked_when_a_handle_is_used() {
    let _g = serial();
    let mut child = ProcessBuilder::new("sleep")
        .arg("30")
        .stdin(Stdio::Null)
        .spawn()
        .unwrap();
    // Opened to wait only: it may wait and ask whether the process lives,
    // never terminate, suspend, signal or read its times.
    let waiter = Process::open(child.pid()).unwrap();
    assert_eq!(waiter.access(), ProcessAccess::SYNCHRONIZE);
    for (what, r) in [
        ("terminate", waiter.terminate()),
        ("suspend", waiter.suspend()),
        ("resume", waiter.resume()),
        ("signal", waiter.signal(libc::SIGTERM)),
    ] {
        let e = r.unwrap_err();
        assert_eq!(
            e.kind(),
            taskloom::ErrorKind::PermissionDenied,
            "{what}: {e}"
        );
        let text = e.to_string();
        assert!(text.contains(&format!("process {}", child.pid())), "{text}");
        assert!(text.contains("opened without PROCESS_"), "{text}");
    }
    assert!(waiter.times().is_err());
    waiter.signal(0).unwrap();
    // Still running: the refused calls did nothing.
    assert_eq!(child.try_wait().unwrap(), None);
    // Opened to suspend: suspend and resume, but not terminate.
    let pauser = Process::open_with_access(child.pid(), ProcessAccess::SUSPEND_RESUME).unwrap();
    pauser.suspend().unwrap();
    pauser.resume().unwrap();
    assert!(pauser.terminate().is_err());
    // Opened to terminate: it may.
    let killer = Process::open_with_access(child.pid(), ProcessAccess::TERMINATE).unwrap();
    killer.terminate().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn open_process_reports_the_kernels_refusal() {
    let _g = serial();
    // Asking to terminate pid 1 must fail with EPERM for an unprivileged user.
    // Root may do it, so as root the check runs in a forked child that first
    // drops to user `nobody` (tests are serialised, so no other thread holds a lock).
    let check = || match Process::open_with_access(1, ProcessAccess::TERMINATE) {
        Err(Error::PermissionDenied { .. }) => 0,
        _ => 1,
    };
    if !rustix::process::geteuid().is_root() {
        assert_eq!(check(), 0);
        return;
    }
    // SAFETY: the child only makes raw syscalls and the check, then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: raw syscalls in the forked child.
        unsafe {
            if libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) != 0 {
                libc::_exit(2);
            }
            libc::_exit(check());
        }
    }
    let mut status = 0;
    // SAFETY: waiting for the child forked above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status));
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "open_with_access(1, TERMINATE) as nobody was not refused"
    );
}

#[test]
fn runs_as_another_user_or_says_it_may_not() {
    let _g = serial();
    let creds = Credentials::for_user("nobody").unwrap();
    assert_eq!(creds.uid, 65534);
    let result = ProcessBuilder::new("id")
        .credentials(creds)
        .stdout(Stdio::Piped)
        .spawn();
    if rustix::process::geteuid().is_root() {
        let mut child = result.unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child.wait().unwrap();
        assert!(out.starts_with("uid=65534"), "{out}");
    } else {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
        assert!(err.to_string().contains("run as uid 65534"), "{err}");
    }
    let err = Credentials::for_user("taskloom-no-such-user").unwrap_err();
    assert!(matches!(err, Error::NoSuchUser { .. }), "{err}");
}

#[test]
fn piped_stdin_reaches_the_child() {
    let _g = serial();
    let mut child = ProcessBuilder::new("tr")
        .args(["a-z", "A-Z"])
        .stdin(Stdio::Piped)
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"shout\n").unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "SHOUT\n");
    assert!(child.wait().unwrap().success());
}

#[test]
fn stdio_to_a_file() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    let file = std::fs::File::create(&path).unwrap();
    let mut child = sh("echo to-file; echo to-err >&2")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "to-file\nto-err\n");
}

#[test]
fn too_many_listed_descriptors_are_refused_before_anything_starts() {
    let _g = serial();
    let mut b = ProcessBuilder::new("true");
    for i in 0..62 {
        let f = std::fs::File::open("/dev/null").unwrap();
        b = b.inherit_fd(OwnedFd::from(f), 10 + i);
    }
    let err = b.spawn().unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                what: "descriptor list",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("at most 61"), "{err}");
}

/// In a new pid namespace (root only): a child with two handles is reaped by
/// the first; a new child is then given the same pid. Waiting on the second
/// handle must not reap the newcomer. Reports `kept` (the newcomer still
/// runs) or what went wrong.
fn second_handle_after_pid_reuse() -> String {
    common::in_pid_namespace(|| {
        let e = |e: Error| e.to_string();
        let mut first = ProcessBuilder::new("true").spawn().map_err(e)?;
        let old = first.pid();
        let mut second = Process::open(old).map_err(e)?;
        first.wait().map_err(e)?;
        common::next_pid_is(old)?;
        let mut newcomer = ProcessBuilder::new("sleep").arg("30").spawn().map_err(e)?;
        if newcomer.pid() != old {
            let _ = newcomer.terminate();
            return Err(format!("pid {old} was not reused ({})", newcomer.pid()));
        }
        let status = second.wait().map_err(e)?;
        let kept = newcomer.try_wait().map_err(e)?.is_none();
        let _ = newcomer.terminate();
        let _ = newcomer.wait();
        Ok(if kept && status == ExitStatus::Unknown {
            "kept".into()
        } else {
            format!("the second handle reaped the newcomer ({status:?})")
        })
    })
}

#[test]
fn a_second_handle_never_reaps_a_recycled_pid() {
    let _g = serial();
    if !rustix::process::geteuid().is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "pid reuse: CI runs as root"
        );
        eprintln!("pid reuse: not run: a pid namespace needs root");
        return;
    }
    assert_eq!(second_handle_after_pid_reuse(), "kept");
}

#[test]
fn affinity_and_priority_are_set_on_every_thread_of_a_running_process() {
    // SetProcessAffinityMask and SetPriorityClass on a running process.
    let mut child = ProcessBuilder::new("sleep").arg("30").spawn().unwrap();
    let p = Process::open_with_access(child.pid(), ProcessAccess::SET_INFORMATION).unwrap();
    let cpus: CpuSet = "0".parse().unwrap();
    p.set_affinity(&cpus).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.pid())).unwrap();
    assert!(
        status.lines().any(|l| l == "Cpus_allowed_list:\t0"),
        "{status}"
    );
    p.set_priority_class(PriorityClass::Idle).unwrap();
    assert_eq!(p.nice().unwrap(), 19);
    assert_eq!(
        stat_fields(child.pid())[16],
        "19",
        "the kernel's nice field (field 19)"
    );
    assert!(p.set_priority_class(PriorityClass::Realtime).is_err());
    // A handle opened only to wait may not change it, as on Windows.
    let waiter = Process::open(child.pid()).unwrap();
    let e = waiter.set_nice(5).unwrap_err();
    assert!(e.to_string().contains("PROCESS_SET_INFORMATION"), "{e}");
    child.terminate().unwrap();
    child.wait().unwrap();
    // A process that has ended is named as such.
    assert!(matches!(p.set_nice(0), Err(Error::NoSuchProcess { .. })));
}

mod pico {
    use std::io::Read;
    use std::time::{Duration, Instant};

    use taskloom::process::pico::{Reply, Syscall, SyscallSet};
    use taskloom::process::{ProcessBuilder, Stdio};

    fn output(b: ProcessBuilder) -> (String, i32, taskloom::process::Process) {
        let mut p = b.stdout(Stdio::Piped).spawn().unwrap();
        let mut out = String::new();
        p.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let code = p.wait().unwrap().code().unwrap_or(-1);
        (out, code, p)
    }

    #[test]
    fn a_provider_answers_in_place_of_the_kernel() {
        // getppid answered with a value the kernel never would: the shell's $PPID.
        let set = SyscallSet::from_names(["getppid"]).unwrap();
        let (out, code, p) = output(
            ProcessBuilder::new("sh")
                .args(["-c", "echo $PPID"])
                .pico(|_: &Syscall| Reply::Return(4242), set),
        );
        assert_eq!((out.as_str(), code), ("4242\n", 0));
        let stats = p.pico_stats().unwrap();
        assert!(stats.calls() >= 1);
        assert_eq!(stats.panics(), 0);
    }

    #[test]
    fn a_provider_that_panics_fails_the_call_and_the_process_goes_on() {
        let set = SyscallSet::from_names(["getppid"]).unwrap();
        let started = Instant::now();
        let (out, code, p) = output(
            ProcessBuilder::new("sh")
                .args(["-c", "echo ppid=$PPID; echo after"])
                .pico(
                    |call: &Syscall| -> Reply { panic!("provider bug on {}", call.name()) },
                    set,
                ),
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not left hanging"
        );
        assert_eq!(code, 0);
        // getppid failed (ENOSYS, returned as -1 by the C library): no parent id.
        assert!(out.ends_with("after\n"), "{out}");
        assert!(
            !out.contains(&format!("ppid={}", std::process::id())),
            "{out}"
        );
        assert_eq!(p.pico_stats().unwrap().panics(), 1, "the panic is reported");
    }

    #[test]
    fn a_provider_reads_path_arguments_and_serves_the_whole_tree() {
        // Fails the open of one path, in sh's child `cat`; counts every open it saw.
        let set = SyscallSet::from_names(["openat"]).unwrap();
        let (out, code, p) = output(
            ProcessBuilder::new("sh")
                .args(["-c", "cat /etc/hostname >/dev/null 2>&1; echo cat=$?"])
                .pico(
                    |call: &Syscall| match call.read_c_string(call.args[1]) {
                        Ok(path) if path == b"/etc/hostname" => Reply::Fail(libc::ENOENT),
                        _ => Reply::Continue,
                    },
                    set,
                ),
        );
        assert_eq!((out.as_str(), code), ("cat=1\n", 0));
        let stats = p.pico_stats().unwrap();
        assert!(
            stats.calls() >= 2,
            "sh's and cat's opens: {}",
            stats.calls()
        );
        // The server ends with the last process of the filter.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !stats.finished() {
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
