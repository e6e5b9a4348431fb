//! The `taskloom` command as a user runs it.
#![cfg(target_os = "linux")]

mod common;

use common::{cgroup_jobs_here, jobs_here, leftovers, stderr, taskloom};
use std::process::{Command, Output};

#[test]
fn run_passes_the_exit_code_and_summarises() {
    let o = taskloom(&["run", "--no-job", "--", "sh", "-c", "echo out; exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    let err = stderr(&o);
    assert!(err.starts_with("taskloom: exit code 3 · wall "), "{err}");
    let o = taskloom(&["run", "--no-job", "--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(o.status.code(), Some(137));
    assert!(stderr(&o).contains("killed by SIGKILL"));
}

#[test]
fn run_says_what_failed() {
    let o = taskloom(&["run", "--no-job", "--", "taskloom-no-such-program"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(
        stderr(&o).starts_with("taskloom: program not found: taskloom-no-such-program"),
        "{}",
        stderr(&o)
    );
    let o = taskloom(&["run", "--no-job", "--", "/"]);
    assert_eq!(o.status.code(), Some(126));
    assert!(stderr(&o).contains("is a directory"));
    let o = taskloom(&["run", "--no-job", "--cwd", "/nonexistent", "--", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("cannot change directory to /nonexistent"),
        "{}",
        stderr(&o)
    );
    let o = taskloom(&["run", "--no-job", "--cpus", "3-1", "--", "true"]);
    assert_eq!(o.status.code(), Some(125), "a usage error of run");
    assert!(stderr(&o).contains("runs backwards"), "{}", stderr(&o));
    let o = taskloom(&["run", "--no-job", "--memory", "1G", "--", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("--no-job takes no job limits"));
}

#[test]
fn a_run_that_fails_to_start_leaves_no_job_behind() {
    if !jobs_here() {
        return;
    }
    let name = format!("cli-failed-start-{}", std::process::id());
    let o = taskloom(&[
        "run",
        "--name",
        &name,
        "--max-processes",
        "10",
        "--",
        "taskloom-no-such-program",
    ]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let o = taskloom(&["job", "list", "--json"]);
    let jobs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        !jobs
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["name"] == name.as_str()),
        "the job of a run that never started is gone: {jobs}"
    );
    let o = taskloom(&["job", "show", &name]);
    assert!(!o.status.success(), "job show finds nothing");
}

#[test]
fn run_json_is_one_object() {
    let o = taskloom(&[
        "run",
        "--no-job",
        "--json",
        "--env",
        "A=b",
        "--",
        "sh",
        "-c",
        "test \"$A\" = b",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["status"]["kind"], "exited");
    assert!(v["wall_seconds"].as_f64().unwrap() > 0.0);
}

#[test]
fn run_closes_the_job_and_kills_what_was_left() {
    if !jobs_here() {
        return;
    }
    // The leftovers are found by a duration no other process sleeps for
    // (in a contained job, the pids a member sees are its namespace's).
    let mark = format!("60.{}", std::process::id());
    let script = format!("setsid sleep {mark} >/dev/null 2>&1 & (sleep {mark} &); echo started");
    let o = taskloom(&["run", "--json", "--", "sh", "-c", &script]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("started"));
    let v: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(v["job"]["killed_at_close"], 2, "{v}");
    let alive: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            cmd == format!("sleep\0{mark}\0").into_bytes() && !stat.contains(") Z")
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(alive.is_empty(), "left behind and alive: {alive:?}");
}

#[test]
fn run_reports_limits_hit() {
    if !jobs_here() {
        return;
    }
    let o = taskloom(&[
        "run",
        "--memory",
        "64M",
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=256M",
        "count=1",
    ]);
    assert_eq!(o.status.code(), Some(137));
    assert!(stderr(&o).contains("limits hit: memory"), "{}", stderr(&o));
    let o = taskloom(&[
        "run",
        "--job-time",
        "200ms",
        "--",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    assert_eq!(o.status.code(), Some(137));
    assert!(
        stderr(&o).contains("limits hit: job-time"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn job_commands_round_trip() {
    if !jobs_here() {
        return;
    }
    let name = format!("cli-{}", std::process::id());
    let o = taskloom(&[
        "job",
        "create",
        &name,
        "--max-processes",
        "7",
        "--memory",
        "128M",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = String::from_utf8_lossy(&taskloom(&["job", "list"]).stdout).into_owned();
    let header = list.lines().next().unwrap();
    assert!(header.starts_with("NAME"), "{list}");
    let row = list.lines().find(|l| l.starts_with(&name)).expect("listed");
    assert!(row.ends_with("procs 7, mem 128M"), "{row}");
    let o = taskloom(&["job", "set", &name, "--cpu-rate", "50"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&taskloom(&["job", "show", &name, "--json"]).stdout).unwrap();
    assert_eq!(v["limits"]["active_processes"], 7);
    assert_eq!(v["limits"]["cpu_rate_percent"], 50);
    assert!(taskloom(&["job", "delete", &name]).status.success());
    let o = taskloom(&["job", "show", &name]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("no such job"));
    let o = taskloom(&["job", "create", "../escape"]);
    assert!(
        stderr(&o).contains("invalid job name \"../escape\": contains '/'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_job_made_by_one_command_counts_its_processes_for_the_next() {
    if !cgroup_jobs_here() {
        return;
    }
    let caps: serde_json::Value =
        serde_json::from_slice(&taskloom(&["job", "caps", "--json"]).stdout).unwrap();
    let counted = cap(&caps, "total-processes")["enforced"] == true;
    let name = format!("cli-total-{}", std::process::id());
    let o = taskloom(&["job", "create", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    // `job create` has ended; the job counts on. A shell that waits for a
    // line, is assigned, then starts three programs.
    let mut sh = Command::new("sh")
        .args(["-c", "read x; /bin/true; /bin/true; sleep 300; exit 0"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = sh.id().to_string();
    let o = taskloom(&["job", "assign", &name, &pid]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::io::Write::write_all(sh.stdin.as_mut().unwrap(), b"go\n").unwrap();
    let total = || {
        let v: serde_json::Value =
            serde_json::from_slice(&taskloom(&["job", "show", &name, "--json"]).stdout).unwrap();
        v["total_processes"].clone()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let want = if counted {
        serde_json::json!(4)
    } else {
        serde_json::Value::Null
    };
    while total() != want && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let got = total();
    let shown = String::from_utf8_lossy(&taskloom(&["job", "show", &name]).stdout).into_owned();
    let _ = taskloom(&["job", "delete", &name]);
    let _ = sh.kill();
    let _ = sh.wait();
    assert_eq!(got, want, "the shell and its three programs");
    let line = shown.lines().find(|l| l.contains("processes")).unwrap();
    let all = if counted { "4 in all" } else { "- in all" };
    assert!(line.ends_with(all), "{line}");
}

#[test]
fn ps_json_and_tables_survive_hostile_names() {
    let dir = std::env::temp_dir().join(format!("taskloom-cli-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("a\nb\tc)");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/bin/sh", &link).unwrap();
    let mut child = Command::new(&link)
        .args(["-c", "read x"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i64;
    let o = taskloom(&["ps", "--json"]);
    assert!(o.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["pid"] == pid)
        .expect("listed");
    assert_eq!(row["name"], "a\nb\tc)");
    // A user filter that names nobody is an error, not an empty table.
    let o = taskloom(&["ps", "--user", "taskloom-no-such-user"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("user not found: taskloom-no-such-user"),
        "{}",
        stderr(&o)
    );
    let table = String::from_utf8(taskloom(&["ps"]).stdout).unwrap();
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{pid} ")))
        .expect("a row");
    assert!(line.contains("a\\nb\\tc)"), "escaped on one line: {line}");
    assert!(
        !table.lines().any(|l| l.starts_with("b\t")),
        "a name broke the table"
    );
    let o = taskloom(&[
        "inspect",
        &pid.to_string(),
        "--json",
        "--section",
        "classification",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["classification"], "normal");
    let o = taskloom(&["threads", &pid.to_string(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["tid"], pid);
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let o = taskloom(&["inspect", "999999999"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("no such process: 999999999"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn open_resolves_through_the_xdg_tree_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in ["config", "data/mime", "data/applications"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("data/mime/globs2"), "50:text/x-tlcli:*.tlcli\n").unwrap();
    std::fs::write(
        root.join("data/applications/echoer.desktop"),
        "[Desktop Entry]\nType=Application\nName=Echoer\nExec=echo opened %f\nMimeType=text/x-tlcli;\n",
    )
    .unwrap();
    let doc = root.join("a\u{e9}.tlcli");
    std::fs::write(&doc, "x").unwrap();
    let with_tree = |args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_taskloom"))
            .args(args)
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("XDG_CONFIG_DIRS", root.join("config"))
            .env("XDG_DATA_HOME", root.join("data"))
            .env("XDG_DATA_DIRS", root.join("data"))
            .output()
            .unwrap()
    };
    let o = with_tree(&[
        "open".as_ref(),
        "--dry-run".as_ref(),
        "--json".as_ref(),
        doc.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["application"], "echoer.desktop");
    assert_eq!(v["mime"], "text/x-tlcli");
    assert_eq!(v["target"], "document");
    assert_eq!(v["argv"][0], "echo");
    assert_eq!(v["argv"][2], doc.to_str().unwrap());
    assert!(v["pid"].is_null(), "a dry run starts nothing");

    let o = with_tree(&["open".as_ref(), "--wait".as_ref(), doc.as_os_str()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("opened {}\n", doc.display())
    );
    assert!(
        stderr(&o).contains("with echoer.desktop (text/x-tlcli)"),
        "{}",
        stderr(&o)
    );

    let o = with_tree(&["open".as_ref(), "tlnone://x".as_ref()]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("no application is associated with x-scheme-handler/tlnone"),
        "{}",
        stderr(&o)
    );
}

/// Runs `script` with `sh` in a private mount namespace, `$TL` naming the
/// binary: how the tests below show taskloom a machine with another cgroup
/// layout. `None` (with the reason printed) where that cannot be done.
/// The super options of this machine's cgroup2 (`nsdelegate`, …), which
/// hold for every mount of it.
fn cgroup2_options() -> Option<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find_map(|l| Some(l.split_once(" - cgroup2 ")?.1.split(' ').nth(1)?.to_owned()))
}

fn in_mount_namespace(test: &str, script: &str) -> Option<Output> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::not_run(test, "a mount namespace needs root");
        return None;
    }
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("TL", env!("CARGO_BIN_EXE_taskloom"))
        .output();
    match o {
        Ok(o) if !String::from_utf8_lossy(&o.stderr).contains("unshare failed") => Some(o),
        Ok(o) => {
            common::not_run(test, stderr(&o).trim());
            None
        }
        Err(e) => {
            common::not_run(test, &format!("cannot run unshare: {e}"));
            None
        }
    }
}

fn cap<'a>(caps: &'a serde_json::Value, feature: &str) -> &'a serde_json::Value {
    caps.as_array()
        .unwrap()
        .iter()
        .find(|c| c["feature"] == feature)
        .unwrap_or_else(|| panic!("no {feature} in {caps}"))
}

/// A machine with cgroup v1 only (this hybrid machine with its cgroup2
/// mount hidden): jobs live in the v1 hierarchies, terminate freezes.
#[test]
fn jobs_on_a_cgroup_v1_only_machine() {
    let hybrid = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup/unified ") && l.contains(" - cgroup2 "));
    if !hybrid {
        common::not_run(
            "jobs_on_a_cgroup_v1_only_machine",
            "no hybrid layout here to hide cgroup2 from",
        );
        return;
    }
    let name = format!("cli-v1only-{}", std::process::id());
    let script = format!(
        "umount -l /sys/fs/cgroup/unified && \"$TL\" job caps --json && \
         \"$TL\" run --name {name} --max-processes 5 -- cat /proc/self/cgroup"
    );
    let Some(o) = in_mount_namespace("jobs_on_a_cgroup_v1_only_machine", &script) else {
        return;
    };
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let (caps, cgroups) = out.split_once('\n').unwrap();
    let caps: serde_json::Value = serde_json::from_str(caps).unwrap();
    assert_eq!(cap(&caps, "membership")["enforced"], true);
    assert!(
        cap(&caps, "membership")["detail"]
            .as_str()
            .unwrap()
            .contains("v1")
    );
    assert!(
        cap(&caps, "terminate")["detail"]
            .as_str()
            .unwrap()
            .contains("freeze")
    );
    assert!(
        cgroups.contains(&format!("pids:/taskloom/{name}")),
        "{cgroups}"
    );
    assert!(!cgroups.contains("0::/taskloom"), "{cgroups}");
    assert_eq!(leftovers(&name), "", "the run removed its job");
}

/// A machine with cgroup2 only (a fresh cgroup2 mount in place of the
/// whole layout): jobs live in cgroup2 leaves, and the capabilities say
/// which limits the controllers there allow.
#[test]
fn jobs_on_a_cgroup2_only_machine() {
    let name = format!("cli-v2only-{}", std::process::id());
    // The new mount takes the machine's cgroup2 options: a cgroup2 mount in
    // the initial cgroup namespace sets them for the whole machine (one
    // without `nsdelegate` would switch containment off everywhere, also
    // outside this mount namespace, until the next mount with it).
    let script = format!(
        "opts=$(sed -n 's/.* - cgroup2 [^ ]* \\([^ ]*\\)$/\\1/p' /proc/self/mountinfo | head -n 1) && \
         umount -l /sys/fs/cgroup && mount -t cgroup2 -o \"${{opts:-rw}}\" none /sys/fs/cgroup && \
         cat /sys/fs/cgroup/cgroup.controllers && \"$TL\" job caps --json && \
         \"$TL\" run --name {name} -- cat /proc/self/cgroup"
    );
    let before = cgroup2_options();
    let Some(o) = in_mount_namespace("jobs_on_a_cgroup2_only_machine", &script) else {
        return;
    };
    assert_eq!(
        cgroup2_options(),
        before,
        "the machine's cgroup2 options are as they were"
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let mut lines = out.splitn(3, '\n');
    let controllers: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let caps: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let cgroups = lines.next().unwrap();
    assert!(
        cap(&caps, "membership")["detail"]
            .as_str()
            .unwrap()
            .contains("cgroup2"),
        "{caps}"
    );
    assert!(
        cap(&caps, "terminate")["detail"]
            .as_str()
            .unwrap()
            .contains("cgroup.kill")
    );
    // On cgroup2 only, a limit is enforced exactly when its controller is there.
    for (feature, controller) in [("active-processes", "pids"), ("job-memory", "memory")] {
        assert_eq!(
            cap(&caps, feature)["enforced"].as_bool(),
            Some(controllers.contains(&controller)),
            "{feature} with controllers {controllers:?}: {caps}"
        );
    }
    // Below our own cgroup, or in a scope of its own where systemd
    // delegates; a contained program sees its job's leaf from inside the
    // job's cgroup namespace.
    let direct = format!("/taskloom/{name}/@0");
    let scoped = format!("/taskloom-{name}.scope/{name}/@0");
    let contained = cap(&caps, "containment")["enforced"] == true;
    assert!(
        cgroups.lines().any(|l| match l.strip_prefix("0::") {
            Some(path) if contained => path == "/@0",
            Some(path) => path.ends_with(&direct) || path.ends_with(&scoped),
            None => false,
        }),
        "{cgroups}"
    );
    assert_eq!(leftovers(&name), "", "the run removed its job");
}

#[test]
fn verbose_logging_goes_to_stderr_and_leaves_json_alone() {
    // -vv and TASKLOOM_LOG turn the library's traces on; stdout stays data.
    let o = taskloom(&["-vv", "run", "--json", "--", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["exit_code"], 0);
    let o = Command::new(env!("CARGO_BIN_EXE_taskloom"))
        .args(["ps", "--json", "--name", "no-such-process-name"])
        .env("TASKLOOM_LOG", "trace")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v, serde_json::json!([]));
    // -v is an option of every command, after it too.
    let o = taskloom(&["job", "caps", "-v", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The binary asks the library, never the kernel: no `/proc` path and no
/// raw `libc`/`nix`/`rustix` call in its sources, but the one line that
/// gives SIGPIPE back its default at start (its own business, before any
/// thread). What it needs of the system is a library call, which Windows
/// gets too.
#[test]
fn the_binary_asks_the_library_never_the_kernel() {
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 5, "found the sources in {}", src.display());
    let allowed = "libc::signal(libc::SIGPIPE, libc::SIG_DFL)";
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let code = code.replacen(allowed, "", 1);
            for bad in ["\"/proc", "libc::", "nix::", "rustix::"] {
                if code.contains(bad) {
                    found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the binary calls the kernel itself:\n{}",
        found.join("\n")
    );
}

/// Deletes a job and kills what the test started, even when it fails.
struct SoftLimitRun {
    job: String,
    children: Vec<std::process::Child>,
}

impl Drop for SoftLimitRun {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = taskloom(&["job", "delete", &self.job]);
    }
}

#[test]
fn a_job_over_its_soft_memory_limit_keeps_running_and_says_so() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::time::Duration;
    if !cgroup_jobs_here() {
        return;
    }
    let name = format!("cli-soft-{}", std::process::id());
    let o = taskloom(&["job", "create", &name, "--notify-memory", "8M"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut run = SoftLimitRun {
        job: name.clone(),
        children: Vec::new(),
    };
    let mut watch = Command::new(env!("CARGO_BIN_EXE_taskloom"))
        .args(["job", "watch", &name, "--json", "--interval", "50ms"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let out = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    run.children.push(watch);
    // A member that writes 32 MiB of page cache (charged to the job) once
    // it is in the job, says so, and stays.
    let dir = tempfile::tempdir_in(std::env::var("TMPDIR").unwrap_or("/var/tmp".into())).unwrap();
    let script = format!(
        "read go; dd if=/dev/zero of={}/f bs=1M count=32 2>/dev/null; echo written; sleep 60",
        dir.path().display()
    );
    let mut member = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let o = taskloom(&["job", "assign", &name, &member.id().to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    member.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut said = String::new();
    BufReader::new(member.stdout.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    assert_eq!(said, "written\n");
    run.children.push(member);
    // The watcher says which limit, by how much.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let event = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("a notification from job watch");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["event"] == "notification-limit" {
            break v;
        }
    };
    assert_eq!(event["limit"], "job-memory", "{event}");
    assert_eq!(event["limit_value"], 8 << 20, "{event}");
    assert!(event["value"].as_u64().unwrap() > 8 << 20, "{event}");
    // Nothing was stopped.
    assert!(
        run.children[1].try_wait().unwrap().is_none(),
        "the member still runs"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&taskloom(&["job", "show", &name, "--json"]).stdout).unwrap();
    assert_eq!(v["violations"][0]["limit"], "job-memory", "{v}");
    let member = i64::from(run.children[1].id());
    assert!(
        v["pids"].as_array().unwrap().iter().any(|p| *p == member),
        "the member is still in the job: {v}"
    );
    let text = String::from_utf8(taskloom(&["job", "show", &name]).stdout).unwrap();
    assert!(text.contains("soft limits  job-memory "), "{text}");
    assert!(text.contains(" over 8M"), "{text}");
}
