//! The API both systems share, with the same assertions on each: processes
//! (arguments, environment, directory, exit codes, waits, terminate, a
//! suspended start) and jobs (membership from the first instruction,
//! accounting, opening by name, limits read back, nesting, terminate with a
//! code, kill-on-close when the owner dies). Run on Linux with the rest,
//! and under Wine for Windows (`cargo test --target x86_64-pc-windows-gnu`).
//!
//! The children are this test binary itself, started with
//! `TASKLOOM_PORTABLE_CHILD` set: the `child` test then does what the
//! variable says and exits, so nothing here depends on a shell or on
//! programs only one system has.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[path = "../common/not_run.rs"]
mod not_run;

use not_run::not_run;
use taskloom::job::{Job, JobEvent, JobLimits, NotificationLimits, SoftLimit};
use taskloom::process::{Process, ProcessBuilder, Stdio};

const CHILD: &str = "TASKLOOM_PORTABLE_CHILD";

/// What a child does, by the value of [`CHILD`].
#[test]
fn child() {
    let Ok(what) = std::env::var(CHILD) else {
        return; // run as a test: nothing to do (the other tests start it as a child)
    };
    let (verb, arg) = what.split_once(':').unwrap_or((&what, ""));
    match verb {
        "exit" => std::process::exit(arg.parse().unwrap()),
        "sleep" => {
            std::thread::sleep(Duration::from_secs(arg.parse().unwrap()));
            std::process::exit(0);
        }
        "spin" => {
            // spin:MS: busy in user mode for MS milliseconds, then exits 0.
            let end = Instant::now() + Duration::from_millis(arg.parse().unwrap());
            let mut x = 0u64;
            while Instant::now() < end {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            std::process::exit(0);
        }
        "nap" => {
            // nap:MS:CODE: sleeps MS milliseconds, then exits with CODE.
            let (ms, code) = arg.split_once(':').unwrap();
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            std::process::exit(code.parse().unwrap());
        }
        "args" => {
            // The arguments after `--`, one per line, as the C runtime split them.
            let args: Vec<String> = std::env::args().skip_while(|a| a != "--").skip(1).collect();
            print!("{}", serde_json::to_string(&args).unwrap());
            std::process::exit(0);
        }
        "env" => {
            print!(
                "{}",
                std::env::var(arg).unwrap_or_else(|_| "<unset>".into())
            );
            std::process::exit(0);
        }
        "cwd" => {
            print!("{}", std::env::current_dir().unwrap().display());
            std::process::exit(0);
        }
        "own-job" => {
            // Makes a kill-on-close job, starts a sleeper in it, says its
            // pid, and sleeps until killed.
            let job = Job::builder().kill_on_close(true).create().unwrap();
            let sleeper = job.spawn(child_builder("sleep:300")).unwrap();
            println!("{}", sleeper.pid());
            std::thread::sleep(Duration::from_secs(300));
            std::process::exit(0);
        }
        other => panic!("unknown child action {other}"),
    }
}

/// A builder for this binary as a child doing `what`.
fn child_builder(what: &str) -> ProcessBuilder {
    ProcessBuilder::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child",
            "--nocapture",
            "--test-threads=1",
            "--quiet",
        ])
        .env(CHILD, what)
}

fn output_of(b: ProcessBuilder) -> (String, i32) {
    let mut p = b.stdout(Stdio::Piped).spawn().unwrap();
    let mut out = String::new();
    p.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let code = p.wait().unwrap().code().unwrap();
    // libtest prints its own lines around the child's output: keep the child's.
    let out = out
        .lines()
        .filter(|l| {
            !l.starts_with("running ") && !l.starts_with("test result") && !l.trim().is_empty()
        })
        .collect::<Vec<_>>()
        .join("\n");
    (out, code)
}

fn name(tag: &str) -> String {
    format!("tp{}-{tag}", std::process::id())
}

#[test]
fn the_exit_code_comes_back() {
    let mut p = child_builder("exit:3").spawn().unwrap();
    let status = p.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    assert!(!status.success());
    assert_eq!(p.exit_status(), Some(status));
}

#[test]
fn arguments_arrive_exactly() {
    let args = [
        "plain",
        "two words",
        "",
        r#"say "hi""#,
        r"C:\dir\",
        r"a\\b",
        "tab\there",
        "ünï",
    ];
    let b = child_builder("args").arg("--").args(args);
    let (out, code) = output_of(b);
    assert_eq!(code, 0);
    let back: Vec<String> =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(back, args);
}

#[test]
fn environment_and_directory_reach_the_child() {
    let (out, _) =
        output_of(child_builder("env:TL_PORTABLE_VAR").env("TL_PORTABLE_VAR", "a value"));
    assert_eq!(out.trim(), "a value");
    let (out, _) = output_of(child_builder("env:TL_PORTABLE_GONE").env_remove("TL_PORTABLE_GONE"));
    assert_eq!(out.trim(), "<unset>");
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = output_of(child_builder("cwd").current_dir(dir.path()));
    let want = dir.path().canonicalize().unwrap();
    let got = PathBuf::from(out.trim()).canonicalize().unwrap();
    assert_eq!(got, want);
}

#[test]
fn a_missing_program_is_a_typed_error() {
    let e = ProcessBuilder::new("taskloom-no-such-program-here")
        .spawn()
        .unwrap_err();
    assert_eq!(e.kind(), taskloom::ErrorKind::NotFound, "{e}");
}

#[test]
fn waits_time_out_and_terminate_ends_the_process() {
    let mut p = child_builder("sleep:60").spawn().unwrap();
    assert_eq!(p.wait_timeout(Duration::from_millis(100)).unwrap(), None);
    assert_eq!(p.try_wait().unwrap(), None);
    p.terminate().unwrap();
    let status = p
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("ended");
    assert!(!status.success(), "{status}");
    // Terminating what has ended is not an error.
    p.terminate().unwrap();
}

#[test]
fn a_suspended_process_runs_only_once_resumed() {
    let mut p = child_builder("exit:0").suspended(true).spawn().unwrap();
    assert_eq!(
        p.wait_timeout(Duration::from_millis(500)).unwrap(),
        None,
        "it ran while suspended"
    );
    p.resume().unwrap();
    let status = p
        .wait_timeout(Duration::from_secs(30))
        .unwrap()
        .expect("ended once resumed");
    assert!(status.success(), "{status}");
}

#[test]
fn wait_any_names_the_first_to_end() {
    let mut slow = child_builder("sleep:60").spawn().unwrap();
    let mut quick = child_builder("exit:0").spawn().unwrap();
    let i =
        taskloom::process::wait_any(&mut [&mut slow, &mut quick], Some(Duration::from_secs(30)))
            .unwrap();
    assert_eq!(i, Some(1));
    slow.terminate().unwrap();
    slow.wait().unwrap();
}

/// Deletes a job when dropped, also when a test fails.
struct Cleanup(Option<Job>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            let _ = job.delete();
        }
    }
}

fn jobs_here() -> bool {
    let ok = Job::capabilities()
        .iter()
        .any(|c| c.feature == "membership" && c.enforced);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to make jobs"
        );
        eprintln!("job tests not run: no jobs here");
    }
    ok
}

#[test]
fn a_spawned_process_is_a_member_and_is_counted() {
    if !jobs_here() {
        return;
    }
    let job = Cleanup(Some(Job::create(Some(&name("member"))).unwrap()));
    let j = job.0.as_ref().unwrap();
    let mut p = j.spawn(child_builder("sleep:60")).unwrap();
    assert!(j.contains(p.pid()).unwrap());
    assert_eq!(j.pids().unwrap(), vec![p.pid()]);
    let info = j.info().unwrap();
    assert_eq!(info.active_processes, 1);
    // Another handle, by name, sees the same member.
    let other = Job::open(&j.name()).unwrap();
    assert_eq!(other.pids().unwrap(), vec![p.pid()]);
    // Terminate with a code: the member reports it, the job is signalled.
    assert_eq!(j.terminate_with(7).unwrap(), 1);
    assert_eq!(p.wait().unwrap().code(), Some(7));
    assert!(
        j.wait(Duration::from_secs(5)).unwrap(),
        "signalled once terminated"
    );
    assert!(j.pids().unwrap().is_empty());
}

#[test]
#[cfg_attr(
    taskloom_wine,
    ignore = "Wine does not read job limits back (QueryInformationJobObject returns them zeroed)"
)]
fn limits_are_read_back_by_another_handle() {
    if !jobs_here() {
        return;
    }
    let limits = JobLimits {
        active_processes: Some(8),
        job_memory: Some(256 << 20),
        process_memory: Some(128 << 20),
        breakaway_ok: true,
        die_on_unhandled_exception: true,
        ..Default::default()
    };
    let job = Cleanup(Some(
        Job::builder()
            .name(&name("limits"))
            .limits(limits.clone())
            .create()
            .unwrap(),
    ));
    let j = job.0.as_ref().unwrap();
    let other = Job::open(&j.name()).unwrap();
    let back = other.limits();
    assert_eq!(back.active_processes, limits.active_processes);
    assert_eq!(back.job_memory, limits.job_memory);
    assert_eq!(back.process_memory, limits.process_memory);
    assert!(back.breakaway_ok);
    assert!(back.die_on_unhandled_exception);
}

#[test]
fn limits_no_one_means_are_refused_and_make_nothing() {
    let zero = JobLimits {
        active_processes: Some(0),
        ..Default::default()
    };
    let e = Job::builder()
        .name(&name("zero"))
        .limits(zero)
        .create()
        .unwrap_err();
    assert_eq!(e.kind(), taskloom::ErrorKind::InvalidInput, "{e}");
    assert!(Job::open(&name("zero")).is_err());
    // A CPU weight is Windows' 1 to 9.
    for w in [0, 10] {
        let e = Job::builder()
            .name(&name("weight"))
            .limits(JobLimits {
                cpu_weight: Some(w),
                ..Default::default()
            })
            .create()
            .unwrap_err();
        assert_eq!(e.kind(), taskloom::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("1 to 9"), "{e}");
        assert!(Job::open(&name("weight")).is_err());
    }
}

#[test]
#[cfg_attr(
    taskloom_wine,
    ignore = "Wine refuses CPU rate control (JobObjectCpuRateControlInformation: ERROR_INVALID_PARAMETER)"
)]
fn a_cpu_weight_is_taken_where_the_system_has_one() {
    if !jobs_here() {
        return;
    }
    let caps = Job::capabilities();
    let weight = caps.iter().find(|c| c.feature == "cpu-weight").unwrap();
    let made = Job::builder()
        .name(&name("w9"))
        .limits(JobLimits {
            cpu_weight: Some(9),
            ..Default::default()
        })
        .create();
    match made {
        Ok(job) => {
            assert!(weight.enforced, "{weight:?}");
            assert_eq!(job.limits().cpu_weight, Some(9));
            job.delete().unwrap();
        }
        Err(e) => assert!(!weight.enforced, "{e}: but job caps says {weight:?}"),
    }
}

#[test]
fn a_memory_floor_or_ceiling_is_cgroup2s_alone() {
    if !jobs_here() {
        return;
    }
    // A floor or ceiling below a hard memory limit: Linux's cgroup2 alone
    // has them; elsewhere a typed refusal that names them, and no job.
    let caps = Job::capabilities();
    let high = caps.iter().find(|c| c.feature == "memory-high").unwrap();
    let made = Job::builder()
        .name(&name("high"))
        .limits(JobLimits {
            memory_high: Some(64 << 20),
            ..Default::default()
        })
        .create();
    match made {
        Ok(job) => {
            assert!(high.enforced, "{high:?}");
            job.delete().unwrap();
        }
        Err(e) => {
            assert!(!high.enforced, "{e}: but job caps says {high:?}");
            assert!(e.to_string().contains("memory"), "{e}");
            assert!(Job::open(&name("high")).is_err(), "nothing left behind");
        }
    }
}

#[test]
fn a_nested_jobs_members_are_in_its_parent() {
    if !jobs_here() {
        return;
    }
    let outer = Cleanup(Some(Job::create(Some(&name("outer"))).unwrap()));
    let o = outer.0.as_ref().unwrap();
    let inner = Job::builder().name("inner").create_in(o).unwrap();
    let mut p = inner.spawn(child_builder("sleep:60")).unwrap();
    assert!(inner.contains(p.pid()).unwrap());
    assert!(
        o.contains(p.pid()).unwrap(),
        "a nested job's member is in its parent"
    );
    o.terminate().unwrap();
    p.wait_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("ended with the outer job");
    drop(inner);
}

#[test]
fn a_watcher_sees_members_come_and_go_and_the_job_empty() {
    if !jobs_here() {
        return;
    }
    let mut job = Cleanup(Some(Job::create(Some(&name("watch"))).unwrap()));
    let j = job.0.as_ref().unwrap();
    let mut watcher = j.watch(Duration::from_millis(20)).unwrap();
    // Long enough to be seen by a scan where Linux scans (no connector).
    let mut a = j.spawn(child_builder("nap:700:3")).unwrap();
    let mut b = j.spawn(child_builder("nap:700:0")).unwrap();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !events.contains(&JobEvent::JobEmpty) {
        assert!(Instant::now() < deadline, "no JobEmpty; saw {events:?}");
        events.extend(watcher.poll_once().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in [a.pid(), b.pid()] {
        let new = events
            .iter()
            .position(|e| *e == JobEvent::NewProcess { pid: p });
        let exit = events
            .iter()
            .position(|e| matches!(e, JobEvent::ProcessExited { pid, .. } if *pid == p));
        assert!(
            new.is_some() && exit > new,
            "{p}: new, then exited: {events:?}"
        );
    }
    let counts = watcher.counts();
    assert_eq!(counts.total_processes, 2, "{events:?}");
    assert_eq!(counts.exited_processes, 2, "{events:?}");
    if counts.exact {
        // Each exit came with its status: the code-3 one is the abnormal one.
        let status_of = |p: i32| {
            events.iter().find_map(|e| match e {
                JobEvent::ProcessExited { pid, status } if *pid == p => *status,
                _ => None,
            })
        };
        assert_eq!(status_of(a.pid()).and_then(|s| s.code()), Some(3));
        assert_eq!(status_of(b.pid()).and_then(|s| s.code()), Some(0));
        assert_eq!(counts.abnormal_exits, 1);
    }
    assert_eq!(a.wait().unwrap().code(), Some(3));
    assert!(b.wait().unwrap().success());
    // Once the job is gone, the watcher ends. (On Windows a process object,
    // even of an ended process, keeps its job object: they go first.)
    drop((a, b));
    job.0.take().unwrap().delete().unwrap();
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for e in watcher {
            e.unwrap();
        }
        let _ = done.send(());
    });
    ended
        .recv_timeout(Duration::from_secs(10))
        .expect("the watcher ends once the job is gone");
}

#[test]
#[cfg_attr(
    taskloom_wine,
    ignore = "Wine refuses soft limits (JobObjectNotificationLimitInformation: ERROR_INVALID_PARAMETER)"
)]
fn a_soft_limit_notifies_once_and_stops_nothing() {
    if !jobs_here() {
        return;
    }
    let limits = JobLimits {
        notify: NotificationLimits {
            user_time: Some(Duration::from_millis(100)),
            ..Default::default()
        },
        ..Default::default()
    };
    let job = Cleanup(Some(
        Job::builder()
            .name(&name("soft"))
            .limits(limits)
            .create()
            .unwrap(),
    ));
    let j = job.0.as_ref().unwrap();
    let mut watcher = j.watch(Duration::from_millis(20)).unwrap();
    let mut p = j.spawn(child_builder("spin:1500")).unwrap();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !events
        .iter()
        .any(|e| matches!(e, JobEvent::ProcessExited { pid, .. } if *pid == p.pid()))
    {
        assert!(
            Instant::now() < deadline,
            "the spinner did not end: {events:?}"
        );
        events.extend(watcher.poll_once().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(p.wait().unwrap().code(), Some(0), "it ran to its own end");
    let notes: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            JobEvent::NotificationLimit(v) => Some(*v),
            _ => None,
        })
        .collect();
    assert_eq!(notes.len(), 1, "once: {events:?}");
    assert_eq!(notes[0].limit, SoftLimit::UserTime);
    assert_eq!(notes[0].limit_value, 100);
    assert!(notes[0].value > 100, "{notes:?}");
    let info = j.info().unwrap();
    assert_eq!(info.violations.len(), 1, "{info:?}");
    assert_eq!(info.violations[0].limit, SoftLimit::UserTime);
}

#[test]
fn a_kill_on_close_job_dies_with_its_owner() {
    if !jobs_here() {
        return;
    }
    let mut owner = child_builder("own-job")
        .stdout(Stdio::Piped)
        .spawn()
        .unwrap();
    let mut out = owner.stdout.take().unwrap();
    // The sleeper's pid, on the first line the child prints (libtest's own lines first).
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = loop {
        let mut buf = [0u8; 256];
        let n = out.read(&mut buf).unwrap();
        assert!(
            n > 0 || Instant::now() < deadline,
            "the owner said nothing: {text:?}"
        );
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(pid) = text.lines().find_map(|l| l.trim().parse::<i32>().ok()) {
            break pid;
        }
    };
    let mut sleeper = Process::open(pid).unwrap();
    assert_eq!(
        sleeper.wait_timeout(Duration::from_millis(200)).unwrap(),
        None
    );
    owner.terminate().unwrap();
    owner.wait().unwrap();
    // The owner's handle closed with it: the job kills the sleeper.
    assert!(
        sleeper
            .wait_timeout(Duration::from_secs(10))
            .unwrap()
            .is_some(),
        "the sleeper outlived its job's owner"
    );
}

#[test]
#[cfg_attr(taskloom_wine, ignore = "Wine does not enforce ActiveProcessLimit")]
fn a_job_at_its_process_limit_refuses_another_member() {
    if !jobs_here() {
        return;
    }
    // Windows charges an assignment; Linux charges a fork, so a spawn into
    // the job counts where the child is forked into it (cgroup2's
    // CLONE_INTO_CGROUP), not where it moves itself in (cgroup v1 pids).
    // A job kept in a systemd scope is entered, from outside the scope, by
    // the manager's move: not charged either.
    let caps = Job::capabilities();
    let limit = caps.iter().find(|c| c.feature == "active-processes");
    let scoped = caps
        .iter()
        .any(|c| c.feature == "membership" && c.detail.contains("a transient scope per job"));
    let charged = cfg!(windows)
        || (!scoped && limit.is_some_and(|c| c.enforced && c.detail.starts_with("cgroup2")));
    if !charged {
        let why = if scoped {
            "jobs are systemd scopes here, entered by the manager's move".to_owned()
        } else {
            limit.map_or("no process limit".to_owned(), |c| c.detail.clone())
        };
        not_run(
            "a_job_at_its_process_limit_refuses_another_member",
            &format!("a spawn into a job is not charged to its process limit here ({why})"),
        );
        return;
    }
    let limits = JobLimits {
        active_processes: Some(1),
        ..Default::default()
    };
    let job = Cleanup(Some(
        Job::builder()
            .name(&name("limit"))
            .limits(limits)
            .create()
            .unwrap(),
    ));
    let j = job.0.as_ref().unwrap();
    let mut first = j.spawn(child_builder("sleep:60")).unwrap();
    let second = j.spawn(child_builder("exit:0"));
    assert!(
        second.is_err(),
        "a second member joined a job limited to one"
    );
    assert_eq!(
        j.pids().unwrap(),
        vec![first.pid()],
        "the refused spawn left nothing"
    );
    j.terminate().unwrap();
    first.wait().unwrap();
}

mod threads {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    use taskloom::thread::{ThreadBuilder, ThreadPriority, wait_any};

    #[test]
    fn a_thread_returns_its_exit_code() {
        let t = ThreadBuilder::new()
            .name("worker")
            .priority(ThreadPriority::BelowNormal)
            .spawn(|| 7)
            .unwrap();
        assert!(t.tid() > 0);
        assert_eq!(t.join().unwrap(), 7);
    }

    #[test]
    fn a_suspended_thread_runs_only_once_resumed() {
        let ran = Arc::new(AtomicBool::new(false));
        let r = Arc::clone(&ran);
        let t = ThreadBuilder::new()
            .suspended(true)
            .spawn(move || {
                r.store(true, Ordering::SeqCst);
                0
            })
            .unwrap();
        assert!(!t.wait_timeout(Duration::from_millis(200)));
        assert!(!ran.load(Ordering::SeqCst), "it ran while suspended");
        assert_eq!(t.resume().unwrap(), 1, "created suspended: a count of one");
        assert_eq!(t.join().unwrap(), 0);
        assert!(ran.load(Ordering::SeqCst));
    }

    #[test]
    fn suspend_counts_nest_and_a_suspended_thread_stands_still() {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let (s, c) = (Arc::clone(&stop), Arc::clone(&count));
        let t = ThreadBuilder::new()
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                3
            })
            .unwrap();
        while count.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(t.suspend().unwrap(), 0);
        assert_eq!(t.suspend().unwrap(), 1);
        let ctx = t.context().unwrap();
        assert_ne!(ctx.rsp, 0, "a suspended thread's stack pointer");
        let at = count.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(count.load(Ordering::Relaxed), at, "a suspended thread ran");
        assert_eq!(t.resume().unwrap(), 2);
        assert_eq!(t.resume().unwrap(), 1);
        stop.store(true, Ordering::Relaxed);
        assert_eq!(t.join().unwrap(), 3);
    }

    #[test]
    fn a_panic_in_the_thread_is_raised_by_join() {
        let t = ThreadBuilder::new()
            .spawn(|| panic!("in the thread"))
            .unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.join()));
        assert!(r.is_err());
    }

    #[test]
    fn wait_any_names_the_thread_that_ended() {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let slow = ThreadBuilder::new()
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                0
            })
            .unwrap();
        let quick = ThreadBuilder::new().spawn(|| 1).unwrap();
        assert_eq!(
            wait_any(&[&slow, &quick], Some(Duration::from_secs(30))),
            Some(1)
        );
        assert_eq!(quick.exit_code(), 1);
        stop.store(true, Ordering::Relaxed);
        slow.join().unwrap();
    }
}

#[test]
fn a_std_command_becomes_a_builder() {
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "child",
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ])
    .env(CHILD, "env:TL_FROM_STD")
    .env("TL_FROM_STD", "carried over");
    let (out, code) = output_of(ProcessBuilder::from(c));
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "carried over");
}

/// Conformance (Wine's `thread.c`): a thread that has ended cannot be
/// suspended, and resuming it answers 0; many times over, as a race shows.
#[test]
fn an_ended_thread_cannot_be_suspended_and_resumes_to_zero() {
    use taskloom::thread::ThreadBuilder;
    for _ in 0..50 {
        let t = ThreadBuilder::new().spawn(|| 5).unwrap();
        assert!(t.wait_timeout(Duration::from_secs(10)));
        assert!(t.suspend().is_err(), "an ended thread was suspended");
        assert_eq!(t.resume().unwrap(), 0);
        assert_eq!(t.join().unwrap(), 5);
    }
}

/// Conformance (Wine's `thread.c`): a running thread's exit code is
/// `STILL_ACTIVE` (259), then the code its function returned.
#[test]
fn a_running_threads_exit_code_is_still_active() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use taskloom::thread::{STILL_ACTIVE, ThreadBuilder};
    let go = Arc::new(AtomicBool::new(false));
    let g = Arc::clone(&go);
    let t = ThreadBuilder::new()
        .spawn(move || {
            while !g.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            42
        })
        .unwrap();
    assert_eq!(t.exit_code(), STILL_ACTIVE);
    assert!(!t.has_ended());
    go.store(true, Ordering::Release);
    assert!(t.wait_timeout(Duration::from_secs(10)));
    assert_eq!(t.exit_code(), 42);
    assert_eq!(t.join().unwrap(), 42);
}

/// Conformance (Wine's job tests): terminating an empty job succeeds and
/// signals it; assigning a process to the job it is in already succeeds
/// and changes nothing.
#[test]
fn an_empty_job_terminates_and_a_second_assignment_is_no_error() {
    if !jobs_here() {
        return;
    }
    let job = Cleanup(Some(Job::create(Some(&name("empty"))).unwrap()));
    let j = job.0.as_ref().unwrap();
    assert!(
        !j.wait(Duration::ZERO).unwrap(),
        "a fresh job is not signalled"
    );
    assert_eq!(j.terminate().unwrap(), 0);
    assert!(
        j.wait(Duration::from_secs(5)).unwrap(),
        "signalled once terminated"
    );
    let again = Cleanup(Some(Job::create(Some(&name("again"))).unwrap()));
    let a = again.0.as_ref().unwrap();
    let mut p = a.spawn(child_builder("sleep:60")).unwrap();
    let opened = Process::open_with_access(
        p.pid(),
        taskloom::process::ProcessAccess::TERMINATE
            | taskloom::process::ProcessAccess::SET_INFORMATION,
    )
    .unwrap();
    a.assign(&opened).unwrap();
    assert_eq!(a.pids().unwrap(), vec![p.pid()]);
    a.terminate().unwrap();
    p.wait().unwrap();
}
