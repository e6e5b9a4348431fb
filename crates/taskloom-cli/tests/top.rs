//! `taskloom top` as a user meets it: the real binary in a terminal (tmux),
//! driven by keys, read off the screen.
#![cfg(target_os = "linux")]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{jobs_here, taskloom};

fn tmux(args: &[&str]) -> String {
    let o = Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux is needed for this test (.ci/run installs it: apt-get install tmux)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What the test made, removed also when it fails.
struct Cleanup {
    session: String,
    probe: Option<Child>,
    job: Option<String>,
    dir: PathBuf,
}

impl Cleanup {
    /// A tmux session and a temp directory of this test's, `tag`ged, both
    /// removed on drop.
    fn new(tag: &str) -> Cleanup {
        let id = std::process::id();
        let dir = std::env::temp_dir().join(format!("taskloom-{tag}-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        Cleanup {
            session: format!("taskloom-{tag}-{id}"),
            probe: None,
            job: None,
            dir,
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.session]);
        if let Some(p) = &mut self.probe {
            let _ = p.kill();
            let _ = p.wait();
        }
        if let Some(j) = &self.job {
            taskloom(&["job", "delete", j]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until the screen satisfies `ok`; the screen when it does.
fn screen_until(session: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = tmux(&["capture-pane", "-p", "-t", session]);
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}; the screen:\n{s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn top_shows_filters_shows_jobs_and_restores_the_terminal() {
    let id = std::process::id();
    let mut guard = Cleanup::new("top");
    let dir = guard.dir.clone();
    // A process with a name no other has: a copy of sleep.
    let probe_name = format!("tlprobe{}", id % 100_000);
    let probe = dir.join(&probe_name);
    std::fs::copy("/bin/sleep", &probe).unwrap();
    guard.probe = Some(Command::new(&probe).arg("120").spawn().unwrap());
    let job = format!("tltop{id}");
    let jobs = jobs_here();
    if jobs {
        let o = taskloom(&["job", "create", &job, "--max-processes", "7"]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        guard.job = Some(job.clone());
    }
    let cmd = format!(
        "{} top --interval 200ms; echo TOP-EXITED $?; sleep 60",
        env!("CARGO_BIN_EXE_taskloom")
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &guard.session,
        "-x",
        "120",
        "-y",
        "40",
        &cmd,
    ]);
    let session = guard.session.clone();
    screen_until(&session, "top did not start", |s| {
        s.contains("taskloom top")
    });
    assert_eq!(
        tmux(&["display", "-p", "-t", &session, "#{alternate_on}"]).trim(),
        "1"
    );

    // Filtering finds the probe, and only what matches.
    tmux(&["send-keys", "-t", &session, "/"]);
    tmux(&["send-keys", "-t", &session, "-l", &probe_name]);
    tmux(&["send-keys", "-t", &session, "Enter"]);
    let s = screen_until(&session, "the filter did not find the probe", |s| {
        s.contains(&format!("filter: {probe_name}")) && s.contains(&format!("{probe_name} 120"))
    });
    let pid = guard.probe.as_ref().unwrap().id().to_string();
    assert!(s.lines().any(|l| l.starts_with(&pid)), "{s}");
    assert!(
        !s.contains("top --interval"),
        "the filter let others through:\n{s}"
    );

    // The job view shows the job with its limit.
    if jobs {
        tmux(&["send-keys", "-t", &session, "Escape", "Tab"]);
        screen_until(&session, "the job view did not show the job", |s| {
            s.lines().any(|l| l.contains(&job) && l.contains("0/7"))
        });
    }

    // q quits with 0 and leaves the terminal as it was.
    tmux(&["send-keys", "-t", &session, "q"]);
    let s = screen_until(&session, "top did not quit", |s| s.contains("TOP-EXITED"));
    assert!(s.contains("TOP-EXITED 0"), "{s}");
    assert!(
        !s.contains("taskloom top"),
        "the view is still on screen:\n{s}"
    );
    assert_eq!(
        tmux(&["display", "-p", "-t", &session, "#{alternate_on}"]).trim(),
        "0"
    );
}

#[test]
fn top_is_restored_on_sigterm_and_refuses_a_pipe() {
    // Not a terminal: a clear error, not escape codes.
    let o = taskloom(&["top"]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    assert!(
        common::stderr(&o).contains("needs a terminal"),
        "{}",
        common::stderr(&o)
    );
    // JSON Lines instead, one object a refresh.
    let o = taskloom(&["top", "--json", "-n", "2", "--interval", "100ms"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.lines().count(), 2);
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let me = std::process::id() as i64;
        assert!(
            v["processes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["pid"] == me)
        );
    }

    let guard = Cleanup::new("top-term");
    let (session, dir) = (guard.session.clone(), guard.dir.clone());
    let pidfile = dir.join("pid");
    let cmd = format!(
        "sh -c 'echo $$ > {}; exec {} top'; echo TOP-EXITED $?; sleep 60",
        pidfile.display(),
        env!("CARGO_BIN_EXE_taskloom")
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "80",
        "-y",
        "24",
        &cmd,
    ]);
    screen_until(&session, "top did not start", |s| {
        s.contains("taskloom top")
    });
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The pid is our grandchild's, which runs `top` now (exec kept it).
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let s = screen_until(&session, "top did not end on SIGTERM", |s| {
        s.contains("TOP-EXITED")
    });
    assert!(!s.contains("taskloom top"), "{s}");
    assert_eq!(
        tmux(&["display", "-p", "-t", &session, "#{alternate_on}"]).trim(),
        "0"
    );
}

#[test]
fn job_caps_wraps_its_explanations_to_the_terminal() {
    // `job caps` on an 80-column terminal: the HOW column wraps under itself
    // (words longer than a line stay whole); piped, each feature is one line.
    let guard = Cleanup::new("caps");
    let (session, dir) = (guard.session.clone(), guard.dir.clone());
    let done = dir.join("done");
    let cmd = format!(
        "{} job caps; touch {}; sleep 30",
        env!("CARGO_BIN_EXE_taskloom"),
        done.display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "80",
        // Tall enough for every row, wrapped: the header must stay on screen.
        "-y",
        "250",
        &cmd,
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done.exists() {
        assert!(Instant::now() < deadline, "job caps did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    let screen = tmux(&["capture-pane", "-p", "-t", &session, "-J"]);
    let piped = taskloom(&["job", "caps"]);
    let piped = String::from_utf8_lossy(&piped.stdout).into_owned();
    let features = piped.lines().count();
    let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > features, "nothing wrapped:\n{screen}");
    let indent = lines[0].find("HOW").unwrap();
    for l in &lines[1..] {
        let (lead, text) = l.split_at(indent.min(l.len()));
        // A continuation line starts with blanks up to the HOW column.
        if lead.trim().is_empty() {
            assert!(!text.starts_with(' '), "{l:?}");
        }
        // Whole words only: a line is longer than the terminal only for one word.
        if l.chars().count() > 80 {
            assert!(
                !text.trim().contains(' '),
                "{l:?} is longer than 80 columns"
            );
        }
    }
}
