//! `taskloom run` on Linux.
//!
//! One thread does everything: it sleeps until the program ends or a
//! signal arrives (the library's [`ControlEvents`]), and wakes for the next
//! deadline (resume, time-out,
//! kill-after, the job watcher's tick). So the run ends the moment the
//! program does, and a signal is handled the moment it arrives.
//!
//! Signals (as `tini` and `timeout` do): SIGHUP, SIGINT, SIGQUIT, SIGTERM,
//! SIGUSR1 and SIGUSR2 that reach taskloom are forwarded to PROGRAM (not to
//! the rest of the job, which dies when the job closes). A signal the
//! terminal sent to its whole foreground group (Ctrl-C, Ctrl-\, hang-up) has
//! reached PROGRAM already when it shares taskloom's group, and is not sent
//! twice. A second SIGINT within [`SECOND_INTERRUPT`] terminates the job.
//! Once PROGRAM has ended (`--wait-all`), SIGHUP, SIGINT, SIGQUIT and
//! SIGTERM terminate the job and SIGUSR1/2 go to every member.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::OrTrace;
use anyhow::{Context, Result};
use clap::Args;
use taskloom::debug::{Continue, DebugEvent, DebugMode, Debugger};
use taskloom::job::{Job, JobEvent, JobWatcher, process_time_secs};
use taskloom::process::{
    ControlEvents, Credentials, ExitStatus, Process, ProcessAccess, ProcessBuilder, signal_name,
    signals,
};

use super::{
    CommonArgs, EMPTY_TICK, EndedBy, JobGuard, JobSummary, LONGEST, Outcome, SECOND_INTERRUPT,
    parse_bounded_duration,
};

/// How often the job watcher looks for limits hit and counts members.
const WATCH_TICK: Duration = Duration::from_millis(50);
/// The signals taskloom forwards to PROGRAM.
const FORWARDED: [i32; 6] = [
    signals::HUP,
    signals::INT,
    signals::QUIT,
    signals::TERM,
    signals::USR1,
    signals::USR2,
];

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Run as this user (name or uid), with its groups (CreateProcessAsUser).
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Run as USER after checking USER's password through PAM, in a PAM
    /// session, with USER's home directory and login environment
    /// (CreateProcessWithLogonW). The password is read from the terminal
    /// without echo, or with --password-stdin from standard input.
    #[arg(long, value_name = "USER", conflicts_with_all = ["user", "group"])]
    logon: Option<String>,
    /// With --logon: read the password from the first line of standard input.
    #[arg(long, requires = "logon")]
    password_stdin: bool,
    /// Run with this primary group (name or gid).
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// The signal --timeout sends first (name or number).
    #[arg(long, value_name = "SIGNAL", default_value = "TERM", value_parser = parse_signal, requires = "timeout")]
    signal: i32,
    /// How long after --signal the job is terminated.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_bounded_duration, requires = "timeout")]
    kill_after: Duration,
    /// Let PROGRAM and its children move themselves out of the job. By
    /// default they start in a cgroup namespace rooted at the job (for an
    /// unprivileged user, inside a user namespace that maps only that user,
    /// where set-user-ID programs such as sudo gain nothing), so that they
    /// cannot leave it nor change its limits; `taskloom job caps` says
    /// whether this machine enforces that.
    #[arg(long, conflicts_with = "no_job")]
    uncontained: bool,
    /// Hide the user's service manager and buses (session and system bus,
    /// systemd's private sockets) from PROGRAM and its children, so that
    /// none of them can have a process started outside the job
    /// (`systemd-run --user` fails). Off by default: desktop programs need
    /// a session bus. Needs a contained job; taskloom fails where it
    /// cannot hide them.
    #[arg(long, conflicts_with_all = ["no_job", "uncontained"])]
    no_services: bool,
    /// Run PROGRAM under taskloom's debugger (DEBUG_PROCESS: its children
    /// too) and print each debug event on stderr, one a line (JSON Lines with
    /// --json); every exception is passed on to the program, which runs to its end.
    #[arg(long, conflicts_with_all = ["suspended_for", "timeout"])]
    debug_events: bool,
    /// With --debug-events: the program only, not its children (DEBUG_ONLY_THIS_PROCESS).
    #[arg(long, requires = "debug_events")]
    debug_only_this_process: bool,
    /// Start PROGRAM as a protected process: from its first instruction no
    /// other process of your user may read its memory, environment or
    /// descriptors or trace it (root still can). PROGRAM must be an ELF
    /// executable; what it executes in turn is not protected. Not in a
    /// contained job of an ordinary user (its user namespace is yours): add
    /// --uncontained or --no-job.
    #[arg(long, conflicts_with = "debug_events")]
    protected: bool,
    #[command(flatten)]
    pico: super::pico::PicoArgs,
}

fn parse_signal(s: &str) -> Result<i32, String> {
    taskloom::process::signal_number(s)
        .ok_or_else(|| format!("{s:?} is not a signal (try TERM, INT, KILL or a number)"))
}

/// The user and group the program runs as, from `--user` and `--group`.
fn credentials(user: Option<&str>, group: Option<&str>) -> Result<Option<Credentials>> {
    let mut creds = match user {
        Some(u) => Credentials::for_user(u)?,
        None if group.is_some() => Credentials::of_caller(),
        None => return Ok(None),
    };
    if let Some(g) = group {
        let gid = Credentials::group_id(g)?;
        creds.gid = gid;
        if user.is_none() {
            creds.groups = vec![gid];
        } else if !creds.groups.contains(&gid) {
            creds.groups.push(gid);
        }
    }
    Ok(Some(creds))
}

/// The password, from the terminal without echo or from stdin's first line.
fn read_password(user: &str, from_stdin: bool) -> Result<zeroize::Zeroizing<String>> {
    let mut line = zeroize::Zeroizing::new(String::new());
    if from_stdin {
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
    } else {
        *line = rpassword::prompt_password(format!("Password for {user}: "))
            .context("cannot read the password from the terminal (use --password-stdin)")?;
    }
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    Ok(line)
}

#[cfg(feature = "logon")]
type LogonSession = taskloom::process::logon::Logon;
#[cfg(not(feature = "logon"))]
type LogonSession = ();

/// `--logon`: checks the password through PAM and opens the session.
#[cfg(feature = "logon")]
fn logon(
    user: &str,
    from_stdin: bool,
    builder: ProcessBuilder,
) -> Result<(LogonSession, ProcessBuilder)> {
    let password = read_password(user, from_stdin)?;
    let logon = taskloom::process::logon::Logon::new(user, password)?;
    let builder = logon.apply(builder);
    Ok((logon, builder))
}

#[cfg(not(feature = "logon"))]
fn logon(
    _user: &str,
    _from_stdin: bool,
    _builder: ProcessBuilder,
) -> Result<(LogonSession, ProcessBuilder)> {
    let _ = read_password;
    anyhow::bail!(
        "this taskloom was built without logon support: build it with `--features logon` (needs PAM's headers and libclang: apt-get install libpam0g-dev libclang-dev)"
    )
}

/// What the supervising loop saw.
#[derive(Debug, Default)]
struct Watch {
    hits: Vec<&'static str>,
    peak: usize,
}

impl Watch {
    fn poll(&mut self, w: &mut JobWatcher) {
        if let Ok(events) = w.poll_once() {
            for e in events {
                let hit = match e {
                    JobEvent::ActiveProcessLimit { .. } => "max-processes",
                    JobEvent::MemoryLimit { .. } => "memory",
                    JobEvent::JobTimeLimit { .. } => "job-time",
                    JobEvent::NotificationLimit(v) => super::soft_limit_hit(v.limit),
                    _ => continue,
                };
                self.hit(hit);
            }
        }
        self.peak = self.peak.max(w.members());
    }

    fn hit(&mut self, hit: &'static str) {
        if !self.hits.contains(&hit) {
            self.hits.push(hit);
        }
    }
}

pub fn main(args: RunArgs) -> Result<i32> {
    // Before anything else (and before any thread exists): the forwarded
    // signals are taken from a signalfd, not acted on. The child's mask is
    // emptied before execve, so PROGRAM receives them as usual.
    let events = ControlEvents::catch(&FORWARDED)?;

    let mut builder = args.common.builder()?;
    if args.pico.trace_syscalls && !args.pico.any() {
        anyhow::bail!("--trace-syscalls needs calls to watch: --fail, --deny or --trace SYSCALL");
    }
    if args.pico.any() {
        let (provider, set) = args.pico.provider(args.common.json)?;
        builder = builder.pico(provider, set);
    }
    builder = builder.protected(args.protected);
    if let Some(creds) = credentials(args.user.as_deref(), args.group.as_deref())? {
        builder = builder.credentials(creds);
    }
    // The PAM session lives until `run` returns, past PROGRAM's end.
    let _logon = match &args.logon {
        Some(user) => {
            let (logon, b) = logon(user, args.password_stdin, builder)?;
            builder = b;
            Some(logon)
        }
        None => None,
    };
    let (job, builder) = args.common.job(builder, |b| {
        b.contain(!args.uncontained).hide_services(args.no_services)
    })?;
    // From here on, every way out of `main` removes the job `run` created.
    let job = JobGuard(job);
    // The watcher starts before the program, so it sees every fork (exactly, as root).
    let mut watcher = match &job.0 {
        Some(j) => Some(j.watch(WATCH_TICK)?),
        None => None,
    };

    let start = Instant::now();
    if args.debug_events {
        let mode = if args.debug_only_this_process {
            DebugMode::OnlyThisProcess
        } else {
            DebugMode::Process
        };
        let debugger = match &job.0 {
            Some(job) => Debugger::spawn_in(job, builder, mode)?,
            None => Debugger::spawn(builder, mode)?,
        };
        let run = debug_events(debugger, watcher.as_mut(), args.common.json)?;
        return finish(args, job, watcher, run, start);
    }
    let child = match &job.0 {
        Some(job) => job.spawn(builder)?,
        None => builder.spawn()?,
    };
    let run = Supervisor {
        job: job.0.as_ref(),
        watcher: watcher.as_mut(),
        events: &events,
        same_group: child.shares_callers_group(),
        wait_all: args.common.wait_all,
    }
    .supervise(
        child,
        start,
        args.common.suspended_for,
        args.common
            .timeout
            .map(|t| (t, args.signal, args.kill_after)),
    )?;
    finish(args, job, watcher, run, start)
}

/// `--debug-events`: every event on stderr as it comes, each passed on.
fn debug_events(mut d: Debugger, mut watcher: Option<&mut JobWatcher>, json: bool) -> Result<Run> {
    let mut watch = Watch::default();
    let mut err = std::io::stderr().lock();
    loop {
        let event = d.wait_event(Some(WATCH_TICK))?;
        if let Some(w) = watcher.as_deref_mut() {
            watch.poll(w);
        }
        let Some(event) = event else {
            if d.process().exit_status().is_some() {
                break;
            }
            continue;
        };
        let line = if json {
            serde_json::to_string(&event)?
        } else {
            debug_line(&event)
        };
        writeln!(err, "{line}")?;
        d.continue_event(Continue::NotHandled)?;
    }
    let child = d.detach()?;
    let status = child.exit_status().unwrap_or(ExitStatus::Unknown);
    Ok(Run {
        child,
        status,
        watch,
        ended_by: None,
        forwarded: Vec::new(),
    })
}

/// One debug event as a line: the event's name, then its fields.
fn debug_line(e: &DebugEvent) -> String {
    let b = |p: &[u8]| crate::output::escape_control(&String::from_utf8_lossy(p));
    let status = |code: &Option<i32>, signal: &Option<i32>| match (code, signal) {
        (Some(c), _) => format!("code {c}"),
        (None, Some(s)) => format!("signal {}", signal_name(*s)),
        _ => "?".into(),
    };
    match e {
        DebugEvent::CreateProcess { pid, parent, how } => match parent {
            Some(p) => format!("create-process pid {pid} ({how} of {p})"),
            None => format!("create-process pid {pid} ({how})"),
        },
        DebugEvent::CreateThread { pid, tid } => format!("create-thread  pid {pid} tid {tid}"),
        DebugEvent::ExitThread {
            pid,
            tid,
            code,
            signal,
        } => {
            format!(
                "exit-thread    pid {pid} tid {tid} {}",
                status(code, signal)
            )
        }
        DebugEvent::ExitProcess { pid, code, signal } => {
            format!("exit-process   pid {pid} {}", status(code, signal))
        }
        DebugEvent::LoadDll { pid, base, path } => {
            format!("load-dll       pid {pid} {base:#x} {}", b(path))
        }
        DebugEvent::UnloadDll { pid, base, path } => {
            format!("unload-dll     pid {pid} {base:#x} {}", b(path))
        }
        DebugEvent::Exec { pid, image } => format!("exec           pid {pid} {}", b(image)),
        DebugEvent::Exception {
            pid,
            tid,
            signal,
            code,
            address,
            ..
        } => format!(
            "exception      pid {pid} tid {tid} {} code {code}{}",
            signal_name(*signal),
            address.map(|a| format!(" at {a:#x}")).unwrap_or_default()
        ),
    }
}

/// The common end of a run: accounting, the job's removal, the summary.
fn finish(
    args: RunArgs,
    job: JobGuard,
    mut watcher: Option<JobWatcher>,
    run: Run,
    start: Instant,
) -> Result<i32> {
    let Run {
        child,
        status,
        mut watch,
        ended_by,
        forwarded,
    } = run;
    let wall = start.elapsed();
    let usage = child.resource_usage().unwrap_or_default();
    let mut job_summary = None;
    let (mut user, mut kernel) = (usage.user, usage.kernel);
    if let Some(job) = &job.0 {
        // Accounting first: a kill renews the job's leaves, and before Linux
        // 6.13 refused forks are counted in the leaf.
        let info = job.info()?;
        let contained = job.is_contained();
        // An empty job needs no kill (and no fresh leaf after one).
        let killed = if info.pids.is_empty() {
            0
        } else {
            job.terminate()?
        };
        let counts = match &mut watcher {
            Some(w) => {
                // One last look: forks and exits up to the close.
                watch.poll(w);
                w.counts()
            }
            None => Default::default(),
        };
        if let Some(limit) = info.limits.process_time
            && status
                .signal()
                .is_some_and(|s| s == signals::KILL || s == signals::XCPU)
            // The kernel kills at the limit by its own clock; the rusage we get
            // back is sampled and can read several percent low, above all on
            // a busy machine (1.91 s for a 2 s kill was seen).
            && (usage.user + usage.kernel).as_secs_f64()
                >= 0.8 * process_time_secs(limit) as f64
        {
            watch.hit("process-time");
        }
        // A process over its address-space limit sees its allocations fail:
        // mostly it dies of SIGSEGV (the stack, or a failed exec) or SIGABRT
        // (an allocator giving up). The kernel counts none of it, so this is
        // the likely cause, not a certainty.
        if info.limits.process_memory.is_some()
            && status.signal().is_some_and(|s| {
                [signals::SEGV, signals::BUS, signals::ABRT, signals::KILL].contains(&s)
            })
            && !watch.hits.contains(&"process-time")
            && !watch.hits.contains(&"memory")
        {
            watch.hit("process-memory");
        }
        // Counters the kernel kept settle what a poll may have missed.
        for (count, hit) in [
            (info.oom_kills, "memory"),
            (info.process_limit_hits, "max-processes"),
            (info.memory_high_hits, "memory-high"),
        ] {
            if count.unwrap_or(0) > 0 {
                watch.hit(hit);
            }
        }
        for v in &info.violations {
            watch.hit(super::soft_limit_hit(v.limit));
        }
        user = user.max(info.user_time);
        kernel = kernel.max(info.kernel_time);
        // PROGRAM ran, and so did what was killed at the close: the peak is at
        // least that, whatever a sampled count missed.
        let floor = (killed as u64 + 1).max(counts.peak_processes);
        job_summary = Some(JobSummary {
            name: info.name,
            contained,
            peak_processes: Some(
                info.peak_processes
                    .unwrap_or(0)
                    .max(floor)
                    .max(watch.peak as u64),
            ),
            peak_processes_exact: info.peak_processes.is_some() || counts.exact,
            peak_memory_bytes: info.memory_peak,
            io: info.io,
            killed_at_close: killed,
            limits_hit: watch.hits,
            total_processes: counts.total_processes.max(killed as u64 + 1),
            abnormal_exits: counts.abnormal_exits,
            totals_exact: counts.exact,
        });
    }
    args.common.conclude(
        job,
        Outcome {
            pid: child.pid(),
            status,
            ended_by,
            signals_forwarded: forwarded.iter().map(|&s| signal_name(s)).collect(),
            wall,
            user,
            kernel,
            peak_rss_bytes: Some(usage.peak_rss),
            job: job_summary,
        },
    )
}

/// The supervising loop's inputs.
struct Supervisor<'a> {
    job: Option<&'a Job>,
    watcher: Option<&'a mut JobWatcher>,
    events: &'a ControlEvents,
    same_group: bool,
    wait_all: bool,
}

/// What the supervising loop ends with.
struct Run {
    child: Process,
    status: ExitStatus,
    watch: Watch,
    ended_by: Option<EndedBy>,
    forwarded: Vec<i32>,
}

impl Supervisor<'_> {
    /// Runs until PROGRAM (with `--wait-all`, the whole job) has ended.
    fn supervise(
        mut self,
        mut child: Process,
        start: Instant,
        suspended_for: Option<Duration>,
        timeout: Option<(Duration, i32, Duration)>,
    ) -> Result<Run> {
        let mut resume_at = suspended_for.map(|d| start + d);
        let mut deadline = timeout.map(|(t, _, _)| start + t);
        let mut kill_at: Option<Instant> = None;
        let mut next_tick = start + WATCH_TICK;
        let mut last_interrupt: Option<Instant> = None;
        let mut status: Option<ExitStatus> = None;
        let mut watch = Watch::default();
        let mut ended_by = None;
        let mut forwarded = Vec::new();
        loop {
            let now = Instant::now();
            if resume_at.is_some_and(|t| now >= t) {
                resume_at = None;
                if status.is_none() {
                    child.resume()?;
                }
            }
            if let Some((_, signal, kill_after)) = timeout
                && deadline.is_some_and(|d| now >= d)
            {
                deadline = None;
                ended_by = Some(EndedBy::Timeout);
                if status.is_none() {
                    // A suspended program is resumed, or it could not act on the signal.
                    let pid = child.pid();
                    child.signal(signal).or_trace(|| {
                        format!("send signal {signal} to process {pid} at the time-out")
                    });
                    child
                        .resume()
                        .or_trace(|| format!("resume process {pid} at the time-out"));
                }
                kill_at = Some(now + kill_after);
            }
            if kill_at.is_some_and(|t| now >= t) {
                kill_at = None;
                self.terminate(&child)?;
            }
            if let Some(w) = self.watcher.as_deref_mut()
                && now >= next_tick
            {
                watch.poll(w);
                next_tick = now + WATCH_TICK;
            }
            if status.is_none() {
                status = child.try_wait()?;
            }
            if let Some(status) = status {
                let done = match (self.job, self.wait_all) {
                    (Some(job), true) => job.wait_empty(Duration::ZERO)?,
                    _ => true,
                };
                if done {
                    return Ok(Run {
                        child,
                        status,
                        watch,
                        ended_by,
                        forwarded,
                    });
                }
            }
            // Sleep until a signal, PROGRAM's end, or the next deadline.
            let mut wake = [resume_at, deadline, kill_at]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + LONGEST);
            if self.watcher.is_some() {
                wake = wake.min(next_tick);
            }
            if status.is_some() {
                wake = wake.min(now + EMPTY_TICK);
            }
            self.events
                .wait(status.is_none().then_some(&child), Some(wake))?;
            while let Some(event) = self.events.next()? {
                let signal = event.signal;
                let now = Instant::now();
                if status.is_some() {
                    // PROGRAM is gone; the rest of the job is what remains.
                    if signal == signals::USR1 || signal == signals::USR2 {
                        self.signal_members(signal);
                    } else {
                        ended_by.get_or_insert(EndedBy::Signal);
                        self.terminate(&child)?;
                    }
                    continue;
                }
                if signal == signals::INT {
                    if last_interrupt.is_some_and(|t| now.duration_since(t) < SECOND_INTERRUPT) {
                        ended_by = Some(EndedBy::Interrupt);
                        self.terminate(&child)?;
                        continue;
                    }
                    last_interrupt = Some(now);
                }
                // A terminal signals its whole foreground group: PROGRAM has it already.
                let from_terminal = event.from_terminal && self.same_group;
                if !from_terminal && child.signal(signal).is_ok() {
                    forwarded.push(signal);
                }
            }
        }
    }

    /// Ends everything the run started: the job, or the lone program.
    fn terminate(&self, child: &Process) -> Result<()> {
        match self.job {
            Some(job) => {
                job.terminate()?;
            }
            None => child.terminate()?,
        }
        Ok(())
    }

    fn signal_members(&self, signal: i32) {
        let Some(job) = self.job else { return };
        for pid in job.pids().unwrap_or_default() {
            // Opened by pidfd, so a pid reused since the listing is never signalled.
            if let Ok(p) = Process::open_with_access(pid, ProcessAccess::TERMINATE)
                && job.contains(pid).unwrap_or(false)
            {
                p.signal(signal)
                    .or_trace(|| format!("forward signal {signal} to member {pid}"));
            }
        }
    }
}
