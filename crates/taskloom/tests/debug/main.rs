//! Debug events (`DEBUG_PROCESS`) against a small C program built here with
//! the system's C compiler, as a debugger's user would see them.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use taskloom::debug::{Continue, DebugEvent, DebugMode, Debugger};
use taskloom::process::{ProcessBuilder, Stdio};

const PROGRAM: &str = r#"
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_usr1(int s) { (void)s; write(1, "handled\n", 8); }
static void *thread_main(void *a) { (void)a; return 0; }

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "crash")) { *(volatile int *)0x10 = 1; }
    if (!strcmp(argv[1], "fork")) {
        pid_t p = fork();
        if (p == 0) _exit(7);
        waitpid(p, 0, 0);
        return 0;
    }
    if (!strcmp(argv[1], "dlopen")) {
        void *h = dlopen("libm.so.6", RTLD_NOW);
        if (!h) return 3;
        dlclose(h);
        return 0;
    }
    if (!strcmp(argv[1], "signal")) {
        signal(SIGUSR1, on_usr1);
        raise(SIGUSR1);
        write(1, "after\n", 6);
        return 0;
    }
    if (!strcmp(argv[1], "threads")) {
        int n = argc > 2 ? atoi(argv[2]) : 4;
        for (int i = 0; i < n; i++) {
            pthread_t t;
            pthread_create(&t, 0, thread_main, 0);
            pthread_join(t, 0);
        }
        return 0;
    }
    return 1;
}
"#;

/// The test program, compiled once per test binary.
fn program() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("taskloom-debug-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("probe.c");
        std::fs::write(&src, PROGRAM).unwrap();
        let exe = dir.join("probe");
        let out = std::process::Command::new("cc")
            .arg("-O0")
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .args(["-ldl", "-lpthread"])
            .output()
            .expect("a C compiler (cc) is needed to build the debug tests' program");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        exe
    })
}

/// Every event until the debuggee's processes have all ended, continuing
/// each with `how` (for exceptions: `decide`).
fn run(
    args: &[&str],
    mode: DebugMode,
    decide: impl Fn(&DebugEvent) -> Continue,
) -> Vec<DebugEvent> {
    let mut b = ProcessBuilder::new(program()).args(args.iter().copied());
    b = b.stdout(Stdio::Null);
    events_of(Debugger::spawn(b, mode).unwrap(), decide)
}

fn events_of(mut d: Debugger, decide: impl Fn(&DebugEvent) -> Continue) -> Vec<DebugEvent> {
    let mut events = Vec::new();
    while let Some(e) = d.wait_event(Some(Duration::from_secs(30))).unwrap() {
        let how = decide(&e);
        events.push(e);
        d.continue_event(how).unwrap();
        assert!(events.len() < 10_000, "runaway: {events:?}");
    }
    events
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn exits(events: &[DebugEvent]) -> Vec<(i32, Option<i32>, Option<i32>)> {
    events
        .iter()
        .filter_map(|e| match e {
            DebugEvent::ExitProcess { pid, code, signal } => Some((*pid, *code, *signal)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_crash_is_reported_with_its_address_before_the_exit_which_comes_last() {
    let events = run(&["crash"], DebugMode::Process, |_| Continue::NotHandled);
    assert!(
        matches!(events[0], DebugEvent::CreateProcess { how: "spawn", .. }),
        "{events:?}"
    );
    let crash = events
        .iter()
        .position(|e| {
            matches!(
                e,
                DebugEvent::Exception {
                    signal: 11,
                    address: Some(0x10),
                    first_chance: true,
                    ..
                }
            )
        })
        .unwrap_or_else(|| panic!("no SIGSEGV at 0x10: {events:?}"));
    let last = events.len() - 1;
    assert!(crash < last);
    assert!(
        matches!(
            events[last],
            DebugEvent::ExitProcess {
                signal: Some(11),
                ..
            }
        ),
        "{events:?}"
    );
}

#[test]
fn debug_process_follows_a_fork_and_only_this_process_does_not() {
    let all = run(&["fork"], DebugMode::Process, |_| Continue::NotHandled);
    let created: Vec<_> = all
        .iter()
        .filter(|e| matches!(e, DebugEvent::CreateProcess { .. }))
        .collect();
    assert_eq!(created.len(), 2, "{all:?}");
    assert!(
        matches!(
            created[1],
            DebugEvent::CreateProcess {
                how: "fork",
                parent: Some(_),
                ..
            }
        ),
        "{all:?}"
    );
    let ends = exits(&all);
    assert_eq!(ends.len(), 2, "{all:?}");
    assert!(ends.iter().any(|(_, code, _)| *code == Some(7)), "{all:?}");
    assert!(matches!(
        all.last(),
        Some(DebugEvent::ExitProcess { code: Some(0), .. })
    ));

    let one = run(&["fork"], DebugMode::OnlyThisProcess, |_| {
        Continue::NotHandled
    });
    let created = one
        .iter()
        .filter(|e| matches!(e, DebugEvent::CreateProcess { .. }))
        .count();
    assert_eq!(created, 1, "{one:?}");
    assert_eq!(exits(&one), [(exits(&one)[0].0, Some(0), None)], "{one:?}");
}

#[test]
fn dlopen_and_dlclose_are_reported_from_the_loaders_list() {
    let events = run(&["dlopen"], DebugMode::Process, |_| Continue::NotHandled);
    let libm = |e: &DebugEvent| match e {
        DebugEvent::LoadDll { base, path, .. } if path.ends_with(b"libm.so.6") => {
            Some(("load", *base))
        }
        DebugEvent::UnloadDll { base, path, .. } if path.ends_with(b"libm.so.6") => {
            Some(("unload", *base))
        }
        _ => None,
    };
    let seen: Vec<_> = events.iter().filter_map(libm).collect();
    assert_eq!(seen.len(), 2, "{events:?}");
    assert_eq!(seen[0].0, "load");
    assert_eq!(seen[1].0, "unload");
    assert_eq!(seen[0].1, seen[1].1, "the same base");
    assert_ne!(seen[0].1, 0);
    // The main image, the loader and libc were reported at the start.
    let loads: Vec<&[u8]> = events
        .iter()
        .filter_map(|e| match e {
            DebugEvent::LoadDll { path, .. } => Some(path.as_slice()),
            _ => None,
        })
        .collect();
    assert!(loads[0].ends_with(b"/probe"), "{events:?}");
    assert!(loads.iter().any(|p| contains(p, b"ld-linux")), "{events:?}");
    assert!(loads.iter().any(|p| contains(p, b"libc.so")), "{events:?}");
    assert!(matches!(
        events.last(),
        Some(DebugEvent::ExitProcess { code: Some(0), .. })
    ));
}

fn signal_run(how: Continue) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let f = std::fs::File::create(&out).unwrap();
    let b = ProcessBuilder::new(program())
        .arg("signal")
        .stdout(Stdio::Fd(f.into()));
    let events = events_of(
        Debugger::spawn(b, DebugMode::Process).unwrap(),
        |e| match e {
            DebugEvent::Exception { signal, .. } if *signal == libc::SIGUSR1 => how,
            _ => Continue::NotHandled,
        },
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, DebugEvent::Exception { signal, .. } if *signal == libc::SIGUSR1)),
        "{events:?}"
    );
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn an_exception_passed_on_reaches_the_handler_and_a_swallowed_one_does_not() {
    assert_eq!(signal_run(Continue::NotHandled), "handled\nafter\n");
    assert_eq!(signal_run(Continue::Handled), "after\n");
}

#[test]
fn threads_are_reported_created_and_exited_with_their_process() {
    let events = run(&["threads", "5"], DebugMode::Process, |_| {
        Continue::NotHandled
    });
    let created = events
        .iter()
        .filter(|e| matches!(e, DebugEvent::CreateThread { .. }))
        .count();
    let exited = events
        .iter()
        .filter(|e| matches!(e, DebugEvent::ExitThread { .. }))
        .count();
    assert_eq!(created, 5, "{events:?}");
    // The five threads and the main thread.
    assert_eq!(exited, 6, "{events:?}");
    assert!(matches!(
        events.last(),
        Some(DebugEvent::ExitProcess { code: Some(0), .. })
    ));
}

#[test]
fn detach_lets_the_program_run_on_as_if_never_traced() {
    let b = ProcessBuilder::new(program())
        .args(["dlopen"])
        .stdout(Stdio::Null);
    let mut d = Debugger::spawn(b, DebugMode::Process).unwrap();
    // Up to the end of the loader's start (libc reported): the r_brk
    // breakpoint is in place, and must be gone after the detach.
    loop {
        let e = d
            .wait_event(Some(Duration::from_secs(30)))
            .unwrap()
            .unwrap();
        let libc_loaded =
            matches!(&e, DebugEvent::LoadDll { path, .. } if contains(path, b"libc.so"));
        if libc_loaded {
            break;
        }
        d.continue_event(Continue::NotHandled).unwrap();
    }
    let mut p = d.detach().unwrap();
    let status = p
        .wait_timeout(Duration::from_secs(30))
        .unwrap()
        .expect("it ends");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn attaching_where_ptrace_refuses_is_a_typed_error() {
    // pid 1 is not ours to trace unless we are root with CAP_SYS_PTRACE:
    // as root this attaches to... nothing we may stop, so ask for a pid that
    // does not exist instead, and check the kind of error.
    let err = Debugger::attach(i32::MAX, DebugMode::Process).unwrap_err();
    assert!(
        matches!(err, taskloom::Error::NoSuchProcess { .. }),
        "{err}"
    );
}

#[test]
fn attach_reports_the_running_process_and_detach_lets_it_go() {
    let mut child = ProcessBuilder::new("sleep")
        .arg("30")
        .stdout(Stdio::Null)
        .spawn()
        .unwrap();
    // Let it reach main (its libraries loaded).
    std::thread::sleep(Duration::from_millis(100));
    let mut d = Debugger::attach(child.pid(), DebugMode::Process).unwrap();
    let mut events = Vec::new();
    while let Some(e) = d.wait_event(Some(Duration::from_millis(300))).unwrap() {
        events.push(e);
        d.continue_event(Continue::NotHandled).unwrap();
    }
    assert!(
        matches!(events[0], DebugEvent::CreateProcess { how: "attach", .. }),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, DebugEvent::LoadDll { path, .. } if contains(path, b"libc.so"))),
        "the libraries it has: {events:?}"
    );
    let p = d.detach().unwrap();
    assert_eq!(p.pid(), child.pid());
    // Running on, untraced: it still answers signals, and ends by ours.
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.pid())).unwrap();
    assert!(status.contains("TracerPid:\t0"), "{status}");
    child.terminate().unwrap();
    assert!(child.wait().unwrap().signal().is_some());
}
