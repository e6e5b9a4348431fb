//! What the CLI test binaries share: running the binary, reading its output,
//! and looking for what a job left behind.
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn taskloom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taskloom"))
        .args(args)
        .output()
        .expect("run taskloom")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn jobs_here() -> bool {
    let o = taskloom(&["job", "caps", "--json"]);
    let caps: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ok = caps
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["feature"] == "membership" && c["enforced"] == true);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to create jobs (run as root)"
        );
        eprintln!("job tests not run: no writable cgroup here");
    }
    ok
}

/// Whether jobs are cgroups here (membership no process can leave), not the
/// process-group fallback. Under CI (root) they must be.
pub fn cgroup_jobs_here() -> bool {
    let o = taskloom(&["job", "caps", "--json"]);
    let caps: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ok = caps.as_array().unwrap().iter().any(|c| {
        c["feature"] == "membership"
            && c["enforced"] == true
            && c["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("cgroup"))
    });
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to create cgroup jobs (run as root)"
        );
        eprintln!("test not run: jobs here are process groups, not cgroups");
    }
    ok
}

/// Every directory named `name` below `/sys/fs/cgroup` (in every hierarchy),
/// the job's systemd scope (`taskloom-<name>.scope`) where systemd holds
/// jobs, and its pid namespace init's cgroup (`@init.<name>`): what a job
/// of that name left behind.
pub fn leftovers(name: &str) -> String {
    let scope = format!("taskloom-{name}.scope");
    let init = format!("@init.{name}");
    let o = Command::new("find")
        .args([
            "/sys/fs/cgroup",
            "-maxdepth",
            "9",
            "-type",
            "d",
            "(",
            "-name",
            name,
            "-o",
            "-name",
            &scope,
            "-o",
            "-name",
            &init,
            ")",
        ])
        .output()
        .expect("run find");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[path = "../../../taskloom/tests/common/not_run.rs"]
mod not_run;
#[allow(unused_imports)] // not every test binary calls it
pub use not_run::not_run;
