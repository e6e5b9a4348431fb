//! Inspection against live processes with hostile names, and the parsers
//! against generated `/proc` files.
#![cfg(target_os = "linux")]

#[path = "../common/mod.rs"]
mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use taskloom::inspect::{self, Classification, SnapshotOptions, parse};
use taskloom::process::{Process, ProcessBuilder, Stdio};

/// Names the kernel will show as `comm` (at most 15 bytes), each hostile to a naive parser.
const ODD_NAMES: [&[u8]; 6] = [
    b"x) S 1 (y z",
    b"a\nb",
    b"a\tb",
    b"a:b: c",
    b"\xff\xfex",
    b"sp ace ) (",
];

/// Starts a shell through a symlink named `name` (so that its command name
/// is `name`) that waits on its stdin, with `extra_arg` as its `$0`.
fn start_named(dir: &std::path::Path, name: &[u8], extra_arg: &[u8]) -> Process {
    let link: PathBuf = dir.join(OsStr::from_bytes(name));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/bin/sh", &link).unwrap();
    ProcessBuilder::new(&link)
        .args(["-c", "read x"])
        .arg(OsStr::from_bytes(extra_arg))
        .stdin(Stdio::Piped)
        .spawn()
        .unwrap()
}

#[test]
fn hostile_names_and_arguments_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut children: Vec<(Process, &[u8])> = ODD_NAMES
        .iter()
        .map(|n| (start_named(dir.path(), n, b"arg\n\xff"), *n))
        .collect();
    let snap = inspect::snapshot(SnapshotOptions {
        cmdline: true,
        ..Default::default()
    })
    .unwrap();
    for (child, name) in &children {
        let row = snap.iter().find(|e| e.pid == child.pid()).expect("listed");
        assert_eq!(row.name, *name, "snapshot name of {}", child.pid());
        assert_eq!(row.cmdline.len(), 4, "{:?}", row.cmdline);
        assert_eq!(
            row.cmdline[0],
            dir.path()
                .join(OsStr::from_bytes(name))
                .as_os_str()
                .as_bytes()
        );
        assert_eq!(row.cmdline[3], b"arg\n\xff", "argument bytes");
        let info = inspect::inspect(child.pid()).unwrap();
        assert_eq!(info.basic.name, *name);
        // JSON is valid and gives the bytes back.
        let text = serde_json::to_string(&info).unwrap();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(inspect::bytes::from_json(&back["name"]).unwrap(), *name);
        assert_eq!(
            inspect::bytes::from_json(&back["cmdline"][3]).unwrap(),
            b"arg\n\xff"
        );
    }
    for (child, _) in &mut children {
        child.terminate().unwrap();
        child.wait().unwrap();
    }
}

/// The owner column and kernel threads, in both listings: a process's uid
/// comes from its own `/proc` files, and a kernel thread has no command line.
#[test]
fn snapshot_owners_and_kernel_threads() {
    let me = rustix::process::geteuid().as_raw();
    // As root, a child running as `nobody` shows that the owner is per
    // process, not the caller's; otherwise the child is ours.
    let (creds, want) = if me == 0 {
        let c = taskloom::process::Credentials::for_user("nobody").expect("a nobody user");
        let uid = c.uid;
        (Some(c), uid)
    } else {
        eprintln!("not root: the owner check uses a child of our own uid only");
        (None, me)
    };
    let mut b = ProcessBuilder::new("sleep").arg("30").stdin(Stdio::Null);
    if let Some(c) = creds {
        b = b.credentials(c);
    }
    let mut child = b.spawn().unwrap();
    for threads in [false, true] {
        let snap = inspect::snapshot(SnapshotOptions {
            cmdline: true,
            threads,
            ..Default::default()
        })
        .unwrap();
        let row = snap
            .iter()
            .find(|e| e.pid == child.pid())
            .expect("child listed");
        assert_eq!(
            row.uid,
            Some(want),
            "owner of the child (threads: {threads})"
        );
        assert_eq!(row.cmdline, [b"sleep".to_vec(), b"30".to_vec()]);
        let own = snap
            .iter()
            .find(|e| e.pid == std::process::id() as i32)
            .expect("this process listed");
        assert_eq!(own.uid, Some(me));
        // kthreadd (pid 2) exists whenever this is not a pid namespace of its own.
        if let Some(k) = snap.iter().find(|e| e.pid == 2 && e.name == b"kthreadd") {
            assert!(k.kernel_thread, "kthreadd is a kernel thread");
            assert!(k.cmdline.is_empty(), "a kernel thread has no command line");
            assert_eq!(k.uid, Some(0));
        }
    }
    child.terminate().unwrap();
    child.wait().unwrap();
}

#[test]
fn snapshots_survive_processes_starting_and_ending_fast() {
    // One shell starting short-lived processes back to back (serially: bounded), for two seconds at most.
    let mut churn = ProcessBuilder::new("sh")
        .arg("-c")
        .arg("end=$(( $(date +%s) + 2 )); while [ $(date +%s) -lt $end ]; do /bin/true; done")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut rounds = 0;
    while Instant::now() < deadline {
        let snap = inspect::snapshot(SnapshotOptions {
            cmdline: true,
            threads: rounds % 2 == 1,
            ..Default::default()
        })
        .unwrap();
        assert!(
            snap.iter()
                .any(|e| e.pid == std::process::id() as i32 || e.tgid == std::process::id() as i32)
        );
        rounds += 1;
    }
    assert!(rounds > 5);
    churn.terminate().unwrap();
    churn.wait().unwrap();
}

#[test]
fn classification_of_kernel_threads_zombies_and_normal_processes() {
    let kthreadd = inspect::inspect(2).unwrap();
    assert_eq!(
        kthreadd.classification,
        Classification::Minimal,
        "{}",
        kthreadd.classification_reason
    );
    let me = inspect::inspect(std::process::id() as i32).unwrap();
    assert_eq!(
        me.classification,
        Classification::Normal,
        "{}",
        me.classification_reason
    );

    let mut z = ProcessBuilder::new("sh")
        .arg("-c")
        .arg("exit 3")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let info = loop {
        let info = inspect::inspect(z.pid()).unwrap();
        if info.basic.state == 'Z' || Instant::now() > deadline {
            break info;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(info.classification, Classification::Zombie);
    assert_eq!(info.exit_code, Some(3 << 8), "waitpid encoding of exit(3)");
    assert!(info.basic.cmdline.is_empty());
    z.wait().unwrap();
}

#[test]
fn a_process_in_another_pid_namespace_is_pico() {
    if !rustix::process::geteuid().is_root() || std::fs::metadata("/usr/bin/unshare").is_err() {
        common::not_run(
            "a_process_in_another_pid_namespace_is_pico",
            "needs root and unshare(1)",
        );
        return;
    }
    let mut outer = ProcessBuilder::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "sleep", "30"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let inner = loop {
        let snap = inspect::snapshot(SnapshotOptions::default()).unwrap();
        if let Some(e) = snap
            .iter()
            .find(|e| e.ppid == outer.pid() && e.name == b"sleep")
        {
            break e.pid;
        }
        assert!(
            Instant::now() < deadline,
            "the namespaced sleep did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let info = inspect::inspect(inner).unwrap();
    assert_eq!(
        info.classification,
        Classification::Pico,
        "{}",
        info.classification_reason
    );
    outer.terminate().unwrap();
    outer.wait().unwrap();
    // The inner sleep is the namespace's init; --kill-child has the kernel
    // SIGKILL it when unshare dies (PR_SET_PDEATHSIG), so nothing is left.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{inner}")).exists() {
        assert!(
            Instant::now() < deadline,
            "the namespaced sleep outlived unshare"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn handles_token_modules_and_threads_of_this_process() {
    let (_r, _w) = std::io::pipe().unwrap();
    let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
    let info = inspect::inspect(std::process::id() as i32).unwrap();
    let handles = info.handles.unwrap();
    assert!(
        handles
            .iter()
            .any(|h| h.kind == "pipe" && h.cloexec == Some(true)),
        "{handles:?}"
    );
    let efd_num = std::os::fd::AsRawFd::as_raw_fd(&efd);
    assert!(
        handles
            .iter()
            .any(|h| h.fd == efd_num && h.kind == "eventfd"),
        "{handles:?}"
    );
    let token = info.token.unwrap();
    assert_eq!(token.uid[0], rustix::process::getuid().as_raw());
    let modules = info.modules.unwrap();
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    assert!(
        modules.iter().any(|m| m.path == exe.as_os_str().as_bytes()),
        "the image itself is a module"
    );
    let threads = info.thread_list.unwrap();
    assert!(
        threads
            .iter()
            .any(|t| t.tid == std::process::id() as i32 && t.stack.is_some())
    );
    assert!(
        info.denied.is_empty() || !rustix::process::geteuid().is_root(),
        "{:?}",
        info.denied
    );
}

#[test]
fn a_vanished_process_is_an_error_only_when_asked_for_by_pid() {
    let mut p = ProcessBuilder::new("true").spawn().unwrap();
    let pid = p.pid();
    p.wait().unwrap();
    assert!(matches!(
        inspect::inspect(pid),
        Err(taskloom::Error::NoSuchProcess { .. })
    ));
    assert!(matches!(
        inspect::threads(pid),
        Err(taskloom::Error::NoSuchProcess { .. })
    ));
}

fn stat_line(pid: i32, comm: &[u8], fields: &[u64]) -> Vec<u8> {
    let mut line = format!("{pid} (").into_bytes();
    line.extend_from_slice(comm);
    line.extend_from_slice(b") S");
    for f in fields {
        line.extend_from_slice(format!(" {f}").as_bytes());
    }
    line.push(b'\n');
    line
}

proptest! {
    #[test]
    fn stat_parses_any_name(pid in 1i32..4_000_000, comm in proptest::collection::vec(any::<u8>(), 0..16),
                            fields in proptest::collection::vec(0u64..1_000_000, 49..52)) {
        let line = stat_line(pid, &comm, &fields);
        let s = parse::parse_stat(&line).unwrap();
        prop_assert_eq!(s.pid, pid);
        prop_assert_eq!(&s.comm, &comm);
        prop_assert_eq!(s.ppid as u64, fields[0]);
        prop_assert_eq!(s.utime, fields[10]);
        prop_assert_eq!(s.stime, fields[11]);
        prop_assert_eq!(s.starttime, fields[18]);
    }

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse::parse_stat(&bytes);
        let _ = parse::parse_status(&bytes);
        let _ = parse::parse_maps(&bytes);
        let _ = parse::split_nul(&bytes);
        let _ = parse::fdinfo_flags(&bytes);
    }

    #[test]
    fn nul_lists_round_trip(items in proptest::collection::vec(proptest::collection::vec(1u8..=255, 0..20), 1..8)) {
        let mut buf = Vec::new();
        for i in &items {
            buf.extend_from_slice(i);
            buf.push(0);
        }
        prop_assert_eq!(parse::split_nul(&buf), items);
    }
}

#[test]
fn thread_listings_show_each_thread() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let t = taskloom::thread::ThreadBuilder::new()
        .name("tl-snap-thr")
        .spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
            0
        })
        .unwrap();
    let tid = t.tid();
    let me = std::process::id() as i32;
    let snap = inspect::snapshot(SnapshotOptions {
        threads: true,
        ..Default::default()
    })
    .unwrap();
    let row = snap
        .iter()
        .find(|e| e.pid == tid)
        .expect("the thread is listed");
    assert_eq!((row.tgid, row.name.as_slice()), (me, &b"tl-snap-thr"[..]));
    assert!(
        snap.iter().any(|e| e.pid == me && e.tgid == me),
        "the main thread too"
    );
    let threads = inspect::threads(me).unwrap();
    assert!(
        threads
            .iter()
            .any(|x| x.tid == tid && x.name == b"tl-snap-thr")
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    t.join().unwrap();
}

#[test]
fn user_names_come_from_nss() {
    assert_eq!(taskloom::inspect::user_name(0), Some("root"));
    assert_eq!(taskloom::inspect::user_name(65534), Some("nobody"));
    assert_eq!(taskloom::inspect::user_name(4_000_000_123), None);
    // Cached: the same name again.
    assert_eq!(taskloom::inspect::user_name(0), Some("root"));
}

#[test]
fn classification_alone_matches_what_inspect_says() {
    use taskloom::inspect::{Classification, classification, inspect};
    let me = std::process::id() as i32;
    let (class, why) = classification(me).unwrap();
    assert_eq!(class, Classification::Normal, "{why}");
    assert_eq!(inspect(me).unwrap().classification, class);
    // A child that exited and was not waited for yet.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while classification(pid).unwrap().0 != Classification::Zombie {
        assert!(std::time::Instant::now() < deadline, "never a zombie");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.wait().unwrap();
    assert!(matches!(
        classification(i32::MAX),
        Err(taskloom::Error::NoSuchProcess { .. })
    ));
}
