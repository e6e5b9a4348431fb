//! `taskloom inspect`, `taskloom threads`: one process in full (Linux).

use anyhow::Result;
use clap::Args;
use taskloom::inspect;
use taskloom::units::format_size;

use crate::output::{self, Align, table};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The process id.
    pid: i32,
    /// Only this section: basic, image, command-line, environment, memory, io, modules, handles, token, job, classification, threads.
    #[arg(long, value_name = "NAME")]
    section: Option<String>,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

const SECTIONS: [&str; 12] = [
    "basic",
    "image",
    "command-line",
    "environment",
    "memory",
    "io",
    "modules",
    "handles",
    "token",
    "job",
    "classification",
    "threads",
];

fn lossy(b: &[u8]) -> String {
    output::escape_control(&String::from_utf8_lossy(b))
}

pub fn inspect_cmd(args: InspectArgs) -> Result<i32> {
    if let Some(s) = &args.section
        && !SECTIONS.contains(&s.as_str())
    {
        anyhow::bail!("unknown section {s:?}; sections: {}", SECTIONS.join(", "));
    }
    let info = inspect::inspect(args.pid)?;
    if args.json {
        let v = serde_json::to_value(&info)?;
        let v = match args.section.as_deref() {
            None => v,
            Some(s) => {
                let key = match s {
                    "command-line" => "cmdline",
                    "environment" => "environment",
                    "threads" => "thread_list",
                    "job" => "cgroups",
                    "basic" => return Ok(print_json(&serde_json::to_value(&info.basic)?)),
                    other => other,
                };
                let mut m = serde_json::Map::new();
                if s == "classification" {
                    m.insert("classification".into(), v["classification"].clone());
                    m.insert("reason".into(), v["classification_reason"].clone());
                } else {
                    m.insert(
                        key.into(),
                        v.get(key).cloned().unwrap_or(serde_json::Value::Null),
                    );
                }
                serde_json::Value::Object(m)
            }
        };
        return Ok(print_json(&v));
    }
    let want = |s: &str| args.section.as_deref().is_none_or(|x| x == s);
    let mut o = String::new();
    let b = &info.basic;
    if want("basic") {
        o += &format!("process {} ({})\n", b.pid, lossy(&b.name));
        o += &format!(
            "  parent {}  group {}  session {}  user {}  state {}  threads {}  nice {}\n",
            b.ppid,
            b.pgrp,
            b.session,
            uid_label(b.uid),
            b.state,
            b.threads,
            b.nice
        );
        o += &format!(
            "  cpu user {}  sys {}\n",
            output::duration(b.user_time),
            output::duration(b.kernel_time)
        );
        if let Some(d) = info.debugger {
            o += &format!("  being debugged by pid {d}\n");
        }
    }
    if want("image") {
        o += &format!(
            "image\n  {}\n  cwd {}\n",
            info.image.as_deref().map(lossy).unwrap_or("-".into()),
            info.cwd.as_deref().map(lossy).unwrap_or("-".into())
        );
    }
    if want("command-line") {
        o += "command line\n";
        for (i, a) in b.cmdline.iter().enumerate() {
            o += &format!("  [{i}] {}\n", lossy(a));
        }
    }
    if want("environment") {
        o += "environment\n";
        match &info.environment {
            Some(env) => env.iter().for_each(|e| o += &format!("  {}\n", lossy(e))),
            None => o += "  (not readable)\n",
        }
    }
    if want("memory")
        && let Some(m) = info.memory
    {
        let opt = |v: Option<u64>| v.map(format_size).unwrap_or_else(|| "-".into());
        o += &format!(
            "memory\n  virtual {}  resident {}  peak {}  private {}  faults {} minor, {} major\n",
            format_size(m.virtual_bytes),
            format_size(m.resident),
            opt(m.peak_resident),
            opt(m.private),
            info.page_faults.0,
            info.page_faults.1
        );
    }
    if want("io")
        && let Some(io) = info.io
    {
        o += &format!(
            "io\n  read {} in {} calls ({} from storage)  written {} in {} calls ({} to storage)\n",
            format_size(io.read_chars),
            io.read_calls,
            format_size(io.read_bytes),
            format_size(io.write_chars),
            io.write_calls,
            format_size(io.write_bytes)
        );
    }
    if want("modules")
        && let Some(mods) = &info.modules
    {
        o += "modules\n";
        let rows: Vec<Vec<String>> = mods
            .iter()
            .map(|m| {
                vec![
                    format!("{:#x}", m.base),
                    format_size(m.size),
                    lossy(&m.path),
                ]
            })
            .collect();
        o += &indent(&table(
            &[
                ("BASE", Align::Right),
                ("SIZE", Align::Right),
                ("PATH", Align::Left),
            ],
            &rows,
        ));
    }
    if want("handles")
        && let Some(hs) = &info.handles
    {
        o += "handles\n";
        let rows: Vec<Vec<String>> = hs
            .iter()
            .map(|h| {
                vec![
                    h.fd.to_string(),
                    h.kind.to_string(),
                    h.flags.map(|f| format!("{f:o}")).unwrap_or("-".into()),
                    h.cloexec
                        .map(|c| if c { "yes" } else { "no" }.to_string())
                        .unwrap_or("-".into()),
                    lossy(&h.target),
                ]
            })
            .collect();
        o += &indent(&table(
            &[
                ("FD", Align::Right),
                ("KIND", Align::Left),
                ("FLAGS", Align::Right),
                ("CLOEXEC", Align::Left),
                ("TARGET", Align::Left),
            ],
            &rows,
        ));
    }
    if want("token")
        && let Some(t) = &info.token
    {
        o += &format!(
            "token\n  uid {:?} (real, effective, saved, fs)  gid {:?}\n  groups {:?}\n",
            t.uid, t.gid, t.groups
        );
        o += &format!(
            "  effective caps: {}\n",
            if t.effective.is_empty() {
                "-".into()
            } else {
                t.effective.join(" ")
            }
        );
        o += &format!(
            "  no_new_privs {}  seccomp {}  lsm {}\n",
            t.no_new_privs,
            t.seccomp,
            t.lsm_label.as_deref().unwrap_or("-")
        );
    }
    if want("job") {
        o += &format!(
            "job\n  {}\n",
            b.job.as_deref().unwrap_or("(not in a taskloom job)")
        );
        if let Some(cg) = &info.cgroups {
            cg.iter()
                .for_each(|l| o += &format!("  cgroup {}\n", output::escape_control(l)));
        }
    }
    if want("classification") {
        o += &format!(
            "classification\n  {:?}: {}\n",
            info.classification, info.classification_reason
        );
    }
    if want("threads")
        && let Some(ts) = &info.thread_list
    {
        o += "threads\n";
        o += &indent(&thread_table(ts));
    }
    if !info.denied.is_empty() {
        o += &format!("not permitted to read: {}\n", info.denied.join(", "));
    }
    print!("{o}");
    Ok(0)
}

fn print_json(v: &serde_json::Value) -> i32 {
    println!("{v}");
    0
}

fn indent(t: &str) -> String {
    t.lines().map(|l| format!("  {l}\n")).collect()
}

fn thread_table(ts: &[inspect::ThreadInfo]) -> String {
    let rows: Vec<Vec<String>> = ts
        .iter()
        .map(|t| {
            vec![
                t.tid.to_string(),
                t.state.to_string(),
                t.policy.to_string(),
                t.nice.to_string(),
                t.affinity.clone(),
                t.last_cpu.to_string(),
                output::duration(t.user_time),
                output::duration(t.kernel_time),
                format!("{}/{}", t.voluntary_switches, t.involuntary_switches),
                t.wait_channel.clone().unwrap_or("-".into()),
                lossy(&t.name),
            ]
        })
        .collect();
    table(
        &[
            ("TID", Align::Right),
            ("S", Align::Left),
            ("POLICY", Align::Left),
            ("NICE", Align::Right),
            ("CPUS", Align::Left),
            ("LAST", Align::Right),
            ("USER", Align::Right),
            ("SYS", Align::Right),
            ("CSW", Align::Right),
            ("WCHAN", Align::Left),
            ("NAME", Align::Left),
        ],
        &rows,
    )
}

#[derive(Debug, Args)]
pub struct ThreadsArgs {
    /// The process id.
    pid: i32,
    /// Also read each thread's registers with ptrace (when permitted).
    #[arg(long)]
    context: bool,
    /// One JSON array on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct ThreadWithContext<'a> {
    #[serde(flatten)]
    thread: &'a inspect::ThreadInfo,
    context: Option<taskloom::thread::ThreadContext>,
    context_error: Option<String>,
}

pub fn threads_cmd(args: ThreadsArgs) -> Result<i32> {
    let ts = inspect::threads(args.pid)?;
    let contexts: Vec<(Option<taskloom::thread::ThreadContext>, Option<String>)> = ts
        .iter()
        .map(|t| {
            if !args.context {
                return (None, None);
            }
            match taskloom::thread::remote_thread_context(t.tid) {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(e.to_string())),
            }
        })
        .collect();
    if args.json {
        let v: Vec<ThreadWithContext> = ts
            .iter()
            .zip(&contexts)
            .map(|(t, (c, e))| ThreadWithContext {
                thread: t,
                context: *c,
                context_error: e.clone(),
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(0);
    }
    print!("{}", thread_table(&ts));
    if args.context {
        for (t, (c, e)) in ts.iter().zip(&contexts) {
            match (c, e) {
                (Some(c), _) => {
                    // The first three (pc, sp, frame) in full width, as debuggers print them.
                    let regs: Vec<String> = c
                        .registers()
                        .iter()
                        .enumerate()
                        .map(|(i, (name, v))| {
                            if i < 3 {
                                format!("{name} {v:#018x}")
                            } else {
                                format!("{name} {v:#x}")
                            }
                        })
                        .collect();
                    println!("{}: {}", t.tid, regs.join(" "))
                }
                (None, Some(e)) => println!("{}: no context: {e}", t.tid),
                _ => {}
            }
        }
    }
    Ok(0)
}

pub fn uid_label(uid: Option<u32>) -> String {
    match uid {
        Some(u) => inspect::user_name(u)
            .map(str::to_owned)
            .unwrap_or_else(|| u.to_string()),
        None => "?".into(),
    }
}
