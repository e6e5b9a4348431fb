//! Drawing: every view is a function of [`App`] alone, so tests draw it
//! into ratatui's `TestBackend` and read the cells.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Clear, Gauge, Paragraph, Row, Sparkline, Table, Tabs, Wrap,
};
use taskloom::units::format_size;

use super::app::{App, TABS, View};
use super::collect::{JobRow, Proc};
use crate::output::escape_control;
use taskloom::inspect::Classification;

/// Text fit for one cell: invalid UTF-8 replaced, control characters
/// (newline, tab, escape) shown as escapes, so no name can break a row.
pub fn clean(bytes: &[u8]) -> String {
    escape_control(&String::from_utf8_lossy(bytes))
}

fn cpu(p: f64) -> String {
    format!("{p:.1}")
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    let [header, main, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(f, header, app);
    match app.view {
        View::Processes => draw_processes(f, main, app),
        View::Jobs => draw_jobs(f, main, app),
        View::Detail(pid) => draw_detail(f, main, app, pid),
    }
    let status_text = if let Some((pid, text)) = &app.affinity_input {
        format!("CPUs for process {pid} (e.g. 0-3,5): {text}▏ (Enter, Esc cancels)")
    } else if app.editing_filter {
        format!("filter: {}▏ (Enter keeps it, Esc clears it)", app.filter)
    } else {
        app.status.clone()
    };
    f.render_widget(
        Paragraph::new(escape_control(&status_text)).style(Style::new().fg(Color::Yellow)),
        status,
    );
    f.render_widget(
        Paragraph::new(footer_keys(app)).style(Style::new().add_modifier(Modifier::REVERSED)),
        footer,
    );
    if app.help {
        draw_help(f, f.area());
    }
}

fn draw_header(f: &mut Frame, area: Rect, app: &App) {
    let mut parts = vec![
        Span::styled("taskloom top", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "  {} processes  {} jobs  sort: {}{}{}  every {}",
            app.snap.procs.len(),
            app.snap.jobs.len(),
            app.sort.label(),
            if app.tree { "  tree" } else { "" },
            if app.filter.is_empty() {
                String::new()
            } else {
                format!("  filter: {}", escape_control(&app.filter))
            },
            humantime::format_duration(std::time::Duration::from_millis(app.interval_ms)),
        )),
    ];
    if app.paused {
        parts.push(Span::styled("  PAUSED", Style::new().fg(Color::Red)));
    }
    f.render_widget(Paragraph::new(Line::from(parts)), area);
}

fn footer_keys(app: &App) -> String {
    match app.view {
        View::Processes => "q quit  ? help  / filter  s sort  t tree  Tab jobs  Enter details  k kill  z/r suspend/resume  +/- nice  a cpus  p pause",
        View::Jobs => "q quit  ? help  Tab processes  Enter its processes  k terminate job  f freeze/thaw  p pause",
        View::Detail(_) => "q quit  ? help  Tab/S-Tab section  Esc back  k kill  z/r suspend/resume  +/- nice",
    }
    .into()
}

/// The first row to show so that `selected` is visible in `height` rows.
fn first_row(selected: usize, height: usize) -> usize {
    if height == 0 || selected < height {
        0
    } else {
        selected + 1 - height
    }
}

fn proc_row(prefix: &str, p: &Proc) -> Row<'static> {
    let name = if p.kernel_thread {
        format!("[{}]", clean(&p.name))
    } else if p.command.is_empty() {
        clean(&p.name)
    } else {
        escape_control(&p.command)
    };
    // The state, and a mark for what Windows would call the process.
    let mark = match p.class {
        Classification::Protected => "P",
        Classification::Pico => "N",
        _ => "",
    };
    let mut row = Row::new(vec![
        p.pid.to_string(),
        escape_control(&p.user),
        cpu(p.cpu),
        format_size(p.rss),
        p.threads.to_string(),
        format!("{}{mark}", p.state),
        p.job.as_deref().map(escape_control).unwrap_or_default(),
        format!("{prefix}{name}"),
    ]);
    if p.state == 'Z' {
        row = row.style(Style::new().fg(Color::Red));
    } else if matches!(p.class, Classification::Protected | Classification::Pico) {
        row = row.style(Style::new().fg(Color::Magenta));
    } else if p.new {
        row = row.style(Style::new().fg(Color::Green));
    }
    row
}

fn draw_processes(f: &mut Frame, area: Rect, app: &App) {
    let rows = app.rows();
    let height = area.height.saturating_sub(1) as usize;
    let first = first_row(app.selected, height);
    app.list_top.set((area.y + 1, first));
    let mut table_rows: Vec<Row> = rows
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, (prefix, p))| {
            let row = proc_row(prefix, p);
            if i == app.selected {
                row.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                row
            }
        })
        .collect();
    // Processes that ended since the last refresh, for one refresh.
    if table_rows.len() < height && app.filter.is_empty() {
        let ended = app
            .snap
            .ended
            .iter()
            .filter(|(_, _, kernel)| app.show_kernel || !kernel);
        for (pid, name, _) in ended.take(height - table_rows.len()) {
            table_rows.push(
                Row::new(vec![
                    pid.to_string(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    "-".into(),
                    String::new(),
                    format!("{} (ended)", clean(name)),
                ])
                .style(Style::new().fg(Color::Red).add_modifier(Modifier::DIM)),
            );
        }
    }
    let header = Row::new(["PID", "USER", "CPU%", "MEM", "THR", "ST", "JOB", "COMMAND"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Length(2),
        Constraint::Length(12),
        Constraint::Min(10),
    ];
    f.render_widget(Table::new(table_rows, widths).header(header), area);
}

/// `used/limit`, or `used` without a limit.
fn of(used: String, limit: Option<String>) -> String {
    match limit {
        Some(l) => format!("{used}/{l}"),
        None => used,
    }
}

fn job_cells(j: &JobRow) -> Vec<String> {
    let i = &j.info;
    let depth = i.name.matches('/').count();
    let short = i.name.rsplit('/').next().unwrap_or(&i.name);
    let l = &i.limits;
    vec![
        format!("{}{}", "  ".repeat(depth), escape_control(short)),
        of(
            i.active_processes.to_string(),
            l.active_processes.map(|n| n.to_string()),
        ),
        of(
            i.memory_current
                .map(format_size)
                .unwrap_or_else(|| "-".into()),
            l.job_memory.map(format_size),
        ),
        of(cpu(j.cpu), l.cpu_rate_percent.map(|p| format!("{p}%"))),
        of(
            format!("{:.1}s", i.user_time.as_secs_f64()),
            l.job_time.map(|t| format!("{:.0}s", t.as_secs_f64())),
        ),
        format!(
            "{}{}",
            i.process_limit_hits
                .filter(|&n| n > 0)
                .map(|n| format!("procs×{n} "))
                .unwrap_or_default(),
            i.oom_kills
                .filter(|&n| n > 0)
                .map(|n| format!("oom×{n}"))
                .unwrap_or_default()
        ),
        [
            i.frozen.then_some("frozen"),
            i.limits.affinity.as_ref().map(|_| "cpuset"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" "),
    ]
}

fn draw_jobs(f: &mut Frame, area: Rect, app: &App) {
    let [list, detail] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Min(8)]).areas(area);
    let height = list.height.saturating_sub(1) as usize;
    let first = first_row(app.job_selected, height);
    app.list_top.set((list.y + 1, first));
    let rows: Vec<Row> = app
        .snap
        .jobs
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, j)| {
            let row = Row::new(job_cells(j));
            if i == app.job_selected {
                row.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                row
            }
        })
        .collect();
    let header = Row::new([
        "JOB",
        "PROCS",
        "MEMORY",
        "CPU%",
        "CPU TIME",
        "LIMITS HIT",
        "STATE",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Min(12),
        Constraint::Length(9),
        Constraint::Length(13),
        Constraint::Length(11),
        Constraint::Length(12),
        Constraint::Length(14),
        Constraint::Length(13),
    ];
    if app.snap.jobs.is_empty() {
        let text = match &app.snap.jobs_error {
            Some(e) => format!("jobs cannot be listed: {}", escape_control(e)),
            None => "no jobs (make one with `taskloom job create NAME` or `taskloom run`)".into(),
        };
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), list);
    } else {
        f.render_widget(Table::new(rows, widths).header(header), list);
    }
    if let Some(j) = app.snap.jobs.get(app.job_selected) {
        draw_job_detail(f, detail, app, j);
    }
}

fn ratio(used: f64, limit: f64) -> f64 {
    if limit <= 0.0 {
        0.0
    } else {
        (used / limit).clamp(0.0, 1.0)
    }
}

fn draw_job_detail(f: &mut Frame, area: Rect, app: &App, j: &JobRow) {
    let i = &j.info;
    let block = Block::new()
        .borders(Borders::TOP)
        .title(format!(" job {} ", escape_control(&i.name)));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [gauges, graphs] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    let l = &i.limits;
    let bars: [(String, Option<f64>); 4] = [
        (
            format!(
                "processes {}",
                of(
                    i.active_processes.to_string(),
                    l.active_processes.map(|n| n.to_string())
                )
            ),
            l.active_processes
                .map(|n| ratio(i.active_processes as f64, n as f64)),
        ),
        (
            format!(
                "memory {}",
                of(
                    i.memory_current
                        .map(format_size)
                        .unwrap_or_else(|| "-".into()),
                    l.job_memory.map(format_size)
                )
            ),
            l.job_memory
                .map(|m| ratio(i.memory_current.unwrap_or(0) as f64, m as f64)),
        ),
        (
            format!(
                "cpu rate {}",
                of(cpu(j.cpu), l.cpu_rate_percent.map(|p| format!("{p}%")))
            ),
            l.cpu_rate_percent.map(|p| ratio(j.cpu, p as f64)),
        ),
        (
            format!(
                "cpu time {}",
                of(
                    format!("{:.1}s", i.user_time.as_secs_f64()),
                    l.job_time.map(|t| format!("{:.0}s", t.as_secs_f64()))
                )
            ),
            l.job_time
                .map(|t| ratio(i.user_time.as_secs_f64(), t.as_secs_f64())),
        ),
    ];
    let slots = Layout::vertical([Constraint::Length(1); 4]).split(gauges);
    for ((label, r), slot) in bars.into_iter().zip(slots.iter()) {
        let gauge = match r {
            Some(r) => Gauge::default()
                .ratio(r)
                .label(label)
                .gauge_style(Style::new().fg(if r >= 0.9 { Color::Red } else { Color::Cyan })),
            None => Gauge::default()
                .ratio(0.0)
                .label(format!("{label} (no limit)")),
        };
        f.render_widget(gauge, *slot);
    }
    let history = app.history.get(&i.name);
    let cpu_points: Vec<u64> = history
        .map(|h| h.iter().map(|p| p.0).collect())
        .unwrap_or_default();
    let mem_points: Vec<u64> = history
        .map(|h| h.iter().map(|p| p.1).collect())
        .unwrap_or_default();
    let [c, m] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(graphs);
    let tail = |v: &[u64], w: u16| v[v.len().saturating_sub(w as usize)..].to_vec();
    f.render_widget(
        Sparkline::default()
            .block(Block::new().title("cpu %"))
            .data(tail(&cpu_points, c.width))
            .style(Style::new().fg(Color::Green)),
        c,
    );
    f.render_widget(
        Sparkline::default()
            .block(Block::new().title("memory"))
            .data(tail(&mem_points, m.width))
            .style(Style::new().fg(Color::Magenta)),
        m,
    );
}

fn draw_detail(f: &mut Frame, area: Rect, app: &App, pid: i32) {
    let [tabs, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    f.render_widget(
        Tabs::new(TABS)
            .select(app.tab)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        tabs,
    );
    let detail = match &app.detail {
        Some((p, d)) if *p == pid => d,
        _ => {
            f.render_widget(Paragraph::new(format!("reading process {pid}…")), body);
            return;
        }
    };
    let d = match detail {
        Ok(d) => d,
        Err(e) => {
            // The process ended (or was never visible): say so, never panic.
            f.render_widget(
                Paragraph::new(format!("process {pid}: {}", escape_control(e)))
                    .wrap(Wrap { trim: true }),
                body,
            );
            return;
        }
    };
    let title = format!(
        " {} ({pid}) ",
        d.info
            .image
            .as_deref()
            .map(clean)
            .unwrap_or_else(|| clean(&d.info.basic.name))
    );
    let block = Block::new().borders(Borders::TOP).title(title);
    let inner = block.inner(body);
    f.render_widget(block, body);
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let text =
        |lines: Vec<String>| Paragraph::new(lines.into_iter().map(Line::from).collect::<Vec<_>>());
    match TABS[app.tab] {
        "Threads" => {
            let rows: Vec<Row> = d
                .threads
                .iter()
                .map(|t| {
                    Row::new(vec![
                        t.tid.to_string(),
                        clean(&t.name),
                        t.state.to_string(),
                        t.nice.to_string(),
                        t.policy.to_string(),
                        t.affinity.clone(),
                        format!("{:.2}s", (t.user_time + t.kernel_time).as_secs_f64()),
                    ])
                })
                .collect();
            let widths = [
                Constraint::Length(8),
                Constraint::Min(12),
                Constraint::Length(2),
                Constraint::Length(5),
                Constraint::Length(7),
                Constraint::Length(10),
                Constraint::Length(10),
            ];
            f.render_widget(
                Table::new(rows, widths).header(
                    Row::new(["TID", "NAME", "S", "NICE", "POLICY", "CPUS", "CPU"]).style(bold),
                ),
                inner,
            );
        }
        "Modules" => {
            let rows: Vec<Row> = d
                .info
                .modules
                .iter()
                .flatten()
                .map(|m| {
                    Row::new(vec![
                        format!("{:#x}", m.base),
                        format_size(m.size),
                        clean(&m.path),
                    ])
                })
                .collect();
            let widths = [
                Constraint::Length(16),
                Constraint::Length(7),
                Constraint::Min(10),
            ];
            f.render_widget(
                Table::new(rows, widths).header(Row::new(["BASE", "SIZE", "PATH"]).style(bold)),
                inner,
            );
        }
        "Handles" => {
            let rows: Vec<Row> = d
                .info
                .handles
                .iter()
                .flatten()
                .map(|h| Row::new(vec![h.fd.to_string(), h.kind.to_string(), clean(&h.target)]))
                .collect();
            let widths = [
                Constraint::Length(6),
                Constraint::Length(10),
                Constraint::Min(10),
            ];
            f.render_widget(
                Table::new(rows, widths).header(Row::new(["FD", "TYPE", "TARGET"]).style(bold)),
                inner,
            );
        }
        "Token" => {
            let lines = match &d.info.token {
                Some(t) => vec![
                    format!("uid (real, effective, saved, fs): {:?}", t.uid),
                    format!("gid (real, effective, saved, fs): {:?}", t.gid),
                    format!("groups: {:?}", t.groups),
                    format!("effective capabilities: {}", t.effective.join(" ")),
                    format!("no_new_privs: {}   seccomp: {}", t.no_new_privs, t.seccomp),
                    format!(
                        "classification: {:?} ({})",
                        d.info.classification,
                        escape_control(&d.info.classification_reason)
                    ),
                ],
                None => vec!["the token is not readable (another user's process)".into()],
            };
            f.render_widget(text(lines), inner);
        }
        "Environment" => {
            let lines = match &d.info.environment {
                Some(env) => env.iter().map(|v| clean(v)).collect(),
                None => vec!["the environment is not readable (another user's process)".into()],
            };
            f.render_widget(text(lines), inner);
        }
        _ => {
            let mut lines = vec![format!(
                "job: {}",
                d.info
                    .basic
                    .job
                    .as_deref()
                    .map(escape_control)
                    .unwrap_or_else(|| "none".into())
            )];
            lines.extend(
                d.info
                    .cgroups
                    .iter()
                    .flatten()
                    .map(|c| format!("cgroup: {}", escape_control(c))),
            );
            f.render_widget(text(lines), inner);
        }
    }
}

fn draw_help(f: &mut Frame, area: Rect) {
    let keys = [
        ("q, Ctrl-C", "quit"),
        ("?, F1", "this help (any key closes it)"),
        ("Tab", "processes ⇄ jobs; next section in details"),
        (
            "↑ ↓ PgUp PgDn Home End",
            "move; the mouse selects and scrolls",
        ),
        ("/", "filter by name, command line, user or job"),
        ("Esc", "clear the filter; leave details"),
        ("Enter", "details of a process; a job's processes"),
        ("s", "sort: cpu, memory, pid, name, start"),
        ("t", "tree"),
        (
            "K",
            "show kernel threads (ST mark: P protected, N pico/other namespace)",
        ),
        ("p, Space", "pause"),
        ("k", "terminate the process or job (asks first)"),
        ("z / r", "suspend / resume the process (asks first)"),
        ("+ / -", "lower / raise the process's priority (nice ±1)"),
        (
            "a",
            "set the CPUs the process may run on, e.g. 0-3,5 (asks first)",
        ),
        ("f", "freeze or thaw the job (asks first)"),
    ];
    let w = 76.min(area.width);
    let h = (keys.len() as u16 + 2).min(area.height);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let lines: Vec<Line> = keys
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(
                    format!("{k:>22}  "),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys ")),
        r,
    );
}
