//! `taskloom run` as a user meets it on either system, with the same
//! assertions on Linux and under Wine: the program's exit code, one JSON
//! summary, a time-out, nothing left behind at the close, and the job
//! dying with a killed `taskloom`.
//!
//! The programs run are this test binary itself, with `TASKLOOM_CLI_CHILD`
//! set: the `child` test then does what the variable says, so nothing here
//! depends on a shell or on programs only one system has.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use taskloom::process::Process;

const CHILD: &str = "TASKLOOM_CLI_CHILD";
/// A value the sleeper carries in its environment, for the test to find it
/// by (see [`sleeper_pid`]).
const MARK: &str = "TASKLOOM_CLI_MARK";

/// What a child does, by the value of [`CHILD`].
#[test]
fn child() {
    let Ok(what) = std::env::var(CHILD) else {
        return; // run as a test: nothing to do
    };
    let (verb, arg) = what.split_once(':').unwrap_or((&what, ""));
    match verb {
        "exit" => std::process::exit(arg.parse().unwrap()),
        "sleep" => {
            std::thread::sleep(Duration::from_secs(arg.parse().unwrap()));
            std::process::exit(0);
        }
        // Starts a sleeper that outlives this process, says its pid, and
        // exits (or, with `stay`, sleeps too).
        "leave" | "stay" => {
            let sleeper = Command::new(std::env::current_exe().unwrap())
                .args(child_args())
                .env(CHILD, "sleep:300")
                .env(MARK, std::env::var(MARK).unwrap_or_default())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            println!("sleeper {}", sleeper.id());
            if verb == "stay" {
                std::thread::sleep(Duration::from_secs(300));
            }
            std::process::exit(0);
        }
        other => panic!("unknown child action {other}"),
    }
}

fn child_args() -> [&'static str; 5] {
    [
        "--exact",
        "child",
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ]
}

/// `taskloom run [opts] -- <this test binary as a child doing what>`.
fn run(opts: &[&str], what: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_taskloom"));
    c.arg("run")
        .args(opts)
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args(child_args())
        .env(CHILD, what);
    c
}

fn json_of(out: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(out);
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON summary in {text:?}"));
    serde_json::from_str(line).unwrap()
}

/// The sleeper's pid as the child saw it (the one on Windows; on Linux a
/// contained job has a pid namespace of its own, see [`marked`]).
fn said_pid(out: &[u8]) -> i32 {
    let text = String::from_utf8_lossy(out);
    text.lines()
        .find_map(|l| l.strip_prefix("sleeper ")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sleeper pid in {text:?}"))
}

/// The sleeper (as this process sees it) whose environment carries `mark`.
fn marked(mark: &str) -> Option<i32> {
    let needle = format!("{MARK}={mark}");
    let sleeper = format!("{CHILD}=sleep:300");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                let vars: Vec<&[u8]> = env.split(|&b| b == 0).collect();
                vars.contains(&needle.as_bytes()) && vars.contains(&sleeper.as_bytes())
            })
        })
}

/// A mark no other test uses.
fn mark(tag: &str) -> String {
    format!("{}-{tag}", std::process::id())
}

/// Whether process `pid` ends within `within` (opened by a handle that
/// survives pid reuse; gone already counts as ended).
fn ends_within(pid: i32, within: Duration) -> bool {
    match Process::open(pid) {
        Ok(mut p) => p.wait_timeout(within).unwrap().is_some(),
        Err(_) => true,
    }
}

#[test]
fn run_passes_the_exit_code_and_one_json_summary() {
    let o = run(&["--json"], "exit:3").output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = json_of(&o.stdout);
    assert_eq!(s["exit_code"], 3);
    assert_eq!(s["status"]["code"], 3);
    assert!(s["job"]["total_processes"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["job"]["killed_at_close"], 0);
}

#[test]
fn a_missing_program_exits_127_and_leaves_no_job() {
    let o = Command::new(env!("CARGO_BIN_EXE_taskloom"))
        .args(["run", "--", "taskloom-no-such-program"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
}

#[test]
fn a_timeout_ends_the_run_with_124() {
    let start = Instant::now();
    let o = run(&["--json", "--timeout", "500ms"], "sleep:60")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(124),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(json_of(&o.stdout)["ended_by"], "timeout");
}

#[test]
fn what_the_program_leaves_behind_is_killed_at_the_close() {
    let m = mark("leave");
    let o = run(&["--json"], "leave").env(MARK, &m).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(json_of(&o.stdout)["job"]["killed_at_close"], 1);
    // Gone when `run` returns (Linux: no process carries its mark any more).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let gone = if cfg!(windows) {
            ends_within(said_pid(&o.stdout), Duration::ZERO)
        } else {
            marked(&m).is_none()
        };
        if gone {
            break;
        }
        assert!(Instant::now() < deadline, "the sleeper survived the run");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn killing_taskloom_kills_the_job() {
    let m = mark("stay");
    let mut tl = run(&[], "stay")
        .env(MARK, &m)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(tl.stdout.take().unwrap()).lines();
    let said = loop {
        let line = lines.next().expect("the child said its sleeper").unwrap();
        if let Some(p) = line.strip_prefix("sleeper ") {
            break p.trim().parse::<i32>().unwrap();
        }
    };
    let pid = if cfg!(windows) {
        said
    } else {
        marked(&m).expect("the sleeper, found by its mark")
    };
    assert!(
        !ends_within(pid, Duration::from_millis(200)),
        "the sleeper ended early"
    );
    // SIGKILL on Linux, TerminateProcess on Windows: taskloom cannot act.
    tl.kill().unwrap();
    tl.wait().unwrap();
    assert!(
        ends_within(pid, Duration::from_secs(10)),
        "sleeper {pid} outlived a killed taskloom"
    );
}

#[test]
fn completions_and_man_pages_come_from_the_cli_itself() {
    let tl = env!("CARGO_BIN_EXE_taskloom");
    let v = Command::new(tl).arg("--version").output().unwrap();
    let v = String::from_utf8_lossy(&v.stdout);
    assert!(
        v.starts_with(&format!("taskloom {}", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    assert!(v.contains("features: "), "{v}");
    for (shell, sign) in [
        ("bash", "_taskloom()"),
        ("zsh", "#compdef taskloom"),
        ("fish", "complete -c taskloom"),
    ] {
        let o = Command::new(tl)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(o.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&o.stdout);
        assert!(script.contains(sign), "{shell}: {script:.200}");
        assert!(script.contains("run"), "{shell} completes no subcommand");
    }
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(tl)
        .arg("manpages")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for page in ["taskloom.1", "taskloom-run.1", "taskloom-completions.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.contains(".TH"), "{page} is not a man page");
    }
    let run = std::fs::read_to_string(dir.path().join("taskloom-run.1")).unwrap();
    assert!(run.contains("timeout"), "the run page lists its options");
}
