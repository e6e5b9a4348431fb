//! What an installed `taskloom` comes with, made from the CLI's own
//! definition so it never drifts from `--help`: shell completions
//! (`taskloom completions SHELL`) and man pages (`taskloom manpages DIR`:
//! `taskloom.1` and one page per subcommand, `taskloom-run.1`, …).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManpagesArgs {
    /// The directory the pages go into (made if missing).
    dir: PathBuf,
}

/// Prints the completion script for a shell on stdout.
pub fn completions(args: CompletionsArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "taskloom", &mut std::io::stdout());
    Ok(0)
}

/// Writes `taskloom.1` and a page per subcommand (`taskloom-job-create.1`
/// for nested ones) into the directory, and lists them on stdout.
pub fn manpages(args: ManpagesArgs) -> Result<i32> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let cmd = Cli::command();
    write_pages(&cmd, "taskloom", &args.dir)?;
    Ok(0)
}

fn write_pages(cmd: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    let cmd = cmd
        .clone()
        .name(name.to_owned())
        .bin_name(name.replace('-', " "));
    let path = dir.join(format!("{name}.1"));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .with_context(|| format!("cannot render the page of {name}"))?;
    std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{}", path.display());
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
