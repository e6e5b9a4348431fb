//! The degraded job backend (no writable cgroup), forced with
//! `TASKLOOM_JOB_BACKEND=process-group` so that it runs on every machine.
//! Each test sets the variable before its first job call; tests are
//! serialised, and every job is deleted even when a test fails.
#![cfg(target_os = "linux")]

use std::io::Read;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use taskloom::Error;

#[path = "../common/mod.rs"]
mod common;
use common::wait_until;
use taskloom::job::{self, Job, JobLimits};
use taskloom::process::{ProcessBuilder, Stdio};

/// Holds the test lock; on drop removes this run's (empty) state directories.
struct Setup(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Drop for Setup {
    fn drop(&mut self) {
        let base = std::env::temp_dir().join(format!("taskloom-pg-test-{}", std::process::id()));
        let _ = std::fs::remove_dir(base.join("taskloom-jobs"));
        let _ = std::fs::remove_dir(base);
    }
}

fn setup() -> Setup {
    static LOCK: Mutex<()> = Mutex::new(());
    let g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: tests in this binary are serialised by LOCK; nothing reads the environment concurrently.
    unsafe {
        std::env::set_var("TASKLOOM_JOB_BACKEND", "process-group");
        std::env::set_var(
            "XDG_RUNTIME_DIR",
            std::env::temp_dir().join(format!("taskloom-pg-test-{}", std::process::id())),
        );
    }
    Setup(g)
}

struct Cleanup(Option<Job>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(j) = self.0.take() {
            let _ = j.delete();
        }
    }
}

fn name(tag: &str) -> String {
    format!("pg{}-{tag}", std::process::id())
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let st = s[s.rfind(')').unwrap() + 2..].chars().next().unwrap();
        st != 'Z' && st != 'X'
    })
}

#[test]
fn caps_say_what_is_not_enforced() {
    let _g = setup();
    let caps = Job::capabilities();
    let get = |f: &str| caps.iter().find(|c| c.feature == f).unwrap().clone();
    assert!(get("membership").enforced);
    assert!(
        get("membership").detail.contains("setsid"),
        "says how a process escapes"
    );
    assert!(!get("job-memory").enforced);
    assert!(!get("active-processes").enforced);
    assert!(get("kill-on-close").enforced);
    let err = Job::builder()
        .name(&name("memlimit"))
        .limits(JobLimits {
            job_memory: Some(1 << 30),
            ..Default::default()
        })
        .create()
        .unwrap_err();
    assert!(err.to_string().contains("needs cgroups"), "{err}");
    assert!(
        !Job::list().unwrap().contains(&name("memlimit")),
        "a refused job leaves nothing behind"
    );
}

#[test]
fn spawn_members_double_forks_terminate() {
    let _g = setup();
    let job = Cleanup(Some(Job::create(Some(&name("basic"))).unwrap()));
    let j = job.0.as_ref().unwrap();
    let mut a = j.spawn(ProcessBuilder::new("sleep").arg("60")).unwrap();
    let mut b = j
        .spawn(
            ProcessBuilder::new("sh")
                .arg("-c")
                .arg("(sleep 60 &) ; sleep 60")
                .stdout(Stdio::Null),
        )
        .unwrap();
    wait_until("three members", Duration::from_secs(5), || {
        j.pids().unwrap().len() >= 4
    });
    let members = j.pids().unwrap();
    assert!(members.contains(&a.pid()) && members.contains(&b.pid()));
    assert_eq!(
        job::job_of(b.pid()).unwrap().as_deref(),
        Some(name("basic").as_str())
    );
    assert!(
        Job::open(&name("basic"))
            .unwrap()
            .contains(a.pid())
            .unwrap()
    );
    let killed = j.terminate().unwrap();
    assert!(killed >= 4, "{killed}");
    assert!(members.iter().all(|&p| !alive(p)));
    a.wait().unwrap();
    b.wait().unwrap();
    // After a terminate, new members start a new group.
    let mut c = j
        .spawn(ProcessBuilder::new("sh").arg("-c").arg("exit 4"))
        .unwrap();
    assert_eq!(c.wait().unwrap().code(), Some(4));
}

#[test]
fn per_process_limits_still_apply() {
    let _g = setup();
    let limits = JobLimits {
        process_memory: Some(256 << 20),
        ..Default::default()
    };
    let job = Cleanup(Some(
        Job::builder()
            .name(&name("limits"))
            .limits(limits)
            .create()
            .unwrap(),
    ));
    let j = job.0.as_ref().unwrap();
    let mut p = j
        .spawn(
            ProcessBuilder::new("cat")
                .arg("/proc/self/limits")
                .stdout(Stdio::Piped),
        )
        .unwrap();
    let mut out = String::new();
    p.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    p.wait().unwrap();
    assert!(
        out.lines()
            .any(|l| l.starts_with("Max address space") && l.contains("268435456")),
        "{out}"
    );
}

#[test]
fn kill_on_close_without_cgroups() {
    let _g = setup();
    common::kill_on_close_waits_for_every_handle(&name("koc"));
}

#[test]
fn assigning_a_stranger_is_refused_clearly() {
    let _g = setup();
    let job = Cleanup(Some(Job::create(Some(&name("assign"))).unwrap()));
    let j = job.0.as_ref().unwrap();
    let mut p = ProcessBuilder::new("sleep").arg("30").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(20)); // it has called execve by now
    let err = j.assign(&p).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert!(
        err.to_string().contains("spawn it into the job instead"),
        "{err}"
    );
    p.terminate().unwrap();
    p.wait().unwrap();
}

#[test]
fn breakaway_leaves_the_group_only_when_allowed() {
    let _g = setup();
    for (tag, allowed) in [("strict", false), ("open", true)] {
        let limits = JobLimits {
            breakaway_ok: allowed,
            ..Default::default()
        };
        let job = Cleanup(Some(
            Job::builder()
                .name(&name(tag))
                .limits(limits)
                .create()
                .unwrap(),
        ));
        let out = common::breakaway_from(&job.0.as_ref().unwrap().name());
        if allowed {
            assert_eq!(out, "ok -", "{tag}");
        } else {
            assert!(
                out.starts_with("err not permitted to break away"),
                "{tag}: {out}"
            );
        }
    }
}
