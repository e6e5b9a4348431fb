//! The direct backend's cgroup file formats (cgroup2, hybrid, v1),
//! checked against fixture trees in a temp directory through the
//! [`Job`] front: no root and no cgroup mount.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Direct;
use crate::cpuset::CpuSet;
use crate::job::backend::leaf_numbers;
use crate::job::{Job, JobLimits, layout::Controller};

/// A job whose directories are plain files and folders in a temp dir:
/// the cgroup file formats, checked without root or a cgroup mount.
fn fixture_job(tmp: &Path, v2_controllers: &str, v1: &[Controller]) -> Job {
    let (v2, v1) = fixture_dirs(tmp, v2_controllers, v1);
    Job::with_backend(
        "j".into(),
        JobLimits::default(),
        Box::new(Direct::at("j", Some(v2), v1)),
    )
}

/// The directories of a fixture job `j`: its cgroup2 directory, and one
/// per v1 controller.
fn fixture_dirs(
    tmp: &Path,
    v2_controllers: &str,
    v1: &[Controller],
) -> (PathBuf, Vec<(Controller, PathBuf)>) {
    let v2 = tmp.join("unified/taskloom/j");
    fs::create_dir_all(v2.join("@0")).unwrap();
    fs::write(v2.join("cgroup.controllers"), v2_controllers).unwrap();
    for f in ["cgroup.procs", "@0/cgroup.procs"] {
        fs::write(v2.join(f), "").unwrap();
    }
    let v1: Vec<(Controller, PathBuf)> = v1
        .iter()
        .map(|&c| {
            let dir = tmp.join(c.name()).join("taskloom/j");
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("cgroup.procs"), "").unwrap();
            if c == Controller::Cpuset {
                fs::write(dir.parent().unwrap().join("cpuset.cpus"), "0-3").unwrap();
                fs::write(dir.parent().unwrap().join("cpuset.cpus.effective"), "0-3").unwrap();
            }
            (c, dir)
        })
        .collect();
    (v2, v1)
}

fn v2_dir(tmp: &Path) -> PathBuf {
    tmp.join("unified/taskloom/j")
}

fn v1_dir(tmp: &Path, c: Controller) -> PathBuf {
    tmp.join(c.name()).join("taskloom/j")
}

fn limits() -> JobLimits {
    JobLimits {
        active_processes: Some(64),
        job_memory: Some(512 << 20),
        affinity: Some(CpuSet::parse_list("1-2").unwrap()),
        cpu_rate_percent: Some(150),
        ..Default::default()
    }
}

fn read(p: PathBuf) -> String {
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn limits_are_written_in_cgroup2_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let mut job = fixture_job(tmp.path(), "cpuset cpu memory pids", &[]);
    let dir = v2_dir(tmp.path());
    // A cgroup2 parent's own cpuset.cpus is empty (it uses its parent's).
    fs::write(dir.parent().unwrap().join("cpuset.cpus"), "").unwrap();
    fs::write(dir.parent().unwrap().join("cpuset.cpus.effective"), "0-3").unwrap();
    job.set_limits(&limits()).unwrap();
    assert_eq!(read(dir.join("pids.max")), "64");
    assert_eq!(read(dir.join("memory.max")), "536870912");
    assert_eq!(read(dir.join("cpu.max")), "150000 100000");
    assert_eq!(read(dir.join("cpuset.cpus")), "1-2");
    // Lifting them writes cgroup2's "max".
    job.set_limits(&JobLimits::default()).unwrap();
    assert_eq!(read(dir.join("pids.max")), "max");
    assert_eq!(read(dir.join("memory.max")), "max");
    assert_eq!(read(dir.join("cpu.max")), "max 100000");
}

#[test]
fn limits_are_written_in_cgroup_v1_formats_on_a_hybrid_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let v1 = [
        Controller::Pids,
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuset,
    ];
    let mut job = fixture_job(tmp.path(), "", &v1);
    job.set_limits(&limits()).unwrap();
    let d = |c: Controller| v1_dir(tmp.path(), c);
    assert_eq!(read(d(Controller::Pids).join("pids.max")), "64");
    assert_eq!(
        read(d(Controller::Memory).join("memory.limit_in_bytes")),
        "536870912"
    );
    assert_eq!(read(d(Controller::Memory).join("memory.oom_control")), "0");
    assert_eq!(read(d(Controller::Cpu).join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(d(Controller::Cpu).join("cpu.cfs_quota_us")), "150000");
    assert_eq!(read(d(Controller::Cpuset).join("cpuset.cpus")), "1-2");
    job.set_limits(&JobLimits::default()).unwrap();
    assert_eq!(
        read(d(Controller::Memory).join("memory.limit_in_bytes")),
        "-1"
    );
    assert_eq!(read(d(Controller::Cpu).join("cpu.cfs_quota_us")), "-1");
}

#[test]
fn a_limit_without_its_controller_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let mut job = fixture_job(tmp.path(), "pids", &[]);
    let err = job
        .set_limits(&JobLimits {
            job_memory: Some(1 << 30),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("needs the memory cgroup controller"),
        "{err}"
    );
}

#[test]
fn accounting_is_read_from_cgroup2_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut job = fixture_job(tmp.path(), "memory pids", &[]);
    job.set_limits(&JobLimits {
        active_processes: Some(10),
        job_memory: Some(1 << 30),
        ..Default::default()
    })
    .unwrap();
    let dir = v2_dir(tmp.path());
    fs::write(dir.join("@0/cgroup.procs"), "41\n42\n").unwrap();
    fs::write(
        dir.join("cpu.stat"),
        "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\n",
    )
    .unwrap();
    fs::write(dir.join("memory.current"), "4096\n").unwrap();
    fs::write(dir.join("memory.peak"), "8192\n").unwrap();
    fs::write(
        dir.join("memory.events"),
        "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
    )
    .unwrap();
    // Before 6.13 a refused fork is counted in the leaf.
    fs::write(dir.join("pids.events"), "max 0\n").unwrap();
    fs::write(dir.join("@0/pids.events"), "max 3\n").unwrap();
    fs::write(dir.join("pids.peak"), "7\n").unwrap();
    fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    let info = job.info().unwrap();
    assert_eq!(info.pids, [41, 42]);
    assert_eq!(info.user_time, Duration::from_millis(2));
    assert_eq!(info.kernel_time, Duration::from_millis(1));
    assert_eq!(info.memory_current, Some(4096));
    assert_eq!(info.memory_peak, Some(8192));
    assert_eq!(info.oom_kills, Some(1));
    assert_eq!(info.process_limit_hits, Some(3));
    assert_eq!(info.peak_processes, Some(7));
    assert!(!info.frozen);
}

#[test]
fn terminate_on_cgroup2_kills_through_cgroup_kill_and_renews_the_leaf() {
    let tmp = tempfile::tempdir().unwrap();
    let job = fixture_job(tmp.path(), "pids", &[]);
    let dir = v2_dir(tmp.path());
    // As the kernel reports it once cgroup.kill has emptied the job.
    fs::write(dir.join("cgroup.events"), "populated 0\nfrozen 0\n").unwrap();
    assert_eq!(job.terminate().unwrap(), 0);
    assert_eq!(read(dir.join("cgroup.kill")), "1");
    // Later spawns go to a leaf made after the kill (the CLONE_INTO_CGROUP
    // bug); the old one is removed on cgroupfs (here its plain file stays).
    assert!(dir.join("@1").is_dir());
    assert_eq!(leaf_numbers(&dir).max(), Some(1));
    assert!(job.wait_empty(Duration::ZERO).unwrap());
}

#[test]
fn terminate_on_cgroup_v1_freezes_kills_and_thaws() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, v1) = fixture_dirs(tmp.path(), "", &[Controller::Freezer, Controller::Pids]);
    let job = Job::with_backend(
        "j".into(),
        JobLimits::default(),
        Box::new(Direct::at("j", None, v1)),
    );
    let freezer = v1_dir(tmp.path(), Controller::Freezer);
    fs::write(freezer.join("freezer.state"), "THAWED").unwrap();
    assert_eq!(job.terminate().unwrap(), 0);
    // Frozen while the members were killed, thawed after.
    assert_eq!(read(freezer.join("freezer.state")), "THAWED");
    job.freeze().unwrap();
    assert_eq!(read(freezer.join("freezer.state")), "FROZEN");
    assert!(job.info().unwrap().frozen);
    job.thaw().unwrap();
    assert!(!job.info().unwrap().frozen);
}

#[test]
fn freeze_on_cgroup2_writes_cgroup_freeze() {
    let tmp = tempfile::tempdir().unwrap();
    let job = fixture_job(tmp.path(), "", &[]);
    let dir = v2_dir(tmp.path());
    fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    job.freeze().unwrap();
    assert_eq!(read(dir.join("cgroup.freeze")), "1");
    assert!(job.info().unwrap().frozen);
    fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    job.thaw().unwrap();
    assert_eq!(read(dir.join("cgroup.freeze")), "0");
}

#[test]
fn accounting_is_read_from_cgroup_v1_files_for_the_controllers_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let v1 = [Controller::Memory, Controller::Cpuacct, Controller::Pids];
    let (_, v1) = fixture_dirs(tmp.path(), "", &v1);
    let mut job = Job::with_backend(
        "j".into(),
        JobLimits::default(),
        Box::new(Direct::at("j", None, v1)),
    );
    job.set_limits(&JobLimits {
        job_memory: Some(1 << 30),
        ..Default::default()
    })
    .unwrap();
    let mem = v1_dir(tmp.path(), Controller::Memory);
    assert_eq!(read(mem.join("memory.limit_in_bytes")), "1073741824");
    fs::write(mem.join("memory.usage_in_bytes"), "4096\n").unwrap();
    fs::write(mem.join("memory.max_usage_in_bytes"), "8192\n").unwrap();
    fs::write(
        mem.join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    )
    .unwrap();
    let tick = crate::process::clock_ticks_per_second();
    fs::write(
        v1_dir(tmp.path(), Controller::Cpuacct).join("cpuacct.stat"),
        format!("user {}\nsystem {}\n", 3 * tick, tick),
    )
    .unwrap();
    let info = job.info().unwrap();
    assert_eq!(info.user_time, Duration::from_secs(3));
    assert_eq!(info.kernel_time, Duration::from_secs(1));
    assert_eq!(info.memory_current, Some(4096));
    assert_eq!(info.memory_peak, Some(8192));
    assert_eq!(info.oom_kills, Some(2));
    assert!(info.pids.is_empty());
}

#[test]
fn a_mode_opens_the_membership_files_never_the_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let job = fixture_job(tmp.path(), "", &[]);
    let dir = v2_dir(tmp.path());
    for f in ["cgroup.kill", "cgroup.freeze", "@0/cgroup.kill"] {
        fs::write(dir.join(f), "").unwrap();
    }
    job.site().backend.secure(0o777).unwrap();
    let mode = |p: PathBuf| {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    };
    assert_eq!(mode(dir.clone()), 0o755);
    assert_eq!(mode(dir.join("cgroup.procs")), 0o666);
    assert_eq!(mode(dir.join("cgroup.kill")), 0o666);
    assert_eq!(mode(dir.join("@0/cgroup.procs")), 0o666);
    job.site().backend.secure(0o700).unwrap();
    assert_eq!(mode(dir.clone()), 0o700);
    assert_eq!(mode(dir.join("@0/cgroup.procs")), 0o644);
}
