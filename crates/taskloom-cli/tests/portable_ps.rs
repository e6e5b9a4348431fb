//! `taskloom ps` as a user meets it on either system, with the same
//! assertions on Linux and under Wine: a child this test starts is listed
//! with its exact arguments, its parent, its owner (the same as this
//! process's), threads and memory, in the JSON and in the table.
//!
//! The child is this test binary itself, with `TASKLOOM_PS_CHILD` set: the
//! `child` test then sleeps, so nothing depends on programs only one system
//! has.

use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD: &str = "TASKLOOM_PS_CHILD";

/// Sleeps when started as the child.
#[test]
fn child() {
    if std::env::var_os(CHILD).is_some() {
        std::thread::sleep(Duration::from_secs(60));
        std::process::exit(0);
    }
}

/// Kills the child even when an assertion fails.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The libtest arguments that run only `child`, then arguments with
/// blanks, quotes, backslashes and non-ASCII text (libtest takes them as
/// extra filters that match nothing).
fn child_args() -> Vec<String> {
    [
        "--exact",
        "child",
        "--nocapture",
        "--test-threads=1",
        "--quiet",
        "a b",
        "q\"uote",
        "back\\slash\\",
        "ünï",
    ]
    .map(String::from)
    .to_vec()
}

fn ps(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_taskloom"))
        .arg("ps")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "taskloom ps {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn ps_lists_a_child_with_its_exact_arguments_parent_and_owner() {
    let child = Kill(
        Command::new(std::env::current_exe().unwrap())
            .args(child_args())
            .env(CHILD, "1")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id() as i64;
    // The child must have started (its command line is set by then).
    std::thread::sleep(Duration::from_millis(500));
    let out = ps(&["--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = |p: i64| rows.iter().find(|r| r["pid"] == p).cloned();
    let me = row(i64::from(std::process::id())).expect("this process is listed");
    let c = row(pid).unwrap_or_else(|| panic!("child {pid} not listed"));
    assert_eq!(c["ppid"], i64::from(std::process::id()));
    let cmdline: Vec<String> = c["cmdline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(cmdline[1..], child_args()[..], "{c}");
    let exe = std::env::current_exe().unwrap();
    let exe_name = exe.file_name().unwrap().to_str().unwrap();
    assert!(cmdline[0].ends_with(exe_name), "{cmdline:?}");
    assert!(c["threads"].as_i64().unwrap() >= 1, "{c}");
    assert!(c["rss"].as_u64().unwrap() > 0, "{c}");
    // The owner, as each system names it, is this process's.
    let owner = if cfg!(windows) { "user" } else { "uid" };
    assert!(!c[owner].is_null(), "{c}");
    assert_eq!(c[owner], me[owner]);

    // The table: a header, and the child's row with its pid and arguments.
    let text = String::from_utf8(ps(&[]).stdout).unwrap();
    let header = text.lines().next().unwrap();
    for col in ["PID", "PPID", "USER", "THR", "RSS", "TIME", "COMMAND"] {
        assert!(header.contains(col), "{header}");
    }
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&pid.to_string()))
        .unwrap_or_else(|| panic!("no row for {pid} in\n{text}"));
    assert!(line.contains("q\"uote") && line.contains("ünï"), "{line}");
}
