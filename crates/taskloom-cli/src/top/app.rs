//! The view's state and what each key does. Pure: no terminal, no threads,
//! so every view can be drawn into a test buffer.

use std::collections::{BTreeMap, HashMap, VecDeque};

use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use super::collect::{Proc, Snapshot};

/// Which screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Processes,
    Jobs,
    /// One process, its sections as tabs.
    Detail(i32),
}

/// The process list's sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Cpu,
    Memory,
    Pid,
    Name,
    Start,
}

impl Sort {
    fn next(self) -> Sort {
        match self {
            Sort::Cpu => Sort::Memory,
            Sort::Memory => Sort::Pid,
            Sort::Pid => Sort::Name,
            Sort::Name => Sort::Start,
            Sort::Start => Sort::Cpu,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::Cpu => "cpu",
            Sort::Memory => "memory",
            Sort::Pid => "pid",
            Sort::Name => "name",
            Sort::Start => "start",
        }
    }
}

/// The sections of the process detail view.
pub const TABS: [&str; 6] = [
    "Threads",
    "Modules",
    "Handles",
    "Token",
    "Environment",
    "Job",
];

/// An action waiting for its confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    TerminateProcess(i32),
    SuspendProcess(i32),
    ResumeProcess(i32),
    /// Change the nice value by this much.
    Renice(i32, i32),
    /// Set the CPUs every thread of the process may run on.
    SetAffinity(i32, taskloom::cpuset::CpuSet),
    TerminateJob(String),
    FreezeJob(String),
    ThawJob(String),
}

impl Action {
    pub fn describe(&self) -> String {
        match self {
            Action::TerminateProcess(p) => format!("terminate process {p}"),
            Action::SuspendProcess(p) => format!("suspend process {p}"),
            Action::ResumeProcess(p) => format!("resume process {p}"),
            Action::Renice(p, d) => format!("change the nice value of process {p} by {d:+}"),
            Action::SetAffinity(p, cpus) => format!("run process {p} on CPUs {cpus} only"),
            Action::TerminateJob(j) => format!("terminate job {j} (every process in it)"),
            Action::FreezeJob(j) => format!("freeze job {j}"),
            Action::ThawJob(j) => format!("thaw job {j}"),
        }
    }
}

/// What the loop does after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
    /// Carry out a confirmed action.
    Do(Action),
}

/// The view's whole state.
#[derive(Debug)]
pub struct App {
    pub snap: Snapshot,
    pub view: View,
    pub help: bool,
    pub sort: Sort,
    pub tree: bool,
    pub show_kernel: bool,
    pub paused: bool,
    pub filter: String,
    pub editing_filter: bool,
    /// The CPU list being typed for a process's affinity (`a`).
    pub affinity_input: Option<(i32, String)>,
    pub selected: usize,
    pub job_selected: usize,
    pub tab: usize,
    pub confirm: Option<Action>,
    pub status: String,
    /// CPU % and memory of each job, one point per refresh (newest last).
    pub history: HashMap<String, VecDeque<(u64, u64)>>,
    /// Where the list's first row was drawn, and the first row shown, for mouse clicks.
    pub list_top: std::cell::Cell<(u16, usize)>,
    pub interval_ms: u64,
    /// The detail view's data, for the process it shows (loaded by the loop).
    pub detail: Option<(i32, Result<Detail, String>)>,
}

/// What the detail view shows of one process.
#[derive(Debug)]
pub struct Detail {
    pub info: taskloom::inspect::ProcessInfo,
    pub threads: Vec<taskloom::inspect::ThreadInfo>,
}

/// How many points of history a job keeps.
const HISTORY: usize = 120;

impl App {
    pub fn new(interval_ms: u64) -> App {
        App {
            snap: Snapshot::default(),
            view: View::Processes,
            help: false,
            sort: Sort::Cpu,
            tree: false,
            show_kernel: false,
            paused: false,
            filter: String::new(),
            editing_filter: false,
            affinity_input: None,
            selected: 0,
            job_selected: 0,
            tab: 0,
            confirm: None,
            status: String::new(),
            history: HashMap::new(),
            list_top: std::cell::Cell::new((0, 0)),
            interval_ms,
            detail: None,
        }
    }

    /// Takes a new snapshot (unless paused), keeping the selection on the
    /// same process or job where it still exists.
    pub fn update(&mut self, snap: Snapshot) {
        if self.paused {
            return;
        }
        let pid = self.selected_proc().map(|p| p.pid);
        let job = self.selected_job_name();
        for j in &snap.jobs {
            let h = self.history.entry(j.info.name.clone()).or_default();
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back((j.cpu.round() as u64, j.info.memory_current.unwrap_or(0)));
        }
        self.history
            .retain(|name, _| snap.jobs.iter().any(|j| &j.info.name == name));
        self.snap = snap;
        if let Some(pid) = pid
            && let Some(i) = self.rows().iter().position(|(_, p)| p.pid == pid)
        {
            self.selected = i;
        }
        if let Some(name) = job
            && let Some(i) = self.snap.jobs.iter().position(|j| j.info.name == name)
        {
            self.job_selected = i;
        }
        self.clamp();
    }

    fn clamp(&mut self) {
        let n = self.rows().len();
        self.selected = self.selected.min(n.saturating_sub(1));
        self.job_selected = self
            .job_selected
            .min(self.snap.jobs.len().saturating_sub(1));
    }

    /// Whether a process passes the filter (name, command line, user or job).
    fn matches(&self, p: &Proc) -> bool {
        if !self.show_kernel && p.kernel_thread {
            return false;
        }
        if self.filter.is_empty() {
            return true;
        }
        let f = self.filter.to_lowercase();
        String::from_utf8_lossy(&p.name).to_lowercase().contains(&f)
            || p.command.to_lowercase().contains(&f)
            || p.user.to_lowercase() == f
            || p.job
                .as_deref()
                .is_some_and(|j| j.to_lowercase().contains(&f))
    }

    /// The process rows in display order, each with its tree prefix.
    pub fn rows(&self) -> Vec<(String, &Proc)> {
        let mut shown: Vec<&Proc> = self.snap.procs.iter().filter(|p| self.matches(p)).collect();
        let key = |a: &&Proc, b: &&Proc| match self.sort {
            Sort::Cpu => b.cpu.total_cmp(&a.cpu).then(a.pid.cmp(&b.pid)),
            Sort::Memory => b.rss.cmp(&a.rss).then(a.pid.cmp(&b.pid)),
            Sort::Pid => a.pid.cmp(&b.pid),
            Sort::Name => a.name.cmp(&b.name).then(a.pid.cmp(&b.pid)),
            Sort::Start => b.start_time.cmp(&a.start_time).then(a.pid.cmp(&b.pid)),
        };
        shown.sort_by(key);
        if !self.tree {
            return shown.into_iter().map(|p| (String::new(), p)).collect();
        }
        // Children under their parents (in sort order among siblings); a
        // process whose parent is not shown starts a tree of its own.
        let present: std::collections::HashSet<i32> = shown.iter().map(|p| p.pid).collect();
        let mut children: BTreeMap<i32, Vec<&Proc>> = BTreeMap::new();
        let mut tops = Vec::new();
        for p in &shown {
            if p.ppid != p.pid && present.contains(&p.ppid) {
                children.entry(p.ppid).or_default().push(p);
            } else {
                tops.push(*p);
            }
        }
        let mut out = Vec::with_capacity(shown.len());
        fn walk<'a>(
            p: &'a Proc,
            prefix: &str,
            last: bool,
            top: bool,
            children: &BTreeMap<i32, Vec<&'a Proc>>,
            out: &mut Vec<(String, &'a Proc)>,
        ) {
            let here = if top {
                String::new()
            } else {
                format!("{prefix}{}", if last { "└─ " } else { "├─ " })
            };
            out.push((here, p));
            if let Some(kids) = children.get(&p.pid) {
                let next = if top {
                    String::new()
                } else {
                    format!("{prefix}{}", if last { "   " } else { "│  " })
                };
                for (i, k) in kids.iter().enumerate() {
                    walk(k, &next, i + 1 == kids.len(), false, children, out);
                }
            }
        }
        for t in tops {
            walk(t, "", true, true, &children, &mut out);
        }
        out
    }

    pub fn selected_proc(&self) -> Option<&Proc> {
        self.rows().get(self.selected).map(|(_, p)| *p)
    }

    pub fn selected_job_name(&self) -> Option<String> {
        self.snap
            .jobs
            .get(self.job_selected)
            .map(|j| j.info.name.clone())
    }

    fn move_selection(&mut self, by: i64) {
        let (cur, len) = match self.view {
            View::Jobs => (&mut self.job_selected, self.snap.jobs.len()),
            _ => {
                let len = self.rows().len();
                (&mut self.selected, len)
            }
        };
        let next = (*cur as i64 + by).clamp(0, len.saturating_sub(1) as i64);
        *cur = next as usize;
    }

    /// What a key does.
    pub fn key(&mut self, k: KeyEvent) -> Flow {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c')) {
            return Flow::Quit;
        }
        if let Some(action) = self.confirm.take() {
            return match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => Flow::Do(action),
                _ => {
                    self.status = format!("cancelled: {}", action.describe());
                    Flow::Continue
                }
            };
        }
        if let Some((pid, mut text)) = self.affinity_input.take() {
            match k.code {
                KeyCode::Enter => match taskloom::cpuset::CpuSet::parse_list(text.trim()) {
                    Ok(cpus) if !cpus.is_empty() => {
                        let a = Action::SetAffinity(pid, cpus);
                        self.status =
                            format!("{}? y to confirm, any other key cancels", a.describe());
                        self.confirm = Some(a);
                    }
                    Ok(_) => self.status = "an affinity needs at least one CPU".into(),
                    Err(e) => self.status = format!("not a CPU list: {e}"),
                },
                KeyCode::Esc => self.status = "cancelled".into(),
                KeyCode::Backspace => {
                    text.pop();
                    self.affinity_input = Some((pid, text));
                }
                KeyCode::Char(c) if !ctrl => {
                    text.push(c);
                    self.affinity_input = Some((pid, text));
                }
                _ => self.affinity_input = Some((pid, text)),
            }
            return Flow::Continue;
        }
        if self.editing_filter {
            match k.code {
                KeyCode::Enter => self.editing_filter = false,
                KeyCode::Esc => {
                    self.editing_filter = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) if !ctrl => self.filter.push(c),
                _ => {}
            }
            self.selected = 0;
            self.clamp();
            return Flow::Continue;
        }
        if self.help {
            if matches!(k.code, KeyCode::Char('q')) {
                return Flow::Quit;
            }
            self.help = false;
            return Flow::Continue;
        }
        let page = 10;
        match k.code {
            KeyCode::Char('q') => return Flow::Quit,
            KeyCode::Char('?') | KeyCode::F(1) => self.help = true,
            KeyCode::Up => self.move_selection(-1),
            KeyCode::Down => self.move_selection(1),
            KeyCode::PageUp => self.move_selection(-page),
            KeyCode::PageDown => self.move_selection(page),
            KeyCode::Home => self.move_selection(i64::MIN / 2),
            KeyCode::End => self.move_selection(i64::MAX / 2),
            KeyCode::Tab => {
                self.view = match self.view {
                    View::Processes => View::Jobs,
                    View::Jobs => View::Processes,
                    View::Detail(_) => {
                        self.tab = (self.tab + 1) % TABS.len();
                        self.view
                    }
                }
            }
            KeyCode::BackTab => {
                if let View::Detail(_) = self.view {
                    self.tab = (self.tab + TABS.len() - 1) % TABS.len();
                }
            }
            KeyCode::Char('j') if self.view != View::Jobs => self.view = View::Jobs,
            KeyCode::Char('P') => self.view = View::Processes,
            KeyCode::Enter => {
                if self.view == View::Processes
                    && let Some(p) = self.selected_proc()
                {
                    self.view = View::Detail(p.pid);
                    self.tab = 0;
                } else if self.view == View::Jobs
                    && let Some(name) = self.selected_job_name()
                {
                    // The job's processes, by filtering on its name.
                    self.filter = name;
                    self.view = View::Processes;
                    self.selected = 0;
                }
            }
            KeyCode::Esc | KeyCode::Backspace => {
                if let View::Detail(_) = self.view {
                    self.view = View::Processes;
                } else {
                    self.filter.clear();
                }
            }
            KeyCode::Char('/') => {
                self.view = View::Processes;
                self.editing_filter = true;
            }
            KeyCode::Char('s') => self.sort = self.sort.next(),
            KeyCode::Char('t') => self.tree = !self.tree,
            KeyCode::Char('K') => self.show_kernel = !self.show_kernel,
            KeyCode::Char('p') | KeyCode::Char(' ') => {
                self.paused = !self.paused;
                self.status = if self.paused { "paused" } else { "resumed" }.into();
            }
            KeyCode::Char(c) => self.ask(c),
            _ => {}
        }
        Flow::Continue
    }

    /// Keys that act on the selection ask first.
    fn ask(&mut self, c: char) {
        let action = match (self.view, c) {
            (View::Jobs, 'k') => self.selected_job_name().map(Action::TerminateJob),
            (View::Jobs, 'f') => self.snap.jobs.get(self.job_selected).map(|j| {
                if j.info.frozen {
                    Action::ThawJob(j.info.name.clone())
                } else {
                    Action::FreezeJob(j.info.name.clone())
                }
            }),
            (View::Jobs, _) => None,
            (view, c) => {
                let pid = match view {
                    View::Detail(pid) => Some(pid),
                    _ => self.selected_proc().map(|p| p.pid),
                };
                pid.and_then(|pid| match c {
                    'k' => Some(Action::TerminateProcess(pid)),
                    'z' => Some(Action::SuspendProcess(pid)),
                    'r' => Some(Action::ResumeProcess(pid)),
                    '+' => Some(Action::Renice(pid, 1)),
                    '-' => Some(Action::Renice(pid, -1)),
                    'a' => {
                        self.affinity_input = Some((pid, String::new()));
                        None
                    }
                    _ => None,
                })
            }
        };
        if let Some(a) = action {
            self.status = format!("{}? y to confirm, any other key cancels", a.describe());
            self.confirm = Some(a);
        }
    }

    /// A click on a list row selects it; the wheel scrolls.
    pub fn mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                let (top, first) = self.list_top.get();
                if m.row >= top {
                    let i = first + (m.row - top) as usize;
                    match self.view {
                        View::Processes if i < self.rows().len() => self.selected = i,
                        View::Jobs if i < self.snap.jobs.len() => self.job_selected = i,
                        _ => {}
                    }
                }
            }
            MouseEventKind::ScrollDown => self.move_selection(3),
            MouseEventKind::ScrollUp => self.move_selection(-3),
            _ => {}
        }
    }
}
