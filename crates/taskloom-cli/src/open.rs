//! `taskloom open`: ShellExecute — open a document, folder or URL with its
//! associated application, or run a program, and report what ran.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use taskloom::shell::{Launch, ShellExecute, TargetKind, Verb};

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// What to do: open, explore (a folder), edit ($VISUAL/$EDITOR), runas (as root), or the ID of one of the application's desktop actions (new-window, ...).
    #[arg(long, default_value = "open", value_name = "VERB")]
    verb: Verb,
    /// Working directory of what starts (default: the entry's Path key, else this one).
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// Show what would run, without starting it.
    #[arg(long)]
    dry_run: bool,
    /// Wait for the started process and exit with its code (128+N for signal N).
    #[arg(long, conflicts_with = "dry_run")]
    wait: bool,
    /// Print the launch as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// A file, folder or URL (`https://…`, `file:///…`).
    #[arg(value_name = "TARGET")]
    target: OsString,
    /// Arguments for a program target (after `--`).
    #[arg(last = true, value_name = "PARAMETERS")]
    parameters: Vec<OsString>,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    launch: &'a Launch,
    pid: Option<i32>,
    exit_code: Option<i32>,
}

pub fn main(args: OpenArgs) -> Result<i32> {
    let mut se = ShellExecute::new(&args.target)
        .verb(args.verb.clone())
        .parameters(&args.parameters);
    if let Some(d) = &args.cwd {
        se = se.directory(d);
    }
    if args.dry_run {
        let launch = se.resolve()?;
        print(&args, &launch, None, None)?;
        return Ok(0);
    }
    let mut launched = se.spawn()?;
    let pid = launched.process.pid();
    if !args.wait {
        print(&args, &launched.launch, Some(pid), None)?;
        return Ok(0);
    }
    if !args.json {
        print(&args, &launched.launch, Some(pid), None)?;
    }
    let code = launched.process.wait()?.shell_code();
    if args.json {
        print(&args, &launched.launch, Some(pid), Some(code))?;
    }
    Ok(code)
}

fn print(args: &OpenArgs, launch: &Launch, pid: Option<i32>, exit_code: Option<i32>) -> Result<()> {
    if args.json {
        let r = Report {
            launch,
            pid,
            exit_code,
        };
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let what = match (&launch.application, &launch.mime) {
        (Some(app), Some(mime)) => {
            let via = match &launch.matched_mime {
                Some(m) if m != mime => format!(", by way of {m}"),
                _ => String::new(),
            };
            format!("{app} ({mime}{via})")
        }
        (None, _) if launch.target == TargetKind::Program => "the program itself".to_string(),
        (None, _) => "the editor ($VISUAL, else $EDITOR)".to_string(),
        (Some(app), None) => app.clone(),
    };
    let verb = if args.dry_run { "would open" } else { "opened" };
    let target = crate::output::escape_control(&args.target.to_string_lossy());
    let mut line = format!("{verb} {target} with {what}");
    if let Some(pid) = pid {
        line.push_str(&format!(": pid {pid}"));
    }
    if let Some(action) = &launch.action {
        line.push_str(&format!(", its action {action}"));
    }
    if launch.as_root {
        line.push_str(", as root");
    }
    eprintln!("{line}");
    let argv: Vec<String> = launch
        .argv
        .iter()
        .map(|a| shell_quote(&String::from_utf8_lossy(a)))
        .collect();
    eprintln!("  command: {}", argv.join(" "));
    if !launch.actions.is_empty() {
        eprintln!("  its verbs: {}", launch.actions.join(", "));
    }
    if let Some(d) = &launch.cwd {
        eprintln!(
            "  in: {}",
            crate::output::escape_control(&d.to_string_lossy())
        );
    }
    Ok(())
}

/// Quotes an argument for display the way a POSIX shell would read it back.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!(
            "'{}'",
            crate::output::escape_control(s).replace('\'', r"'\''")
        )
    }
}
