//! `taskloom top`: a live view of processes and jobs (ratatui on crossterm).
//!
//! Three threads, as bottom does it: a collector takes snapshots at the
//! interval and sends them, an input thread sends terminal events, and the
//! UI loop draws after each message, so keys are answered at once however
//! long a scan takes. The terminal is restored on `q`, on Ctrl-C, on a
//! panic (ratatui's hook) and on SIGTERM or SIGHUP (a flag the loop checks).

mod app;
mod collect;
mod view;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::OrTrace;
use anyhow::{Context, Result, bail};
use clap::Args;
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind,
};
use ratatui::crossterm::execute;
use taskloom::process::{Process, ProcessAccess};

pub use app::{Action, App, Flow, View};

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Time between refreshes (e.g. 1s, 500ms).
    #[arg(long, short = 'd', default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Print a snapshot per interval as JSON Lines (processes with CPU %, and jobs) instead of the live view.
    #[arg(long)]
    json: bool,
    /// Stop after this many refreshes (with --json).
    #[arg(long, short = 'n')]
    iterations: Option<u64>,
}

enum Msg {
    Snapshot(Box<collect::Snapshot>),
    Input(Event),
}

pub fn main(args: TopArgs) -> Result<i32> {
    if args.interval < Duration::from_millis(100) {
        bail!("--interval must be at least 100ms");
    }
    if args.json {
        return json_lines(&args);
    }
    if !std::io::stdout().is_terminal() {
        bail!(
            "taskloom top needs a terminal on standard output; for a pipe or a file use `taskloom top --json` (JSON Lines) or `taskloom ps`"
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("install signal handler")?;
    }
    let (tx, rx) = mpsc::channel();
    let interval = args.interval;
    let collector_tx = tx.clone();
    std::thread::Builder::new()
        .name("collector".into())
        .spawn(move || {
            let mut c = collect::Collector::default();
            loop {
                let snap = c.collect();
                if collector_tx.send(Msg::Snapshot(Box::new(snap))).is_err() {
                    return;
                }
                std::thread::sleep(interval);
            }
        })
        .context("start the collector thread")?;
    // The input thread waits for terminal events in short polls, so that it
    // sees the UI loop's end (`done`) without a message that would wake it.
    let done = Arc::new(AtomicBool::new(false));
    let input_done = Arc::clone(&done);
    std::thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            while !input_done.load(Ordering::Relaxed) {
                match event::poll(Duration::from_millis(200)) {
                    Ok(true) => {
                        let sent = event::read().map(|e| tx.send(Msg::Input(e)));
                        if !matches!(sent, Ok(Ok(()))) {
                            return;
                        }
                    }
                    Ok(false) => {}
                    Err(_) => return,
                }
            }
        })
        .context("start the input thread")?;
    let mut terminal = ratatui::init();
    execute!(std::io::stdout(), EnableMouseCapture)
        .or_trace(|| "turn on the terminal's mouse reports".into());
    let result = ui_loop(&mut terminal, &rx, &stop, interval);
    done.store(true, Ordering::Relaxed);
    execute!(std::io::stdout(), DisableMouseCapture)
        .or_trace(|| "turn off the terminal's mouse reports".into());
    ratatui::restore();
    result.map(|()| 0)
}

fn ui_loop(
    terminal: &mut ratatui::DefaultTerminal,
    rx: &mpsc::Receiver<Msg>,
    stop: &AtomicBool,
    interval: Duration,
) -> Result<()> {
    let mut app = App::new(interval.as_millis() as u64);
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(Msg::Snapshot(s)) => {
                app.update(*s);
                refresh_detail(&mut app);
            }
            Ok(Msg::Input(Event::Key(k))) if k.kind != KeyEventKind::Release => match app.key(k) {
                Flow::Quit => return Ok(()),
                Flow::Do(action) => {
                    app.status = act(&action);
                }
                Flow::Continue => {
                    if matches!(app.view, View::Detail(_)) {
                        refresh_detail(&mut app);
                    }
                }
            },
            Ok(Msg::Input(Event::Mouse(m))) => app.mouse(m),
            Ok(Msg::Input(Event::Resize(..))) => {}
            // Nothing on screen changes: no redraw.
            Ok(Msg::Input(_)) => continue,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
        terminal.draw(|f| view::draw(f, &app)).context("draw")?;
    }
}

/// Loads the detail view's data for the process it shows (a process that
/// ended shows why, it never fails the view).
fn refresh_detail(app: &mut App) {
    let View::Detail(pid) = app.view else {
        app.detail = None;
        return;
    };
    let data = taskloom::inspect::inspect(pid)
        .map(|info| app::Detail {
            info,
            threads: taskloom::inspect::threads(pid).unwrap_or_default(),
        })
        .map_err(|e| e.to_string());
    app.detail = Some((pid, data));
}

/// Carries out a confirmed action; the result is the status line.
fn act(action: &Action) -> String {
    use taskloom::process::{Process, ProcessAccess};
    let what = action.describe();
    let done = (|| -> Result<()> {
        match action {
            Action::TerminateProcess(pid) => {
                Ok(Process::open_with_access(*pid, ProcessAccess::TERMINATE)?.terminate()?)
            }
            Action::SuspendProcess(pid) => {
                Ok(Process::open_with_access(*pid, ProcessAccess::SUSPEND_RESUME)?.suspend()?)
            }
            Action::ResumeProcess(pid) => {
                Ok(Process::open_with_access(*pid, ProcessAccess::SUSPEND_RESUME)?.resume()?)
            }
            Action::Renice(pid, by) => renice(*pid, *by),
            Action::SetAffinity(pid, cpus) => set_affinity(*pid, cpus),
            Action::TerminateJob(name) => {
                Ok(taskloom::job::Job::open(name)?.terminate().map(drop)?)
            }
            Action::FreezeJob(name) => Ok(taskloom::job::Job::open(name)?.freeze()?),
            Action::ThawJob(name) => Ok(taskloom::job::Job::open(name)?.thaw()?),
        }
    })();
    match done {
        Ok(()) => format!("done: {what}"),
        Err(e) => format!("failed to {what}: {}", crate::output::error_chain(&e)),
    }
}

/// `SetProcessAffinityMask`: every thread of the process, as it is now.
fn set_affinity(pid: i32, cpus: &taskloom::cpuset::CpuSet) -> Result<()> {
    Process::open_with_access(pid, ProcessAccess::SET_INFORMATION)?.set_affinity(cpus)?;
    Ok(())
}

/// One step up or down in priority (nice), for every thread of the process.
fn renice(pid: i32, by: i32) -> Result<()> {
    let p = Process::open_with_access(pid, ProcessAccess::SET_INFORMATION)?;
    p.set_nice(p.nice()? + by)?;
    Ok(())
}

/// Bytes as JSON: a string when UTF-8, else `{"base64": …}` (as `taskloom ps`).
fn bytes(b: &[u8]) -> serde_json::Value {
    taskloom::inspect::bytes::serialize(b, serde_json::value::Serializer).unwrap_or_default()
}

/// `--json`: one JSON object per refresh.
fn json_lines(args: &TopArgs) -> Result<i32> {
    use std::io::Write;
    let mut c = collect::Collector::default();
    let mut out = std::io::stdout().lock();
    let mut n = 0u64;
    loop {
        let s = c.collect();
        let procs: Vec<serde_json::Value> = s
            .procs
            .iter()
            .map(|p| {
                serde_json::json!({
                    "pid": p.pid,
                    "ppid": p.ppid,
                    "user": p.user,
                    "name": bytes(&p.name),
                    "command": p.argv.iter().map(|a| bytes(a)).collect::<Vec<_>>(),
                    "state": p.state.to_string(),
                    "threads": p.threads,
                    "rss_bytes": p.rss,
                    "cpu_percent": (p.cpu * 10.0).round() / 10.0,
                    "job": p.job,
                    "kernel_thread": p.kernel_thread,
                    "classification": p.class,
                    "new": p.new,
                })
            })
            .collect();
        let jobs: Vec<serde_json::Value> = s
            .jobs
            .iter()
            .map(|j| {
                let mut v = serde_json::to_value(&j.info).unwrap_or_default();
                v["cpu_percent"] = serde_json::json!((j.cpu * 10.0).round() / 10.0);
                v
            })
            .collect();
        let line = serde_json::json!({
            "time": humantime::format_rfc3339_millis(s.taken.unwrap_or_else(std::time::SystemTime::now)).to_string(),
            "processes": procs,
            "ended": s.ended.iter().map(|(pid, name, _)| serde_json::json!({"pid": pid, "name": bytes(name)})).collect::<Vec<_>>(),
            "jobs": jobs,
            "jobs_error": s.jobs_error,
        });
        writeln!(out, "{line}")?;
        out.flush()?;
        n += 1;
        if args.iterations.is_some_and(|max| n >= max) {
            return Ok(0);
        }
        std::thread::sleep(args.interval);
    }
}

#[cfg(test)]
mod tests;
