//! Attacks on containment, through the binary: ways out of a job, ways in
//! for other users, and state that must not be trusted. Each case is a
//! hole a review found; every test cleans up what it made, also on failure.
#![cfg(target_os = "linux")]

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
    let (p, q, j) = (name("p"), name("q"), name("j"));
    let inner = format!("{p}/inner");
    // The job a member is nested in is its innermost one (p/inner, below).
    let nested = format!("{inner}/{j}");
    let _jobs = Jobs(vec![p.clone(), q.clone(), j.clone()]);
    for (job, parent) in [(&p, None), (&q, None), (&"inner".to_string(), Some(&p))] {
        let mut args = vec!["job", "create", job.as_str()];
        if let Some(parent) = parent {
            args.extend(["--parent", parent.as_str()]);
        }
        let o = taskloom(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = taskloom(&["job", "create", &j, "--max-processes", "7", "--mode", "750"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = Sleeper::start();
    let pid: i64 = s.pid().parse().unwrap();
    let o = taskloom(&["job", "assign", &p, &s.pid()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Into an unrelated job that has processes: refused, and the process
    // stays in p.
    let other = Sleeper::start();
    assert!(
        taskloom(&["job", "assign", &q, &other.pid()])
            .status
            .success()
    );
    let o = taskloom(&["job", "assign", &q, &s.pid()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("never leaves its job") && stderr(&o).contains("has processes"),
        "{}",
        stderr(&o)
    );
    assert!(members(&p).contains(&pid));
    assert!(!members(&q).contains(&pid));
    // Into a job nested in p: allowed, and it is still in p.
    let o = taskloom(&["job", "assign", &inner, &s.pid()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(members(&inner).contains(&pid));
    assert!(members(&p).contains(&pid));
    // Back to p from inside it: it stays where it is (still in p).
    let o = taskloom(&["job", "assign", &p, &s.pid()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(members(&inner).contains(&pid));
    // Into an empty top-level job: as on Windows, that job is nested in the
    // process's innermost job first (with its limits and mode), and the
    // process is in all three.
    let o = taskloom(&["job", "assign", &j, &s.pid(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows[0]["job"], nested.as_str(), "{rows}");
    assert!(
        stderr(&o).contains(&format!("it is job {nested} now")),
        "{}",
        stderr(&o)
    );
    assert!(members(&nested).contains(&pid));
    assert!(members(&inner).contains(&pid));
    assert!(members(&p).contains(&pid));
    let shown = taskloom(&["job", "show", &nested, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["limits"]["active_processes"], 7, "{shown}");
    let o = taskloom(&["job", "show", &j]);
    assert!(
        !o.status.success() && stderr(&o).contains("no such job"),
        "{}",
        stderr(&o)
    );
    let list = String::from_utf8_lossy(&taskloom(&["job", "list"]).stdout).into_owned();
    let names: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&nested.as_str()), "{list}");
    assert!(!names.contains(&j.as_str()), "{list}");
    // Its directories are where the job is now (the old ones are gone),
    // secured as it was made (group may read, others nothing).
    let dirs = leftovers(&j);
    assert!(!dirs.trim().is_empty());
    for dir in dirs.lines() {
        assert!(dir.contains("/inner/"), "left at its old place: {dir}");
        let mode = std::fs::metadata(dir).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o750,
            "{dir}"
        );
    }
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
    let state = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].trim_start().chars().next())
    };
    // Until it has ended (an emulated guest may take a while to run `true`).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while state(zombie.id()) != Some('Z') && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(state(zombie.id()), Some('Z'), "`true` did not end");
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

/// The `job caps` row for containment: (enforced, detail).
fn containment_caps() -> (bool, String) {
    let o = taskloom(&["job", "caps", "--json"]);
    let caps: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = caps
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["feature"] == "containment")
        .expect("job caps has a containment row")
        .clone();
    (
        row["enforced"].as_bool().unwrap(),
        row["detail"].as_str().unwrap().to_owned(),
    )
}

/// The cgroup2 directory of this test process (where a member that got
/// out would go back to: its creator's cgroup).
fn own_cgroup2_dir() -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mounts
        .lines()
        .find(|l| l.contains(" - cgroup2 "))?
        .split(' ')
        .nth(4)?
        .to_owned();
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(std::path::Path::new(&mount).join(path.trim_start_matches('/')))
}

#[test]
fn members_cannot_leave_their_job_nor_change_its_limits() {
    if !cgroup_jobs_here() {
        return;
    }
    let (enforced, detail) = containment_caps();
    let job = name("stay");
    let _jobs = Jobs(vec![job.clone()]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let back = own_cgroup2_dir().unwrap();
    // The member tries what an escaper does: move itself back into its
    // creator's cgroup, and lift its job's limits (its job's directory is
    // found by name; on a delegated subtree it owns those files). Only
    // where the kernel is said to refuse: elsewhere it would succeed, in
    // cgroups of the machine's.
    let attack = if enforced {
        format!(
            "echo $$ > '{back}/cgroup.procs' 2>/dev/null && echo moved > {d}/moved
             for j in $(find /sys/fs/cgroup -maxdepth 9 -type d -name {job} 2>/dev/null); do
               echo max > $j/pids.max 2>/dev/null && echo $j >> {d}/rewrote
             done",
            back = back.display()
        )
    } else {
        String::new()
    };
    let script = format!("echo $$ > {d}/pid\n{attack}\ntouch {d}/done; exec sleep 60");
    let run = Command::new(env!("CARGO_BIN_EXE_taskloom"))
        .args(["run", "--json", "--max-processes", "40", "--name", &job])
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&dir.path().join("done"));
    // Contained, the member's `$$` is its pid namespace's: the job names it as we see it.
    let pid: i32 = if enforced {
        members(&job)[0] as i32
    } else {
        std::fs::read_to_string(dir.path().join("pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let moved = dir.path().join("moved").exists();
    let rewrote = std::fs::read_to_string(dir.path().join("rewrote")).unwrap_or_default();
    let show = taskloom(&["job", "show", &job, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap_or_default();
    // End the run: terminating the job ends the member (if it is still in it).
    let _ = taskloom(&["job", "terminate", &job]);
    if moved && !cgroup.contains(job.as_str()) {
        // It got out: the job cannot end it; this test started it, so it does.
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid).unwrap(),
            rustix::process::Signal::KILL,
        );
    }
    let out = run.wait_with_output().unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["job"]["contained"], enforced,
        "run says contained = {}, job caps says {enforced}: {detail}",
        summary["job"]["contained"]
    );
    if enforced {
        assert!(
            cgroup.contains(job.as_str()),
            "the member left its job (now in {cgroup:?}; moved: {moved})"
        );
        assert!(
            !moved,
            "the member's write into {} succeeded",
            back.display()
        );
        assert_eq!(rewrote, "", "the member rewrote its job's pids.max");
        assert_eq!(shown["limits"]["active_processes"], 40, "{shown}");
    } else {
        // Not enforced here: the caps row says why, in words a person can act on.
        assert!(
            detail.contains("nsdelegate") || detail.contains("user namespace"),
            "{detail}"
        );
    }
}

#[test]
fn uncontained_runs_and_breakaway_jobs_start_no_namespace() {
    if !cgroup_jobs_here() {
        return;
    }
    let o = taskloom(&["run", "--json", "--uncontained", "--", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["job"]["contained"], false, "{v}");
    // Members of a job that allows breakaway may leave it by design.
    let o = taskloom(&["run", "--json", "--breakaway-ok", "--", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["job"]["contained"], false, "{v}");
    // Inside its namespace, a member sees its own job as the root.
    let (enforced, _) = containment_caps();
    let o = taskloom(&["run", "-q", "--", "cat", "/proc/self/cgroup"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let seen = String::from_utf8_lossy(&o.stdout);
    let v2 = seen
        .lines()
        .find(|l| l.starts_with("0::"))
        .unwrap_or_default();
    if enforced {
        assert!(v2.starts_with("0::/@"), "{seen}");
    } else {
        assert!(v2.contains("/taskloom/"), "{seen}");
    }
}

#[test]
fn a_member_assigns_itself_to_a_job_it_made_as_ported_programs_do() {
    // The Windows 8 pattern: a process that runs in a job (here `run`'s)
    // makes a job of its own and assigns itself to it; the new job is
    // nested in the one it is in, so it never leaves that one.
    if !cgroup_jobs_here() {
        return;
    }
    let outer = name("port");
    let _jobs = Jobs(vec![outer.clone()]);
    let tl = env!("CARGO_BIN_EXE_taskloom");
    let script = format!(
        "{tl} job create mine --max-processes 30 >/dev/null && \
         {tl} job assign mine $$ >/dev/null && \
         {tl} job show mine --json"
    );
    let o = taskloom(&["run", "-q", "--name", &outer, "--", "sh", "-c", &script]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let pids: Vec<i64> = shown["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    assert!(!pids.is_empty(), "the shell is in its own job: {shown}");
    assert_eq!(shown["limits"]["active_processes"], 30, "{shown}");
    assert_eq!(leftovers(&outer), "");
}

#[test]
fn a_member_sees_its_own_job_by_name() {
    // Inside its job's namespace the kernel shows cgroup paths relative to
    // the job; `inspect` and `ps` still name the job, as from outside.
    if !cgroup_jobs_here() {
        return;
    }
    let job = name("seen");
    let _jobs = Jobs(vec![job.clone()]);
    let tl = env!("CARGO_BIN_EXE_taskloom");
    let script = format!("{tl} inspect $$ --json");
    let o = taskloom(&["run", "-q", "--name", &job, "--", "sh", "-c", &script]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let seen = v["job"].as_str().or_else(|| v["basic"]["job"].as_str());
    assert_eq!(seen, Some(job.as_str()), "{}", &v["cgroups"]);
    // `ps` and `top` inside work too (the member finds itself by its own
    // pid there), and `top` names its job (`ps` names jobs with `--job` only).
    for tool in [
        format!("{tl} ps --json"),
        format!("{tl} top --json -n 1 -d 100ms"),
    ] {
        let script = format!("{tool} | head -n 1 > \"$TL_OUT\"; echo $$");
        let out = tempfile::NamedTempFile::new().unwrap();
        let o = Command::new(tl)
            .args(["run", "-q", "--name", &job, "--", "sh", "-c", &script])
            .env("TL_OUT", out.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{tool}: {}", stderr(&o));
        let me: i64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
        let text = std::fs::read_to_string(out.path()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = v.as_array().or_else(|| v["processes"].as_array()).unwrap();
        let row = rows.iter().find(|r| r["pid"] == me);
        assert!(row.is_some(), "{tool}: the member {me} is listed: {text}");
        if tool.contains(" top ") {
            assert_eq!(row.unwrap()["job"], job.as_str(), "{tool}: {row:?}");
        }
    }
}

/// Pidfds of processes this test's run started, to count survivors by pid
/// (never by name) after the owner's SIGKILL.
struct Watched(Vec<(i32, std::os::fd::OwnedFd)>);

impl Watched {
    fn of(pids: &[i64]) -> Watched {
        Watched(
            pids.iter()
                .filter_map(|&p| {
                    let pid = rustix::process::Pid::from_raw(p as i32)?;
                    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                        .ok()?;
                    Some((p as i32, fd))
                })
                .collect(),
        )
    }

    /// The pids still running after waiting up to `limit` for them to end.
    fn survivors(&self, limit: Duration) -> Vec<i32> {
        let start = std::time::Instant::now();
        loop {
            let alive: Vec<i32> = self
                .0
                .iter()
                .filter(|(_, fd)| {
                    let mut p = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
                    rustix::event::poll(&mut p, Some(&rustix::event::Timespec::default()))
                        .unwrap_or(0)
                        == 0
                })
                .map(|(pid, _)| *pid)
                .collect();
            if alive.is_empty() || start.elapsed() > limit {
                return alive;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        // Whatever survived a failed test is killed through its pidfd.
        for (_, fd) in &self.0 {
            let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL);
        }
    }
}

/// The attacker: a member that tries to switch its job off before its
/// owner dies. It starts two escapers (`setsid` and a plain background
/// sleep), then stops and kills every process it can see but them and
/// itself, kills its owner by pid (the number it is handed), reopens for
/// writing every pipe it finds in `/proc/*/fd` (a holder of the job),
/// and writes `max` into every `pids.max` and `memory.max` it can reach.
/// Each step's outcome lands in a file of `d`.
fn attacker(d: &str) -> String {
    format!(
        r#"exec 2>/dev/null
setsid sleep 3000 </dev/null >/dev/null &
s1=$!
sleep 3000 </dev/null >/dev/null &
s2=$!
while [ ! -s {d}/owner ]; do sleep 0.05; done
me=$$
ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ' > {d}/seen
for p in $(cat {d}/seen); do
  case " $me $s1 $s2 " in *" $p "*) continue;; esac
  kill -STOP $p && echo $p >> {d}/stopped
  kill -KILL $p && echo $p >> {d}/killed
done
if kill -KILL $(cat {d}/owner); then echo yes > {d}/owner_killed; else echo no > {d}/owner_killed; fi
for f in /proc/[0-9]*/fd/*; do
  [ -p "$f" ] || continue
  case "$f" in /proc/$me/*|/proc/self/*|/proc/thread-self/*) continue;; esac
  if ( exec 9>"$f" ); then echo "$f" >> {d}/reopened; fi
done
cat /proc/1/environ >/dev/null && echo environ >> {d}/read_init
for f in $(find /sys/fs/cgroup -name pids.max -o -name memory.max); do
  echo max > "$f" && echo "$f" >> {d}/rewrote
done
touch {d}/done
wait"#
    )
}

/// Whether members here run as `nobody` for the attacks: as root they do
/// (root in the machine's own user namespace can, as `job caps` says).
fn attacker_user() -> Vec<&'static str> {
    if is_root() {
        vec!["--user", "nobody"]
    } else {
        Vec::new()
    }
}

/// A temporary directory every user may write (a member running as
/// `nobody` reports there), and its path as text.
fn shared_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let d = dir.path().display().to_string();
    (dir, d)
}

/// Waits, at most a minute, until `file` exists.
fn wait_for(file: &std::path::Path) {
    let start = std::time::Instant::now();
    while !file.exists() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read(d: &std::path::Path, f: &str) -> String {
    std::fs::read_to_string(d.join(f)).unwrap_or_default()
}

#[test]
fn a_member_cannot_disarm_its_job() {
    if !cgroup_jobs_here() {
        return;
    }
    let (enforced, detail) = containment_caps();
    let job = name("disarm");
    let _jobs = Jobs(vec![job.clone()]);
    let (dir, d) = shared_dir();
    let mut run = Command::new(env!("CARGO_BIN_EXE_taskloom"))
        .args(["run", "-q", "--max-processes", "40", "--name", &job])
        .args(attacker_user())
        .args(["--", "sh", "-c", &attacker(&d)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let owner = run.id();
    std::fs::write(dir.path().join("owner"), owner.to_string()).unwrap();
    wait_for(&dir.path().join("done"));
    assert!(
        dir.path().join("done").exists(),
        "the attacker did not finish"
    );
    let pids = members(&job);
    let watched = Watched::of(&pids);
    assert_eq!(
        pids.len(),
        3,
        "the attacker and its two escapers are in the job: {pids:?}"
    );
    assert_eq!(watched.0.len(), 3, "all three still running: {pids:?}");
    // The owner's SIGKILL: every member must go, whatever the attacker did.
    let _ = run.kill();
    let _ = run.wait();
    let survivors = watched.survivors(Duration::from_secs(10));
    assert_eq!(
        survivors,
        Vec::<i32>::new(),
        "members survived their owner's SIGKILL"
    );
    // What each step got back.
    assert_eq!(
        read(dir.path(), "owner_killed").trim(),
        "no",
        "the member killed its owner"
    );
    assert_eq!(
        read(dir.path(), "reopened"),
        "",
        "the member reopened a pipe of another process"
    );
    assert_eq!(
        read(dir.path(), "read_init"),
        "",
        "the member read its init's environment"
    );
    let rewrote = read(dir.path(), "rewrote");
    if enforced {
        // It sees its job's processes and the init (pid 1) only: its own
        // shell pipeline, its escapers, its init; never its owner.
        let seen = read(dir.path(), "seen");
        let seen: Vec<&str> = seen.split_whitespace().collect();
        let owner = owner.to_string();
        assert!(
            seen.contains(&"1") && !seen.contains(&owner.as_str()) && seen.len() <= 8,
            "it saw {seen:?} (its owner is {owner} here)"
        );
        // It reaches its own job's cgroups only, and changes no limit that binds it.
        assert!(
            rewrote.lines().all(|f| f.starts_with("/sys/fs/cgroup/@")),
            "it rewrote {rewrote}"
        );
    } else {
        assert!(
            is_root(),
            "without containment only root runs this attack: {detail}"
        );
        assert_eq!(rewrote, "", "nobody rewrote a limit");
        assert_eq!(
            read(dir.path(), "killed"),
            "",
            "nobody killed another user's process"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(leftovers(&job), "", "the job's cgroups are gone");
}

#[test]
fn a_nested_member_cannot_lift_its_outer_jobs_limit() {
    // A nested `taskloom run` inside an outer one with a process limit: the
    // inner member writes `max` into every `pids.max` it can reach (the
    // outer job's, the scope's) and forks twenty. The outer limit holds.
    if !cgroup_jobs_here() {
        return;
    }
    let (enforced, _) = containment_caps();
    let outer = name("outer");
    let _jobs = Jobs(vec![outer.clone()]);
    let (dir, d) = shared_dir();
    let tl = env!("CARGO_BIN_EXE_taskloom");
    let inner = format!(
        r#"exec 2>/dev/null
for f in $(find /sys/fs/cgroup -name pids.max); do echo max > "$f" && echo "$f" >> {d}/rewrote; done
# A shell that cannot fork gives up: the forks run in a subshell of their own.
( i=0; while [ $i -lt 20 ]; do sleep 30 </dev/null >/dev/null & i=$((i+1)); done )
touch {d}/done
sleep 30"#
    );
    let mut run = Command::new(tl)
        .args(["run", "-q", "--max-processes", "10", "--name", &outer])
        .args(attacker_user())
        .args(["--", tl, "run", "-q", "--", "sh", "-c", &inner])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&dir.path().join("done"));
    let done = dir.path().join("done").exists();
    if !done {
        let _ = run.kill();
        let out = run.wait_with_output().unwrap();
        panic!("the inner member did not finish: {}", stderr(&out));
    }
    let pids = members(&outer);
    let watched = Watched::of(&pids);
    let _ = run.kill();
    let _ = run.wait();
    assert!(
        pids.len() <= 10,
        "the outer job holds {} processes over its limit of 10: {pids:?}",
        pids.len()
    );
    let rewrote = read(dir.path(), "rewrote");
    if enforced {
        // Only the inner job's own leaves are in reach.
        assert!(
            rewrote.lines().all(|f| f.starts_with("/sys/fs/cgroup/@")),
            "the inner member rewrote {rewrote}"
        );
    } else {
        assert!(is_root(), "without containment only root runs this attack");
        assert_eq!(rewrote, "", "nobody rewrote a limit");
    }
    assert_eq!(
        watched.survivors(Duration::from_secs(10)),
        Vec::<i32>::new()
    );
}

#[test]
fn hidden_services_are_out_of_a_members_reach() {
    // `run --no-services`: the session bus and the service manager's
    // socket the owner's environment names are covered in the member's
    // view, and where a real user manager runs, `systemd-run --user` from
    // the member fails and starts nothing.
    if !cgroup_jobs_here() {
        return;
    }
    let (enforced, detail) = containment_caps();
    // The user's real runtime directory where a manager runs there (taskloom
    // itself talks to it), else one this test makes with a listening bus
    // socket and a manager directory in it.
    let real = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .filter(|r| r.join("bus").exists());
    let made = tempfile::tempdir().unwrap();
    let rd = match &real {
        Some(r) => r.clone(),
        None => {
            let rd = made.path().to_owned();
            std::fs::create_dir(rd.join("systemd")).unwrap();
            std::fs::write(rd.join("systemd/private"), "").unwrap();
            rd
        }
    };
    let _listener = match &real {
        Some(_) => None,
        None => Some(std::os::unix::net::UnixListener::bind(rd.join("bus")).unwrap()),
    };
    let rd = rd.display().to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_taskloom"))
        .args(["run", "-q", "--no-services", "--"])
        .args([
            "sh",
            "-c",
            &format!("[ -S {rd}/bus ] && echo bus; ls -A {rd}/systemd; echo checked"),
        ])
        .env("XDG_RUNTIME_DIR", &rd)
        .output()
        .unwrap();
    if !enforced {
        // Where no mount namespace can be had, the option is refused, said why.
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("cannot hide the service manager"),
            "{}: {detail}",
            stderr(&o)
        );
        return;
    }
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "checked",
        "the member still reaches the bus or the manager's socket"
    );
    // The real thing, where the user has a manager (the systemd guests).
    let real_bus = real;
    let has_systemd_run = Command::new("systemd-run")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if real_bus.is_none() || !has_systemd_run || is_root() {
        eprintln!("systemd-run part not run: no user service manager here");
        return;
    }
    let unit = format!("tl-c{}-svc", std::process::id());
    let o = taskloom(&[
        "run",
        "-q",
        "--no-services",
        "--",
        "systemd-run",
        "--user",
        "--unit",
        &unit,
        "sleep",
        "300",
    ]);
    let state = Command::new("systemctl")
        .args(["--user", "is-active", &unit])
        .output()
        .unwrap();
    // Whatever started is stopped: this test made it.
    let _ = Command::new("systemctl")
        .args(["--user", "stop", &unit])
        .output();
    assert_ne!(
        o.status.code(),
        Some(0),
        "systemd-run from a member succeeded"
    );
    assert_ne!(
        String::from_utf8_lossy(&state.stdout).trim(),
        "active",
        "a process started through the manager outlived the job"
    );
}

#[test]
fn a_closed_jobs_leftover_state_is_not_listed() {
    // A process-group job inside a job that closes: its owner and guardian
    // are killed with the outer job, so nothing removed its state. The next
    // command that finds it must not call it running, and removes it.
    if !cgroup_jobs_here() {
        return;
    }
    let inner = name("stale");
    let tl = env!("CARGO_BIN_EXE_taskloom");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // The outer job is a cgroup job (what kills the inner one's guardian);
    // the inner one a process group.
    let script = format!(
        "export TASKLOOM_JOB_BACKEND=process-group
         {tl} run -q --name {inner} -- sleep 300 &
         i=0; until {tl} job list | grep -q {inner} || [ $i -gt 100 ]; do sleep 0.05; i=$((i+1)); done
         {tl} job list > {d}/during; exit 0"
    );
    let o = Command::new(tl)
        .args(["run", "-q", "--", "sh", "-c", &script])
        .env_remove("TASKLOOM_JOB_BACKEND")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let during = std::fs::read_to_string(dir.path().join("during")).unwrap_or_default();
    assert!(during.contains(&inner), "the inner job ran: {during}");
    let after = Command::new(tl)
        .args(["job", "list", "--json"])
        .env("TASKLOOM_JOB_BACKEND", "process-group")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&after.stdout);
    assert!(!listed.contains(&inner), "a closed job is listed: {listed}");
    let show = Command::new(tl)
        .args(["job", "show", &inner])
        .env("TASKLOOM_JOB_BACKEND", "process-group")
        .output()
        .unwrap();
    assert!(stderr(&show).contains("no such job"), "{}", stderr(&show));
}

/// The `taskloom-guard` processes of this user started at or after boot
/// tick `since` (field 22 of `/proc/<pid>/stat`).
fn guardians_since(since: u64) -> Vec<i32> {
    let me = rustix::process::geteuid().as_raw();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let start = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(19)?.parse::<u64>().ok());
            // Its real uid (a non-dumpable process's /proc directory is root's).
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let owner = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|u| u.split_whitespace().next()?.parse::<u32>().ok());
            comm.trim() == "taskloom-guard"
                && start.is_some_and(|s| s >= since)
                && owner == Some(me)
        })
        .collect()
}

fn start_tick(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19)?.parse().ok())
        .unwrap()
}

#[test]
fn the_kernel_closes_a_job_whose_guardian_cannot_act() {
    // Kill-on-close without the guardian: it is stopped (as a member could
    // not, but root or a bug might), then the owner is SIGKILLed. The job's
    // pid namespace init ends with the last handle, and the kernel ends
    // every member.
    if !cgroup_jobs_here() {
        return;
    }
    let (enforced, detail) = containment_caps();
    if !enforced || !detail.contains("pid namespace") {
        common::not_run(
            "the_kernel_closes_a_job_whose_guardian_cannot_act",
            &format!("no pid namespace per job ({detail})"),
        );
        return;
    }
    let job = name("noguard");
    let _jobs = Jobs(vec![job.clone()]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let mut run = Command::new(env!("CARGO_BIN_EXE_taskloom"))
        .args(["run", "-q", "--name", &job, "--", "sh", "-c"])
        .arg(format!(
            "setsid sleep 3000 </dev/null >/dev/null 2>&1 & sleep 3000 </dev/null >/dev/null 2>&1 & touch {d}/done; wait"
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let since = start_tick(run.id());
    wait_for(&dir.path().join("done"));
    let pids = members(&job);
    let watched = Watched::of(&pids);
    assert_eq!(watched.0.len(), 3, "{pids:?}");
    // This run's guardian (the tests run one at a time where this runs).
    let guards = guardians_since(since);
    assert_eq!(
        guards.len(),
        1,
        "one guardian started since the run: {guards:?}"
    );
    let guard = Watched::of(&[guards[0] as i64]);
    rustix::process::pidfd_send_signal(&guard.0[0].1, rustix::process::Signal::STOP).unwrap();
    let _ = run.kill();
    let _ = run.wait();
    let survivors = watched.survivors(Duration::from_secs(10));
    // The guardian goes on and cleans up (or is killed by `guard`'s drop).
    let _ = rustix::process::pidfd_send_signal(&guard.0[0].1, rustix::process::Signal::CONT);
    assert_eq!(
        survivors,
        Vec::<i32>::new(),
        "members outlived their owner while the guardian was stopped"
    );
}

#[test]
fn messages_inside_a_contained_job_name_jobs_by_name() {
    // Inside a job, a member makes two jobs and assigns a process of the
    // first to the second (empty, so it is nested in the first): the
    // message names the jobs as `job list` does, never by cgroup path.
    if !cgroup_jobs_here() {
        return;
    }
    let outer = name("msgs");
    let _jobs = Jobs(vec![outer.clone()]);
    let tl = env!("CARGO_BIN_EXE_taskloom");
    let script = format!(
        "{tl} job create ma >/dev/null; {tl} job create mb >/dev/null
         sleep 30 & s=$!
         {tl} job assign ma $s 2>&1 && {tl} job assign mb $s 2>&1; kill $s"
    );
    let o = taskloom(&["run", "-q", "--name", &outer, "--", "sh", "-c", &script]);
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("it is job"), "{said}{}", stderr(&o));
    assert!(
        !said.contains("/sys/fs/cgroup"),
        "a path where a name belongs: {said}"
    );
    assert!(said.contains("ma/mb now"), "{said}");
}

#[test]
fn a_nested_run_at_its_process_limit_fails_cleanly() {
    // A process-group run inside a job at its process limit: its watcher
    // and its clean-up meet EAGAIN from every fork and thread. They give
    // errors, never a panic (exit 134).
    if !cgroup_jobs_here() {
        return;
    }
    let tl = env!("CARGO_BIN_EXE_taskloom");
    let script = format!(
        "TASKLOOM_JOB_BACKEND=process-group {tl} run -- sh -c \
         '( i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done ) 2>/dev/null; sleep 1'; \
         echo inner=$?"
    );
    let o = Command::new(tl)
        .args(["run", "-q", "--max-processes", "12"])
        .args(attacker_user())
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.contains("inner="), "{out}{err}");
    assert!(!out.contains("inner=134"), "{out}{err}");
}
