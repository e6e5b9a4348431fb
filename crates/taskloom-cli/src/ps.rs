//! `taskloom ps`: every process (or thread), as a table, a tree or JSON.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use clap::Args;
use taskloom::inspect::{self, ProcEntry, SnapshotOptions};
use taskloom::units::format_size;

use crate::output::{self, Align, table};

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show processes as a tree under their parents.
    #[arg(long)]
    tree: bool,
    /// One row per thread.
    #[arg(long)]
    threads: bool,
    /// Only processes of this user (Linux: name or uid; Windows: name or DOMAIN\name).
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Only processes whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    name: Option<String>,
    /// Only processes in this taskloom job (or its nested jobs).
    #[cfg(target_os = "linux")]
    #[arg(long, value_name = "JOB")]
    job: Option<String>,
    /// One JSON array on stdout (byte strings as documented in `taskloom::inspect::bytes`).
    #[arg(long)]
    json: bool,
}

#[cfg(target_os = "linux")]
fn user_label(e: &ProcEntry) -> String {
    crate::inspect::uid_label(e.uid)
}

fn command_text(e: &ProcEntry) -> String {
    if e.cmdline.is_empty() {
        format!("[{}]", String::from_utf8_lossy(&e.name))
    } else {
        e.cmdline
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(windows)]
fn user_label(e: &ProcEntry) -> String {
    e.user.clone().unwrap_or_else(|| "?".into())
}

/// Whether the row belongs to `user`: a name, with or without its domain.
#[cfg(windows)]
fn user_matches(e: &ProcEntry, user: &str) -> bool {
    e.user.as_deref().is_some_and(|u| {
        u.eq_ignore_ascii_case(user)
            || u.rsplit_once('\\')
                .is_some_and(|(_, name)| name.eq_ignore_ascii_case(user))
    })
}

pub fn ps(args: PsArgs) -> Result<i32> {
    let opts = SnapshotOptions {
        cmdline: true,
        #[cfg(target_os = "linux")]
        job: args.job.is_some(),
        #[cfg(windows)]
        job: false,
        threads: args.threads,
    };
    let mut rows = inspect::snapshot(opts)?;
    #[cfg(windows)]
    if let Some(u) = &args.user {
        rows.retain(|e| user_matches(e, u));
    }
    #[cfg(target_os = "linux")]
    if let Some(u) = &args.user {
        // A number is a uid; a name must exist ("user not found: x", not an empty table).
        let uid: u32 = match u.parse() {
            Ok(uid) => uid,
            Err(_) => taskloom::process::Credentials::for_user(u)?.uid,
        };
        rows.retain(|e| e.uid == Some(uid));
    }
    if let Some(n) = &args.name {
        rows.retain(|e| String::from_utf8_lossy(&e.name).contains(n.as_str()));
    }
    #[cfg(target_os = "linux")]
    if let Some(j) = &args.job {
        // A job that does not exist is an error, not an empty table.
        taskloom::job::Job::open(j)?;
        rows.retain(|e| {
            e.job
                .as_deref()
                .is_some_and(|x| x == j || x.starts_with(&format!("{j}/")))
        });
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        serde_json::to_writer(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(0);
    }
    let order: Vec<(usize, String)> = if args.tree {
        tree_order(&rows)
    } else {
        (0..rows.len()).map(|i| (i, String::new())).collect()
    };
    let mut header = vec![("PID", Align::Right)];
    if args.threads {
        header.push(("TID", Align::Right));
    }
    header.extend([
        ("PPID", Align::Right),
        ("USER", Align::Left),
        #[cfg(target_os = "linux")]
        ("S", Align::Left),
        ("THR", Align::Right),
        ("RSS", Align::Right),
        ("TIME", Align::Right),
        ("COMMAND", Align::Left),
    ]);
    let cells: Vec<Vec<String>> = order
        .iter()
        .map(|(i, prefix)| {
            let e = &rows[*i];
            let mut row = vec![e.tgid.to_string()];
            if args.threads {
                row.push(e.pid.to_string());
            }
            let cmd = if args.threads {
                String::from_utf8_lossy(&e.name).into_owned()
            } else {
                command_text(e)
            };
            row.extend([
                e.ppid.to_string(),
                user_label(e),
                #[cfg(target_os = "linux")]
                e.state.to_string(),
                e.threads.to_string(),
                format_size(e.rss),
                output::duration(e.user_time + e.kernel_time),
                format!("{prefix}{cmd}"),
            ]);
            row
        })
        .collect();
    out.write_all(table(&header, &cells).as_bytes())?;
    Ok(0)
}

/// Depth-first order with `├─ ` / `└─ ` prefixes.
fn tree_order(rows: &[ProcEntry]) -> Vec<(usize, String)> {
    let index: BTreeMap<i32, usize> = rows.iter().enumerate().map(|(i, e)| (e.pid, i)).collect();
    let mut children: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (i, e) in rows.iter().enumerate() {
        if e.ppid != e.pid && index.contains_key(&e.ppid) {
            children.entry(e.ppid).or_default().push(i);
        } else {
            roots.push(i);
        }
    }
    let mut out = Vec::new();
    fn walk(
        i: usize,
        rows: &[ProcEntry],
        children: &BTreeMap<i32, Vec<usize>>,
        lead: &str,
        branch: &str,
        out: &mut Vec<(usize, String)>,
    ) {
        out.push((i, format!("{lead}{branch}")));
        let kids = children.get(&rows[i].pid).cloned().unwrap_or_default();
        let next_lead = format!(
            "{lead}{}",
            match branch {
                "├─ " => "│  ",
                "└─ " => "   ",
                _ => "",
            }
        );
        for (k, c) in kids.iter().enumerate() {
            let b = if k + 1 == kids.len() {
                "└─ "
            } else {
                "├─ "
            };
            walk(*c, rows, children, &next_lead, b, out);
        }
    }
    for r in roots {
        walk(r, rows, &children, "", "", &mut out);
    }
    out
}
