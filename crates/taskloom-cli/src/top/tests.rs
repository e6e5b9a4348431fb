//! Every view drawn into ratatui's `TestBackend`, with hostile names.

use std::time::{Duration, SystemTime};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use taskloom::job::{JobInfo, JobLimits};
use taskloom::process::ProcessAccess;

use super::app::{Action, App, Flow, View};
use super::collect::{JobRow, Proc, Snapshot};
use super::view;

fn proc(pid: i32, ppid: i32, name: &[u8], cpu: f64) -> Proc {
    Proc {
        pid,
        ppid,
        user: "root".into(),
        name: name.to_vec(),
        command: String::new(),
        argv: Vec::new(),
        state: 'S',
        threads: 1,
        rss: 4 << 20,
        cpu,
        start_time: SystemTime::UNIX_EPOCH + Duration::from_secs(pid as u64),
        job: None,
        kernel_thread: false,
        class: taskloom::inspect::Classification::Normal,
        new: false,
    }
}

fn job(name: &str, procs: usize, limit: Option<u64>) -> JobRow {
    JobRow {
        info: JobInfo {
            name: name.into(),
            active_processes: procs,
            pids: Vec::new(),
            peak_processes: None,
            total_processes: None,
            user_time: Duration::from_millis(1500),
            kernel_time: Duration::ZERO,
            memory_current: Some(48 << 20),
            memory_peak: None,
            oom_kills: Some(0),
            memory_high_hits: None,
            violations: Vec::new(),
            process_limit_hits: Some(2),
            frozen: false,
            io: None,
            pressure: None,
            limits: JobLimits {
                active_processes: limit,
                job_memory: Some(64 << 20),
                ..Default::default()
            },
            kill_on_close: false,
        },
        cpu: 12.5,
    }
}

fn snapshot() -> Snapshot {
    let mut shell = proc(100, 1, b"bash", 0.5);
    shell.command = "bash -l".into();
    let mut worker = proc(200, 100, b"worker", 80.0);
    worker.job = Some("build".into());
    worker.command = "worker --fast".into();
    let mut zombie = proc(300, 100, b"defunct", 0.0);
    zombie.state = 'Z';
    let mut sealed = proc(150, 1, b"sealed", 0.2);
    sealed.class = taskloom::inspect::Classification::Protected;
    let mut kthread = proc(2, 0, b"kthreadd", 0.0);
    kthread.kernel_thread = true;
    Snapshot {
        procs: vec![
            proc(1, 0, b"init", 0.1),
            shell,
            worker,
            zombie,
            kthread,
            sealed,
        ],
        ended: vec![(400, b"gone".to_vec(), false)],
        jobs: vec![job("build", 3, Some(8)), job("build/tests", 1, None)],
        jobs_error: None,
        taken: Some(SystemTime::now()),
    }
}

/// The screen as lines of text.
fn draw(app: &App, w: u16, h: u16) -> Vec<String> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..h)
        .map(|y| {
            // A wide character fills two cells; the second is not text.
            let mut line = String::new();
            let mut x = 0;
            while x < w {
                let sym = buf[(x, y)].symbol();
                line.push_str(sym);
                x += unicode_width::UnicodeWidthStr::width(sym).max(1) as u16;
            }
            line
        })
        .collect()
}

fn app() -> App {
    let mut a = App::new(1000);
    a.update(snapshot());
    a
}

fn key(a: &mut App, code: KeyCode) -> Flow {
    a.key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn screen(lines: &[String]) -> String {
    lines.join("\n")
}

#[test]
fn the_process_view_sorts_by_cpu_and_hides_kernel_threads() {
    let a = app();
    let lines = draw(&a, 80, 24);
    let s = screen(&lines);
    assert!(lines[0].contains("taskloom top"), "{s}");
    assert!(
        lines[1].contains("PID") && lines[1].contains("COMMAND"),
        "{s}"
    );
    // Highest CPU first.
    assert!(
        lines[2].contains("200") && lines[2].contains("worker --fast"),
        "{s}"
    );
    assert!(lines[2].contains("build"), "the job column: {s}");
    assert!(
        !s.contains("kthreadd"),
        "kernel threads are hidden by default: {s}"
    );
    assert!(
        s.contains("gone (ended)"),
        "an ended process is shown once: {s}"
    );
    assert!(lines[23].contains("q quit"), "{s}");
    let mut a = a;
    key(&mut a, KeyCode::Char('K'));
    assert!(screen(&draw(&a, 80, 24)).contains("[kthreadd]"));
}

#[test]
fn the_tree_puts_children_under_their_parents() {
    let mut a = app();
    key(&mut a, KeyCode::Char('t'));
    let s = screen(&draw(&a, 80, 24));
    let at = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{needle}: {s}"));
    assert!(
        at("bash -l") < at("├─ worker --fast") || at("bash -l") < at("└─ worker --fast"),
        "{s}"
    );
    assert!(s.contains("─ defunct"), "{s}");
}

#[test]
fn filtering_keeps_matching_processes_only() {
    let mut a = app();
    key(&mut a, KeyCode::Char('/'));
    for c in "work".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    key(&mut a, KeyCode::Enter);
    let s = screen(&draw(&a, 80, 24));
    assert!(s.contains("worker --fast"), "{s}");
    assert!(!s.contains("bash -l"), "{s}");
    assert!(s.contains("filter: work"), "{s}");
    // By job name too.
    a.filter = "build".into();
    assert_eq!(a.rows().len(), 1);
}

#[test]
fn hostile_names_never_break_a_row() {
    let mut snap = snapshot();
    let hostile: [&[u8]; 4] = [
        b"new\nline",
        b"tab\there",
        b"bad\xff\xfeutf8",
        "宽字符宽字符宽字符宽字符宽字符宽字符宽字符宽字符".as_bytes(),
    ];
    for (i, name) in hostile.iter().enumerate() {
        snap.procs
            .push(proc(500 + i as i32, 1, name, 50.0 - i as f64));
    }
    snap.procs[1].command = "evil\x1b[2J\rcommand".into();
    let mut a = App::new(1000);
    a.update(snap);
    for w in [80, 120] {
        let lines = draw(&a, w, 24);
        let s = screen(&lines);
        assert!(s.contains("new\\nline"), "{s}");
        assert!(s.contains("tab\\there"), "{s}");
        assert!(s.contains("bad\u{fffd}\u{fffd}utf8"), "{s}");
        assert!(s.contains("宽字符"), "{s}");
        assert!(!s.contains('\x1b') && !s.contains('\r'), "{s}");
        // Every process is on a line of its own, with its pid first.
        for pid in [500, 501, 502, 503] {
            assert_eq!(
                lines
                    .iter()
                    .filter(|l| l.starts_with(&format!("{pid} ")))
                    .count(),
                1,
                "{s}"
            );
        }
    }
}

#[test]
fn the_job_view_shows_limits_usage_and_history() {
    let mut a = app();
    a.update(snapshot());
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.view, View::Jobs);
    let lines = draw(&a, 80, 24);
    let s = screen(&lines);
    assert!(
        s.contains("JOB") && s.contains("PROCS") && s.contains("MEMORY"),
        "{s}"
    );
    assert!(s.contains("3/8"), "processes against their limit: {s}");
    assert!(s.contains("48M/64M"), "memory against its limit: {s}");
    assert!(
        s.contains("  tests"),
        "a nested job sits under its parent: {s}"
    );
    assert!(s.contains("procs×2"), "limit hits: {s}");
    assert!(s.contains("job build"), "the selected job's gauges: {s}");
    assert!(s.contains("processes 3/8"), "{s}");
    assert!(s.contains("cpu %") && s.contains("memory"), "{s}");
    assert_eq!(a.history["build"].len(), 2);
    // Enter lists the job's processes.
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.view, View::Processes);
    assert_eq!(a.filter, "build");
}

#[test]
fn the_detail_view_says_when_its_process_ended() {
    let mut a = app();
    key(&mut a, KeyCode::Enter);
    let View::Detail(pid) = a.view else {
        panic!("{:?}", a.view)
    };
    assert_eq!(pid, 200);
    a.detail = Some((200, Err("no such process: 200".into())));
    let s = screen(&draw(&a, 80, 24));
    assert!(s.contains("Threads") && s.contains("Environment"), "{s}");
    assert!(s.contains("process 200: no such process"), "{s}");
    // A live process: this test's own.
    let me = std::process::id() as i32;
    a.view = View::Detail(me);
    a.detail = Some((
        me,
        Ok(super::app::Detail {
            info: taskloom::inspect::inspect(me).unwrap(),
            threads: taskloom::inspect::threads(me).unwrap(),
        }),
    ));
    let s = screen(&draw(&a, 120, 40));
    assert!(s.contains("TID") && s.contains(&me.to_string()), "{s}");
    for _ in 0..super::app::TABS.len() {
        key(&mut a, KeyCode::Tab);
        draw(&a, 80, 24);
    }
    a.tab = 1;
    assert!(screen(&draw(&a, 120, 40)).contains("BASE"));
}

#[test]
fn help_shows_every_key_and_any_key_closes_it() {
    let mut a = app();
    key(&mut a, KeyCode::Char('?'));
    let s = screen(&draw(&a, 80, 24));
    assert!(s.contains("keys") && s.contains("filter by name"), "{s}");
    key(&mut a, KeyCode::Char('x'));
    assert!(!a.help);
    assert!(!screen(&draw(&a, 80, 24)).contains("filter by name"));
}

#[test]
fn actions_ask_first_and_quit_keys_quit() {
    let mut a = app();
    assert_eq!(key(&mut a, KeyCode::Char('k')), Flow::Continue);
    assert!(
        a.status.contains("terminate process 200? y"),
        "{}",
        a.status
    );
    assert_eq!(
        key(&mut a, KeyCode::Char('y')),
        Flow::Do(Action::TerminateProcess(200))
    );
    key(&mut a, KeyCode::Char('k'));
    assert_eq!(key(&mut a, KeyCode::Char('n')), Flow::Continue);
    assert!(a.status.starts_with("cancelled"));
    key(&mut a, KeyCode::Tab);
    key(&mut a, KeyCode::Char('f'));
    assert_eq!(
        key(&mut a, KeyCode::Char('y')),
        Flow::Do(Action::FreezeJob("build".into()))
    );
    // Affinity: typed, checked, then confirmed.
    key(&mut a, KeyCode::Tab);
    key(&mut a, KeyCode::Char('a'));
    for c in "0-1,x".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    assert!(screen(&draw(&a, 80, 24)).contains("CPUs for process 200"));
    key(&mut a, KeyCode::Enter);
    assert!(a.status.starts_with("not a CPU list"), "{}", a.status);
    key(&mut a, KeyCode::Char('a'));
    for c in "0-1".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    key(&mut a, KeyCode::Enter);
    assert_eq!(
        key(&mut a, KeyCode::Char('y')),
        Flow::Do(Action::SetAffinity(
            200,
            taskloom::cpuset::CpuSet::parse_list("0-1").unwrap()
        ))
    );
    assert_eq!(key(&mut a, KeyCode::Char('q')), Flow::Quit);
    assert_eq!(
        a.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Flow::Quit
    );
}

#[test]
fn vanished_processes_and_tiny_terminals_never_panic() {
    let mut a = app();
    key(&mut a, KeyCode::End);
    // The next snapshot has none of them.
    a.update(Snapshot::default());
    for (w, h) in [(80, 24), (20, 5), (1, 1), (200, 60)] {
        draw(&a, w, h);
        a.view = View::Jobs;
        draw(&a, w, h);
        a.view = View::Detail(12345);
        draw(&a, w, h);
        a.help = true;
        draw(&a, w, h);
        a.help = false;
        a.view = View::Processes;
    }
    assert_eq!(a.selected, 0);
}

#[test]
fn confirmed_actions_act_on_the_process_and_say_how_it_went() {
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let cpus = taskloom::cpuset::CpuSet::parse_list("0").unwrap();
    let said = super::act(&Action::SetAffinity(pid, cpus));
    assert!(said.starts_with("done"), "{said}");
    let now = taskloom::process::Process::open_with_access(pid, ProcessAccess::QUERY_INFORMATION)
        .unwrap()
        .affinity()
        .unwrap();
    assert_eq!(now.to_string(), "0");
    let said = super::act(&Action::Renice(pid, 1));
    assert!(said.starts_with("done"), "{said}");
    let said = super::act(&Action::TerminateProcess(pid));
    assert!(said.starts_with("done"), "{said}");
    assert!(child.wait().unwrap().code().is_none(), "killed by a signal");
    // A process that is not there (a number above any pid_max, never a
    // stranger's): said so, not a panic.
    let said = super::act(&Action::SuspendProcess(i32::MAX));
    assert!(said.starts_with("failed to suspend process"), "{said}");
}
