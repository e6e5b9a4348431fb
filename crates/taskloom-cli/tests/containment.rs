//! Attacks on containment, through the binary: ways out of a job, ways in
//! for other users, and state that must not be trusted. Each case is a
//! hole a review found; every test cleans up what it made, also on failure.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{cgroup_jobs_here, leftovers, stderr, taskloom};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A test that needs root (a second identity, another user's files) says so:
/// it fails under CI, which runs as root, and is reported as not run elsewhere.
fn root_here(test: &str) -> bool {
    if !is_root() {
        assert!(std::env::var_os("CI").is_none(), "{test}: CI runs as root");
        eprintln!("{test}: not run: needs root");
    }
    is_root()
}

/// Deletes the named jobs when dropped (terminating what is left).
struct Jobs(Vec<String>);

impl Drop for Jobs {
    fn drop(&mut self) {
        for j in self.0.iter().rev() {
            let _ = taskloom(&["job", "delete", j]);
        }
    }
}

/// A `sleep` this test started, killed and reaped on drop.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("300")
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn members(job: &str) -> Vec<i64> {
    let o = taskloom(&["job", "show", job, "--json"]);
    assert!(o.status.success(), "job show {job}: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect()
}

fn name(tag: &str) -> String {
    format!("tl-c{}-{tag}", std::process::id())
}

#[test]
fn assignment_never_takes_a_process_out_of_its_job() {
    if !cgroup_jobs_here() {
        return;
    }
    let (p, j) = (name("p"), name("j"));
    let inner = format!("{p}/inner");
    let _jobs = Jobs(vec![p.clone(), j.clone()]);
    for (job, parent) in [(&p, None), (&j, None), (&"inner".to_string(), Some(&p))] {
        let mut args = vec!["job", "create", job.as_str()];
        if let Some(parent) = parent {
            args.extend(["--parent", parent.as_str()]);
        }
        let o = taskloom(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let s = Sleeper::start();
    let pid: i64 = s.pid().parse().unwrap();
    let o = taskloom(&["job", "assign", &p, &s.pid()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Into an unrelated job: refused, and the process stays in p.
    let o = taskloom(&["job", "assign", &j, &s.pid()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("never leaves its job"),
        "{}",
        stderr(&o)
    );
    assert!(members(&p).contains(&pid));
    assert!(!members(&j).contains(&pid));
    // Into a job nested in p: allowed, and it is still in p.
    let o = taskloom(&["job", "assign", &inner, &s.pid()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(members(&inner).contains(&pid));
    assert!(members(&p).contains(&pid));
    // Back to p from inside it: it stays where it is (still in p).
    let o = taskloom(&["job", "assign", &p, &s.pid()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(members(&inner).contains(&pid));
}

#[test]
fn bad_pids_get_clear_errors_and_a_report_per_pid() {
    if !cgroup_jobs_here() {
        return;
    }
    let j = name("pids");
    let _jobs = Jobs(vec![j.clone()]);
    assert!(taskloom(&["job", "create", &j]).status.success());
    // A zombie: our child that has exited and that we do not reap yet.
    let mut zombie = Command::new("true").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let good = Sleeper::start();
    let zpid = zombie.id().to_string();
    let o = taskloom(&["job", "assign", &j, "0", &zpid, "2", &good.pid(), "--json"]);
    assert_eq!(o.status.code(), Some(1), "some were not assigned");
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4, "one row per pid: {rows:?}");
    let err = |i: usize| rows[i]["error"].as_str().unwrap_or("").to_owned();
    assert!(err(0).contains("0 is not a process id"), "{}", err(0));
    assert!(err(1).contains("zombie"), "{}", err(1));
    assert!(err(2).contains("kernel thread"), "{}", err(2));
    assert_eq!(rows[3]["assigned"], true, "{rows:?}");
    assert!(members(&j).contains(&good.pid().parse().unwrap()));
    assert!(!members(&j).contains(&(std::process::id() as i64)));
    zombie.wait().unwrap();
}

#[test]
fn names_that_are_control_files_are_refused_and_make_nothing() {
    if !cgroup_jobs_here() {
        return;
    }
    for bad in [
        "cpu.shares",
        "memory.limit_in_bytes",
        "cpu.stat",
        "pids.max",
    ] {
        let o = taskloom(&["job", "create", bad]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("clashes with a cgroup control file"),
            "{bad}: {}",
            stderr(&o)
        );
    }
    // Nothing was made: no taskloom directory holds such a name.
    let o = Command::new("find")
        .args([
            "/sys/fs/cgroup",
            "-maxdepth",
            "7",
            "-type",
            "d",
            "-path",
            "*/taskloom/cpu.*",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
}

#[test]
fn a_member_makes_jobs_inside_its_own_job() {
    if !cgroup_jobs_here() {
        return;
    }
    let outer = name("outer");
    let _jobs = Jobs(vec![outer.clone()]);
    let tl = env!("CARGO_BIN_EXE_taskloom");
    // Inside `outer`, a job of the same name with limits, and a run inside the run.
    let script = format!(
        "{tl} job create {outer} --max-processes 5 --memory 32M >/dev/null && \
         {tl} run -q --max-processes 7 -- true && \
         {tl} job delete {outer} 2>/dev/null; echo done"
    );
    let o = taskloom(&["run", "--name", &outer, "--", "sh", "-c", &script]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "done\n");
    // The outer job's limits were never touched, and nothing is left anywhere.
    let o = taskloom(&["job", "create", &outer]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = taskloom(&["job", "show", &outer, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["limits"]["active_processes"],
        serde_json::Value::Null,
        "{v}"
    );
    assert_eq!(v["limits"]["job_memory"], serde_json::Value::Null, "{v}");
    assert!(taskloom(&["job", "delete", &outer]).status.success());
    assert_eq!(leftovers(&outer), "");
}

#[test]
fn modes_are_permission_bits_and_others_never_rewrite_limits() {
    if !cgroup_jobs_here() || !root_here("modes") {
        return;
    }
    let j = name("mode");
    let _jobs = Jobs(vec![j.clone()]);
    let o = taskloom(&["job", "create", &j, "--mode", "7777"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("permission bits"), "{}", stderr(&o));
    assert_eq!(leftovers(&j), "", "a refused mode makes nothing");
    let o = taskloom(&["job", "create", &j, "--mode", "777"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // As nobody: the job can be seen, but its limits cannot be changed.
    let o = as_user("nobody", &["job", "set", &j, "--max-processes", "3"]);
    assert!(!o.status.success(), "nobody changed the limits");
    assert!(stderr(&o).contains("not permitted"), "{}", stderr(&o));
    let o = as_user("nobody", &["job", "show", &j, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = taskloom(&["job", "show", &j, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["limits"]["active_processes"],
        serde_json::Value::Null,
        "{v}"
    );
}

/// Runs taskloom as `user` (root only), with `env` added.
fn as_user_env(user: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let gid = Command::new("id").args(["-g", user]).output().unwrap();
    let gid = String::from_utf8_lossy(&gid.stdout).trim().to_owned();
    let mut c = Command::new("setpriv");
    c.args(["--reuid", user, "--regid", &gid, "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_taskloom"))
        .args(args)
        .env_remove("XDG_RUNTIME_DIR");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run setpriv")
}

fn as_user(user: &str, args: &[&str]) -> Output {
    as_user_env(user, &[], args)
}

/// A throwaway user, removed (with anything of theirs in /tmp) on drop.
struct User {
    name: String,
    uid: u32,
}

impl User {
    fn new(tag: &str) -> User {
        let name = format!("tl{tag}{}", std::process::id() % 100_000);
        let o = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                &name,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "useradd: {}", stderr(&o));
        let id = Command::new("id").args(["-u", &name]).output().unwrap();
        let uid = String::from_utf8_lossy(&id.stdout).trim().parse().unwrap();
        User { name, uid }
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(format!("/tmp/taskloom-{}", self.uid));
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

#[test]
fn a_squatted_tmp_state_directory_is_never_trusted() {
    if !root_here("tmp squat") {
        return;
    }
    let (attacker, victim) = (User::new("a"), User::new("v"));
    // The attacker makes the victim's state directory first and plants a
    // job whose group is 1 (kill(-1): every process of the victim).
    let squat = format!("/tmp/taskloom-{}", victim.uid);
    let plant =
        format!("mkdir -p {squat}/jobs/x && chmod -R 777 {squat} && echo 1 > {squat}/jobs/x/pgid");
    let o = Command::new("setpriv")
        .args([
            "--reuid",
            &attacker.name,
            "--regid",
            &attacker.name,
            "--clear-groups",
        ])
        .args(["sh", "-c", &plant])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // A process of the victim's that must survive.
    let mut bystander = Command::new("setpriv")
        .args([
            "--reuid",
            &victim.name,
            "--regid",
            &victim.name,
            "--clear-groups",
        ])
        .args(["sleep", "300"])
        .spawn()
        .unwrap();
    let pg = [("TASKLOOM_JOB_BACKEND", "process-group")];
    let o = as_user_env(&victim.name, &pg, &["job", "terminate", "x"]);
    assert!(
        !o.status.success(),
        "terminate trusted a squatted directory"
    );
    assert!(
        stderr(&o).contains(&format!("belongs to uid {}", attacker.uid)),
        "{}",
        stderr(&o)
    );
    let o = as_user_env(&victim.name, &pg, &["job", "create", "y"]);
    assert!(
        !o.status.success(),
        "a job was made in a squatted directory"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "the victim's process was killed"
    );
    let _ = bystander.kill();
    let _ = bystander.wait();
}
