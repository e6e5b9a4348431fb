//! `taskloom run` as a supervisor, stopped the ways people stop commands:
//! signals, a second Ctrl-C, `kill -9`, `--timeout`; and its options as a
//! user types them. Every test starts the real binary.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{cgroup_jobs_here, leftovers, not_run, stderr, taskloom};
use taskloom::process::Process;

/// A `taskloom run` started by a test. Dropping it kills it (by its pid: our
/// own child) and deletes its job, so a failing test leaves nothing behind.
struct Running {
    child: Option<Child>,
    job: String,
    lines: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `taskloom run --name JOB ARGS...` with stdout piped.
    fn start(job: &str, args: &[&str]) -> Running {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_taskloom"));
        cmd.args(["run", "--name", job])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A test run from a background job inherits SIGINT and SIGQUIT
        // ignored, and PROGRAM would inherit that from taskloom (ignored
        // dispositions survive exec, and a shell cannot trap a signal it
        // was started ignoring): start from the defaults, as a terminal does.
        // SAFETY: signal(2) only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM] {
                    libc::signal(sig, libc::SIG_DFL);
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start taskloom run");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child: Some(child),
            job: job.to_owned(),
            lines,
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// The next line PROGRAM prints (at most 20 s away).
    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a line from the program")
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of our own unreaped child.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// Waits (at most 20 s) for taskloom to exit: its exit code and stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("taskloom run did not exit within 20 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let out = child.wait_with_output().unwrap();
        (out.status.code(), stderr(&out))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Whatever the test left: terminate and remove the job (a no-op when gone).
        let _ = taskloom(&["job", "delete", &self.job]);
    }
}

fn job_name(what: &str) -> String {
    format!("tl-run-{what}-{}", std::process::id())
}

/// Pidfds to every member of `job` now (`taskloom job show --json`).
fn members(job: &str) -> Vec<Process> {
    let o = taskloom(&["job", "show", job, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["pids"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p.as_i64()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|pid| Process::open(pid as i32).ok())
        .collect()
}

/// Asserts that every process in `procs` ends within `within`.
fn all_gone(procs: &mut [Process], within: Duration) {
    let deadline = Instant::now() + within;
    for p in procs.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            p.wait_timeout(left).unwrap().is_some(),
            "process {} still runs {within:?} after the end",
            p.pid()
        );
    }
}

fn assert_no_leftovers(job: &str) {
    // The guardian may still be removing directories: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = leftovers(job);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cgroups of job {job} left behind:\n{left}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_of_run_kills_every_escaper_and_leaves_no_cgroup() {
    if !cgroup_jobs_here() {
        return;
    }
    let job = job_name("kill9");
    // A setsid daemon, a double-forked child and a fork storm (held to 64 tasks
    // by the job's own limit) while PROGRAM sleeps.
    let script = "setsid sleep 300 </dev/null >/dev/null 2>&1 & \
                  (sleep 300 </dev/null >/dev/null 2>&1 &); \
                  (b() { b | b & }; b) >/dev/null 2>&1; \
                  echo ready; exec sleep 300";
    let run = Running::start(&job, &["--max-processes", "64", "--", "sh", "-c", script]);
    assert_eq!(run.line(), "ready");
    std::thread::sleep(Duration::from_millis(200));
    let mut procs = members(&job);
    assert!(
        procs.len() >= 3,
        "the job holds PROGRAM, the daemon, the double fork and the storm: {} members",
        procs.len()
    );
    run.signal(libc::SIGKILL);
    let (code, _) = run.finish();
    assert_eq!(code, None, "taskloom itself was SIGKILLed");
    all_gone(&mut procs, Duration::from_secs(1));
    assert_no_leftovers(&job);
}

/// PROGRAM traps `name`, so only a forwarded signal makes it exit 42.
fn forwards(signal: i32, name: &str) {
    let job = job_name(&format!("sig-{name}"));
    let script = format!(
        "trap 'exit 42' {name}; setsid sleep 300 </dev/null >/dev/null 2>&1 & \
         echo ready; while :; do sleep 0.05; done"
    );
    let run = Running::start(&job, &["--", "sh", "-c", &script]);
    assert_eq!(run.line(), "ready");
    let mut procs = members(&job);
    run.signal(signal);
    let (code, err) = run.finish();
    assert_eq!(code, Some(42), "PROGRAM got SIG{name} and exited 42: {err}");
    assert!(
        err.contains(&format!("forwarded SIG{name}")),
        "the summary says so: {err}"
    );
    all_gone(&mut procs, Duration::from_secs(1));
    assert_no_leftovers(&job);
}

#[test]
fn run_forwards_term_hup_int_quit_usr1_usr2_to_the_program() {
    if !cgroup_jobs_here() {
        return;
    }
    for (signal, name) in [
        (libc::SIGTERM, "TERM"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGINT, "INT"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
    ] {
        forwards(signal, name);
    }
}

#[test]
fn a_program_killed_by_a_forwarded_signal_gives_128_plus_n() {
    if !cgroup_jobs_here() {
        return;
    }
    let job = job_name("sig-default");
    let run = Running::start(&job, &["--", "sh", "-c", "echo ready; exec sleep 300"]);
    assert_eq!(run.line(), "ready");
    run.signal(libc::SIGTERM);
    let (code, err) = run.finish();
    assert_eq!(code, Some(143), "{err}");
    assert!(err.contains("killed by SIGTERM"), "{err}");
    assert_no_leftovers(&job);
}

#[test]
fn a_second_sigint_terminates_the_job() {
    if !cgroup_jobs_here() {
        return;
    }
    let job = job_name("sigint2");
    // PROGRAM ignores SIGINT, so only the second one (taskloom's) ends it.
    let script = "trap '' INT; setsid sleep 300 </dev/null >/dev/null 2>&1 & \
                  echo ready; while :; do sleep 0.05; done";
    let run = Running::start(&job, &["--", "sh", "-c", script]);
    assert_eq!(run.line(), "ready");
    let mut procs = members(&job);
    run.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    run.signal(libc::SIGINT);
    let (code, err) = run.finish();
    assert_eq!(code, Some(137), "PROGRAM was killed with its job: {err}");
    assert!(err.contains("interrupted twice, job terminated"), "{err}");
    all_gone(&mut procs, Duration::from_secs(1));
    assert_no_leftovers(&job);
}

#[test]
fn timeout_signals_then_terminates_and_exits_124() {
    if !cgroup_jobs_here() {
        return;
    }
    let job = job_name("timeout");
    // PROGRAM ignores SIGTERM: the kill-after terminates the job.
    let script = "trap '' TERM; setsid sleep 300 </dev/null >/dev/null 2>&1 & \
                  echo ready; while :; do sleep 0.05; done";
    let run = Running::start(
        &job,
        &[
            "--json",
            "--timeout",
            "300ms",
            "--kill-after",
            "300ms",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    assert_eq!(run.line(), "ready");
    let mut procs = members(&job);
    let summary = run.line();
    let (code, err) = run.finish();
    assert_eq!(code, Some(124), "{err}");
    let v: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(v["ended_by"], "timeout", "{v}");
    assert_eq!(v["exit_code"], 124, "{v}");
    assert!(
        v["wall_seconds"].as_f64().unwrap() < 4.0,
        "ended by --kill-after 300ms, not the 5 s default: {v}"
    );
    all_gone(&mut procs, Duration::from_secs(1));
    assert_no_leftovers(&job);
    // The human summary says it too.
    let o = taskloom(&["run", "--timeout", "100ms", "--", "sleep", "30"]);
    assert_eq!(o.status.code(), Some(124));
    assert!(stderr(&o).contains("timed out"), "{}", stderr(&o));
}

#[test]
fn run_as_another_user() {
    let nobody = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    let uid = String::from_utf8_lossy(&nobody.stdout).trim().to_owned();
    assert!(!uid.is_empty(), "this machine has a user nobody");
    let o = taskloom(&["run", "--no-job", "--user", "nobody", "--", "id", "-u"]);
    if rustix::process::geteuid().is_root() {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), uid);
    } else {
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains("not permitted"), "{}", stderr(&o));
    }
    let o = taskloom(&["run", "--user", "taskloom-no-such-user", "--", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("user not found: taskloom-no-such-user"),
        "{}",
        stderr(&o)
    );
    let o = taskloom(&["run", "--group", "taskloom-no-such-group", "--", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("group not found: taskloom-no-such-group"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn options_before_program_are_options() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ran");
    let file_s = file.to_str().unwrap();
    // A misspelt option is an error with a suggestion, and nothing runs.
    let o = taskloom(&["run", "--memroy", "1G", "touch", file_s]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("'--memroy'"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--memory"), "{}", stderr(&o));
    assert!(!file.exists(), "nothing ran");
    // A real option before PROGRAM, without `--`, is taken as an option ...
    let o = taskloom(&["run", "--no-job", "--timeout", "10s", "touch", file_s]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(file.exists());
    // ... and everything after PROGRAM belongs to PROGRAM.
    let o = taskloom(&["run", "--no-job", "-q", "echo", "-q", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "-q --json\n");
}

#[test]
fn quiet_prints_no_summary() {
    let o = taskloom(&["run", "-q", "--", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(stderr(&o), "");
}

fn json_run(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let o = taskloom(&all);
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?} {}", o.stdout, stderr(&o)))
}

#[test]
fn process_limits_hit_are_reported() {
    if !cgroup_jobs_here() {
        return;
    }
    // 1.5 s is enforced as 2 s (RLIMIT_CPU counts whole seconds): never less
    // than asked, and the kill is reported as the limit.
    let v = json_run(&[
        "--process-time",
        "1500ms",
        "--",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    assert_eq!(v["exit_code"], 137, "{v}");
    let hits = &v["job"]["limits_hit"];
    assert!(
        hits.as_array().unwrap().iter().any(|h| h == "process-time"),
        "{v}"
    );
    let cpu = v["user_seconds"].as_f64().unwrap() + v["kernel_seconds"].as_f64().unwrap();
    assert!(cpu >= 1.5, "ran its 1.5 s at least: {v}");
    // An address space of one byte: the exec itself fails, with SIGSEGV.
    let v = json_run(&["--process-memory", "1", "--", "true"]);
    assert_eq!(v["status"]["kind"], "signaled", "{v}");
    assert!(
        v["job"]["limits_hit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "process-memory"),
        "{v}"
    );
}

#[test]
fn the_peak_counts_the_program() {
    if !cgroup_jobs_here() {
        return;
    }
    for _ in 0..5 {
        let v = json_run(&["--", "true"]);
        assert!(v["job"]["peak_processes"].as_u64().unwrap() >= 1, "{v}");
        assert!(v["job"]["total_processes"].as_u64().unwrap() >= 1, "{v}");
    }
}

/// `--debug-events`: the event stream on stderr, JSON Lines with --json, the
/// program run to its end with its own exit status.
#[test]
fn debug_events_stream_every_event_and_the_program_runs_to_its_end() {
    let events = |extra: &[&str]| {
        let mut args = vec!["run", "--json", "--debug-events"];
        args.extend_from_slice(extra);
        args.extend(["--", "sh", "-c", "/bin/true & wait; exit 3"]);
        let o = taskloom(&args);
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(summary["exit_code"], 3);
        stderr(&o)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{l}: {e}"))
            })
            .collect::<Vec<_>>()
    };
    let all = events(&[]);
    let kind = |e: &serde_json::Value| e["event"].as_str().unwrap().to_owned();
    assert_eq!(kind(&all[0]), "create_process", "{all:?}");
    assert_eq!(
        all.iter().filter(|e| kind(e) == "create_process").count(),
        2,
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|e| kind(e) == "exec" && e["image"] == "/usr/bin/true"),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|e| kind(e) == "load_dll"
                && e["path"].as_str().is_some_and(|p| p.contains("libc.so"))),
        "{all:?}"
    );
    let last = all.last().unwrap();
    assert_eq!(kind(last), "exit_process");
    assert_eq!(last["code"], 3);
    assert_eq!(last["pid"], all[0]["pid"]);

    let one = events(&["--debug-only-this-process"]);
    assert_eq!(
        one.iter().filter(|e| kind(e) == "create_process").count(),
        1,
        "{one:?}"
    );
    assert!(!one.iter().any(|e| kind(e) == "exec"), "{one:?}");
}

/// `--logon USER --password-stdin`: the program runs as USER, in USER's home,
/// after PAM checked the password; a wrong one starts nothing.
#[cfg(feature = "logon")]
#[test]
fn logon_runs_the_program_as_the_user_after_pam_checks_the_password() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    if !rustix::process::geteuid().is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root: this test must run there"
        );
        eprintln!("logon test not run: making a throwaway user needs root");
        return;
    }
    let id = std::process::id();
    let user = format!("tlrun{}", id % 100_000);
    let service = format!("taskloom-test-run-{id}");
    struct Cleanup(String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("userdel")
                .args(["--remove", &self.0])
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_file(format!("/etc/pam.d/{}", self.1));
        }
    }
    let _cleanup = Cleanup(user.clone(), service.clone());
    std::fs::write(
        format!("/etc/pam.d/{service}"),
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../dist/pam.d/taskloom"
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(
        Command::new("useradd")
            .args(["--create-home", &user])
            .status()
            .unwrap()
            .success()
    );
    let mut c = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(c.stdin.take().unwrap(), "{user}:Run-Pass-42").unwrap();
    assert!(c.wait().unwrap().success());
    let run = |password: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_taskloom"))
            .args([
                "run",
                "-q",
                "--logon",
                &user,
                "--password-stdin",
                "--",
                "sh",
                "-c",
                "id -un; pwd; echo $HOME",
            ])
            .env("TASKLOOM_PAM_SERVICE", &service)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(c.stdin.take().unwrap(), "{password}").unwrap();
        c.wait_with_output().unwrap()
    };
    let ok = run("Run-Pass-42");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let home = format!("/home/{user}");
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        format!("{user}\n{home}\n{home}\n")
    );
    let bad = run("not-it");
    assert!(!bad.status.success());
    assert!(bad.stdout.is_empty(), "nothing started");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains(&format!("logon as {user} refused: wrong password")),
        "{err}"
    );
}

/// The detail of `job caps` row `feature` when the kernel enforces it here.
fn enforced_here(feature: &str) -> Option<String> {
    let o = taskloom(&["job", "caps", "--json"]);
    let caps: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    caps.as_array()?
        .iter()
        .find(|c| c["feature"] == feature && c["enforced"] == true)
        .map(|c| c["detail"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn two_busy_jobs_split_one_cpu_by_their_weights() {
    const TEST: &str = "two_busy_jobs_split_one_cpu_by_their_weights";
    if !cgroup_jobs_here() {
        return;
    }
    if enforced_here("cpu-weight").is_none() {
        return not_run(
            TEST,
            "no cpu controller for jobs here (job caps: cpu-weight)",
        );
    }
    // Both busy on the same CPU at once for 3 s: the weights decide who
    // runs. Each waits for the same go (a file), and both are stopped
    // together, so neither runs alone at either end however slowly the
    // machine starts them.
    let dir = tempfile::tempdir_in(std::env::var("TMPDIR").unwrap_or("/var/tmp".into())).unwrap();
    let go = dir.path().join("go");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.01; done; while :; do :; done",
        go.display()
    );
    let start = |weight: &str| {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(env!("CARGO_BIN_EXE_taskloom"));
        c.args(["run", "--json", "--cpu-weight", weight, "--"])
            .args(["taskset", "-c", "0", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Default dispositions (see `Running::start`): TERM ends the run.
        // SAFETY: signal(2) only, between fork and exec.
        unsafe {
            c.pre_exec(|| {
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                Ok(())
            });
        }
        c.spawn().unwrap()
    };
    let light = start("1");
    let heavy = start("9");
    // Both programs started (each taskloom has a child), then go.
    let deadline = Instant::now() + Duration::from_secs(20);
    for c in [&light, &heavy] {
        let children = format!("/proc/{0}/task/{0}/children", c.id());
        while std::fs::read_to_string(&children)
            .unwrap_or_default()
            .is_empty()
        {
            if Instant::now() > deadline {
                for c in [&light, &heavy] {
                    // SAFETY: kill(2) on our own child's pid; its job dies with it.
                    unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
                }
                panic!("a run did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&go, b"").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    for c in [&light, &heavy] {
        // SAFETY: kill(2) on our own child's pid: forwarded to the program.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    }
    let cpu = |c: Child| {
        let o = c.wait_with_output().unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
        assert_eq!(v["exit_code"], 143, "ended by the forwarded TERM: {v}");
        v["user_seconds"].as_f64().unwrap() + v["kernel_seconds"].as_f64().unwrap()
    };
    let (l, h) = (cpu(light), cpu(heavy));
    let ratio = h / l.max(0.001);
    assert!(
        (4.5..=20.0).contains(&ratio),
        "weights 9 and 1 split one CPU about 9:1: {h:.2} s against {l:.2} s ({ratio:.1}:1)"
    );
}

#[test]
fn a_job_over_its_memory_high_is_slowed_not_killed() {
    const TEST: &str = "a_job_over_its_memory_high_is_slowed_not_killed";
    if !cgroup_jobs_here() {
        return;
    }
    if enforced_here("memory-high").is_none() {
        return not_run(
            TEST,
            "no cgroup2 memory controller for jobs here (job caps: memory-high)",
        );
    }
    // 96 MiB of page cache written under a 16 MiB ceiling: the kernel
    // reclaims it as it goes (and counts each time it had to), and the
    // program ends as it would have. A hard limit this low would not kill
    // it either (page cache is reclaimable), so the count is the point.
    let dir = tempfile::tempdir_in(std::env::var("TMPDIR").unwrap_or("/var/tmp".into())).unwrap();
    let file = dir.path().join("f");
    let script = format!(
        "dd if=/dev/zero of={} bs=1M count=96 2>/dev/null && sync",
        file.display()
    );
    let v = json_run(&["--memory-high", "16M", "--", "sh", "-c", &script]);
    assert_eq!(v["exit_code"], 0, "{v}");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 96 << 20);
    let hits = v["job"]["limits_hit"].as_array().unwrap();
    assert!(hits.iter().any(|h| h == "memory-high"), "{v}");
    assert!(
        !hits.iter().any(|h| h == "memory"),
        "nothing OOM-killed: {v}"
    );
}

#[test]
fn a_run_over_a_soft_limit_ends_as_it_would_and_names_the_limit() {
    if !cgroup_jobs_here() {
        return;
    }
    // A second of CPU time (counted by RLIMIT_CPU, however busy the
    // machine is) against a soft limit of 300 ms: the program runs to its
    // own end, and the summary names the limit.
    let v = json_run(&[
        "--notify-user-time",
        "300ms",
        "--",
        "sh",
        "-c",
        "trap 'exit 0' XCPU; ulimit -S -t 1; while :; do :; done",
    ]);
    assert_eq!(v["exit_code"], 0, "{v}");
    assert!(v["user_seconds"].as_f64().unwrap() > 0.5, "{v}");
    let hits = v["job"]["limits_hit"].as_array().unwrap();
    assert!(hits.iter().any(|h| h == "notify-user-time"), "{v}");
}

#[test]
fn a_member_that_crashes_under_die_on_unhandled_exception_leaves_no_core() {
    if !cgroup_jobs_here() {
        return;
    }
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let pattern = pattern.trim();
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir_in(std::env::var("TMPDIR").unwrap_or("/var/tmp".into())).unwrap();
    // Anyone may write a core here.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let cwd = dir.path().to_str().unwrap();
    // The member raises its core limit as far as it may, then crashes. As
    // root the test runs it as nobody: root may raise any limit ("root
    // can", `job caps`); a member without CAP_SYS_RESOURCE may not.
    // SAFETY: getuid has no preconditions.
    let user: &[&str] = if unsafe { libc::getuid() } == 0 {
        &["--user", "nobody"]
    } else {
        &[]
    };
    let crash = "ulimit -c unlimited 2>/dev/null; kill -SEGV $$";
    let cores = || std::fs::read_dir(dir.path()).unwrap().count();
    let run = |die: bool| {
        let mut a = user.to_vec();
        if die {
            a.push("--die-on-unhandled-exception");
        }
        a.extend(["--cwd", cwd, "--", "sh", "-c", crash]);
        json_run(&a)
    };
    // Without the option, where cores are files in the working directory and
    // the limit may be raised, a core is written: the test can see one.
    let v = run(false);
    assert_eq!(v["exit_code"], 139, "{v}");
    let control = v["status"]["core_dumped"] == true;
    if control && !pattern.starts_with('|') && !pattern.starts_with('/') {
        assert!(cores() > 0, "a core file in {cwd}: {v}");
    }
    for e in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    // With it: the limit cannot be raised, no core is written and no
    // core_pattern handler started, and the crash is an exit by signal.
    let v = run(true);
    assert_eq!(v["exit_code"], 139, "{v}");
    assert_eq!(v["status"]["kind"], "signaled", "{v}");
    assert_eq!(v["status"]["core_dumped"], false, "{v}");
    assert_eq!(cores(), 0, "no core file in {cwd}");
}

/// `taskloom run OPTS -- PROGRAM...`: its exit code, stdout and stderr.
fn run_out(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["run", "-q"];
    all.extend_from_slice(args);
    let o = taskloom(&all);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr(&o),
    )
}

#[test]
fn fault_injection_fails_the_calls_asked_and_no_others() {
    // A failed open, as on a missing file (only the open of that path: the
    // dynamic loader's own opens go through).
    let (code, _, err) = run_out(&[
        "--fail",
        "openat:ENOENT=/etc/hostname",
        "--",
        "cat",
        "/etc/hostname",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("cat: /etc/hostname: No such file or directory"),
        "{err}"
    );
    // The third write only.
    let (code, out, err) = run_out(&[
        "--fail",
        "write:ENOSPC@3",
        "--",
        "sh",
        "-c",
        "echo 1; echo 2; echo 3; echo 4",
    ]);
    assert_eq!(out, "1\n2\n4\n", "{err}");
    assert!(code.is_some(), "{err}");
    // The children of a pico process are served too.
    let dir = tempfile::tempdir_in(std::env::var("TMPDIR").unwrap_or("/var/tmp".into())).unwrap();
    let (code, out, err) = run_out(&[
        "--deny",
        "unlinkat",
        "--cwd",
        dir.path().to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "touch f-$$ && rm f-$$; echo rm=$?; rm -f f-$$ 2>/dev/null; test -e f-$$ && echo kept",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "rm=1\nkept\n", "rm, a child of sh, was refused: {err}");
    // A name that is no system call: a usage error, nothing runs.
    let (code, _, err) = run_out(&["--fail", "opnat", "--", "true"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(err.contains("\"opnat\" is not a system call"), "{err}");
}

#[test]
fn trace_syscalls_prints_each_call_the_provider_saw() {
    let o = taskloom(&[
        "run",
        "--json",
        "--trace-syscalls",
        "--deny",
        "unlinkat",
        "--",
        "rm",
        "-f",
        "/nonexistent-taskloom-trace",
    ]);
    let err = stderr(&o);
    let calls: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let unlink = calls
        .iter()
        .find(|c| c["syscall"] == "unlinkat")
        .unwrap_or_else(|| panic!("no unlinkat seen: {err}"));
    assert_eq!(unlink["path"], "/nonexistent-taskloom-trace", "{unlink}");
    assert_eq!(unlink["reply"], "fail EPERM", "{unlink}");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["exit_code"], 1, "rm failed as refused: {summary}");
}

/// Not a test: the attacker of `a_protected_process_refuses_its_own_user`,
/// when started with `TASKLOOM_ATTACK_PID` set. It tries every way a
/// process of the same user has into another, and prints what each gave.
#[test]
fn attacker() {
    let Ok(pid) = std::env::var("TASKLOOM_ATTACK_PID") else {
        return;
    };
    let pid: i32 = pid.parse().unwrap();
    let errno = |ok: bool| {
        if ok {
            "ok".to_owned()
        } else {
            std::io::Error::last_os_error().to_string()
        }
    };
    let read = |f: &str| match std::fs::read(format!("/proc/{pid}/{f}")) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    let mem = match std::fs::File::open(format!("/proc/{pid}/mem")) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    // SAFETY: ptrace on a pid; on success the attach is undone at once.
    let attached = unsafe {
        libc::ptrace(
            libc::PTRACE_ATTACH,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    } == 0;
    let ptrace = errno(attached);
    if attached {
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: detaching our own fresh attach.
        unsafe {
            libc::ptrace(
                libc::PTRACE_DETACH,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
    }
    let mut byte = [0u8; 1];
    let local = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // Any address: the permission check comes before the address's.
    let remote = libc::iovec {
        iov_base: 0x1000 as *mut libc::c_void,
        iov_len: 1,
    };
    // SAFETY: one local iovec over `byte`; the remote one is only read by the kernel.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    let vm_read = if n >= 0 {
        "ok".to_owned()
    } else {
        let e = std::io::Error::last_os_error();
        // EFAULT: allowed in, nothing mapped there.
        if e.raw_os_error() == Some(libc::EFAULT) {
            "ok".to_owned()
        } else {
            e.to_string()
        }
    };
    println!(
        "{}",
        serde_json::json!({
            "environ": read("environ"),
            "maps": read("maps"),
            "mem": mem,
            "ptrace": ptrace,
            "process_vm_readv": vm_read,
        })
    );
    std::process::exit(0);
}

#[test]
fn a_protected_process_refuses_its_own_user() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    // As root, the protected process and its attacker both run as nobody
    // (root may read anything); otherwise both as this user.
    let user: &[&str] = if root { &["--user", "nobody"] } else { &[] };
    // The attacker is this test binary, where that user may execute it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let attacker_exe = dir.path().join("attacker");
    std::fs::copy(std::env::current_exe().unwrap(), &attacker_exe).unwrap();
    let attack = |pid: i32| -> serde_json::Value {
        let o = Command::new(env!("CARGO_BIN_EXE_taskloom"))
            .args(["run", "-q", "--no-job"])
            .args(user)
            .arg("--")
            .arg(&attacker_exe)
            .args([
                "--exact",
                "attacker",
                "--nocapture",
                "--test-threads=1",
                "--quiet",
            ])
            .env("TASKLOOM_ATTACK_PID", pid.to_string())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        let line = out
            .lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("attacker said nothing: {out} {}", stderr(&o)));
        serde_json::from_str(line).unwrap()
    };
    /// A `taskloom run --no-job` of `sleep 30` and the sleep's pid.
    struct Sleeper(Child, i32);
    impl Drop for Sleeper {
        fn drop(&mut self) {
            // Forwarded to the sleep; taskloom then exits.
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let _ = self.0.wait();
        }
    }
    let start = |extra: &[&str]| -> Sleeper {
        let child = Command::new(env!("CARGO_BIN_EXE_taskloom"))
            .args(["run", "-q", "--no-job"])
            .args(user)
            .args(extra)
            .args(["--", "sleep", "30"])
            .spawn()
            .unwrap();
        // Owned from here, so a failing assertion still ends it.
        let mut sleeper = Sleeper(child, 0);
        let children = format!("/proc/{0}/task/{0}/children", sleeper.0.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = text.split_whitespace().next() {
                sleeper.1 = pid.parse().unwrap();
                return sleeper;
            }
            assert!(Instant::now() < deadline, "no sleep started");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let refused = |v: &serde_json::Value, when: &str| {
        for k in ["environ", "maps", "mem", "ptrace", "process_vm_readv"] {
            let r = v[k].as_str().unwrap();
            assert!(
                r.contains("Permission denied") || r.contains("Operation not permitted"),
                "{when}: {k} was {r}: {v}"
            );
        }
    };
    // Right after start: stopped before its first instruction.
    let p = start(&["--protected", "--suspended-for", "3s"]);
    std::thread::sleep(Duration::from_millis(300));
    refused(&attack(p.1), "suspended, before its first instruction");
    std::thread::sleep(Duration::from_millis(3000));
    refused(&attack(p.1), "running");
    // inspect says what it is, and why.
    let o = taskloom(&["inspect", &p.1.to_string(), "--section", "classification"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Protected: not dumpable"), "{text}");
    if root {
        // Root still can: Linux has no protection from root.
        assert!(std::fs::read(format!("/proc/{}/environ", p.1)).is_ok());
    }
    drop(p);
    // The same attacker against an ordinary process of the same user gets in.
    let q = start(&[]);
    std::thread::sleep(Duration::from_millis(300));
    let v = attack(q.1);
    for k in ["environ", "maps", "mem", "process_vm_readv"] {
        assert_eq!(v[k], "ok", "an ordinary process is open to its user: {v}");
    }
}

#[test]
fn inspect_marks_a_process_whose_calls_go_to_a_provider_as_pico() {
    let mut run = Command::new(env!("CARGO_BIN_EXE_taskloom"))
        .args(["run", "-q", "--no-job", "--trace", "getppid", "--"])
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    let children = format!("/proc/{0}/task/{0}/children", run.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        let text = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(pid) = text.split_whitespace().next() {
            break pid.to_owned();
        }
        if Instant::now() > deadline {
            let _ = run.kill();
            let _ = run.wait();
            panic!("no sleep started");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = taskloom(&["inspect", &pid, "--section", "classification"]);
    // SAFETY: kill(2) on our own child's pid: TERM is forwarded to the sleep.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let _ = run.wait();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!(
            "Pico: its system calls go to a provider: pid {} holds",
            run.id()
        )),
        "{text}"
    );
}

#[test]
fn a_write_bandwidth_limit_holds_a_writer_to_its_rate() {
    const TEST: &str = "a_write_bandwidth_limit_holds_a_writer_to_its_rate";
    if !cgroup_jobs_here() {
        return;
    }
    if enforced_here("io-rate").is_none() {
        return not_run(
            TEST,
            "no cgroup2 io controller for jobs here (job caps: io-rate)",
        );
    }
    let dir = tempfile::tempdir_in(std::env::var("TMPDIR").unwrap_or("/var/tmp".into())).unwrap();
    let d = dir.path().to_str().unwrap();
    // 6 MiB written past the page cache (O_DIRECT) at 2 MiB/s: 3 s, ±20%.
    let v = json_run(&[
        "--io-write-bandwidth",
        &format!("{d}=2M"),
        "--",
        "dd",
        "if=/dev/zero",
        &format!("of={d}/f"),
        "bs=256k",
        "count=24",
        "oflag=direct",
    ]);
    assert_eq!(v["exit_code"], 0, "{v}");
    let wall = v["wall_seconds"].as_f64().unwrap();
    assert!(
        (2.4..=3.6).contains(&wall),
        "6 MiB at 2 MiB/s takes 3 s ±20%, took {wall:.2} s: {v}"
    );
    // A path on no disk is refused, naming it, and nothing runs.
    let o = taskloom(&["run", "--io-write-bandwidth", "/proc=2M", "--", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("no block device"), "{}", stderr(&o));
}
