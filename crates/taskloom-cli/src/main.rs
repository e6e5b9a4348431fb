//! The `taskloom` command: a thin face over the `taskloom` library.
#![deny(unsafe_code)] // one exception below: SIGPIPE's disposition, before any thread

#[cfg(target_os = "linux")]
mod inspect;
mod install;
// On Windows `run` only, for now (the README says which commands each system has).
#[cfg(target_os = "linux")]
mod job;
mod limits;
#[cfg(target_os = "linux")]
mod open;
mod output;
mod ps;
mod run;
#[cfg(target_os = "linux")]
mod top;

use clap::{Parser, Subcommand};

/// Start, contain, schedule and look inside processes: the Windows process,
/// thread, fiber and job model, on Linux and on Windows.
/// `taskloom --version`: the version, the commit when built from a
/// checkout, and the features built in (`--logon` exists only with `logon`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("TASKLOOM_COMMIT"),
    "; features: ",
    env!("TASKLOOM_FEATURES"),
    ")"
);

#[derive(Debug, Parser)]
#[command(name = "taskloom", version = VERSION, about, propagate_version = true)]
struct Cli {
    /// Say more on stderr: what taskloom let go (clean-ups that failed,
    /// best-effort settings refused), `-vv` for everything. `TASKLOOM_LOG`
    /// takes a filter instead (e.g. `taskloom=debug`, `trace`).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// What the binary lets go (a clean-up after a failure, a signal to a
/// process that may have ended, a terminal setting) is traced as the
/// library's is: target `taskloom`, level `debug`, shown with `-v`.
pub(crate) trait OrTrace {
    /// Traces a failure, saying what was attempted.
    fn or_trace(self, what: impl FnOnce() -> String);
}

impl<T, E: std::fmt::Display> OrTrace for Result<T, E> {
    fn or_trace(self, what: impl FnOnce() -> String) {
        if let Err(e) = self {
            tracing::debug!(target: "taskloom", "{}: {e}", what());
        }
    }
}

/// Sends the library's trace events to stderr, as `-v` or `TASKLOOM_LOG` asks.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("TASKLOOM_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(match verbose {
            0 => "off",
            1 => "taskloom=debug",
            _ => "trace",
        }),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .without_time()
        .init();
}

// Parsed once at start: the size of the largest variant does not matter
// (on Windows, with fewer subcommands, clippy would have `run` boxed).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Start a program in a job, wait for it, and report what it used.
    Run(run::RunArgs),
    /// Create, inspect and control jobs (groups of processes under kernel-enforced limits).
    #[cfg(target_os = "linux")]
    Job(job::JobArgs),
    /// List processes (or threads) fast, as a table, a tree or JSON.
    Ps(ps::PsArgs),
    /// Every section of one process: image, command line, environment, modules, handles, token, job, threads.
    #[cfg(target_os = "linux")]
    Inspect(inspect::InspectArgs),
    /// The threads of one process, with their registers when ptrace allows.
    #[cfg(target_os = "linux")]
    Threads(inspect::ThreadsArgs),
    /// A live view of processes and jobs (Process Explorer for the terminal; `--json` for a stream).
    #[cfg(target_os = "linux")]
    Top(top::TopArgs),
    /// Open a file, folder or URL with its associated application, or run a program (ShellExecute).
    #[cfg(target_os = "linux")]
    Open(open::OpenArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    Completions(install::CompletionsArgs),
    /// Write the man pages (taskloom.1, taskloom-run.1, …) into a directory.
    Manpages(install::ManpagesArgs),
}

fn main() {
    // Like other command-line tools: a closed pipe (`taskloom ps | head`) ends
    // the process quietly instead of panicking on the next write.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    #[cfg(unix)]
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL)
    };
    let cli = Cli::try_parse().unwrap_or_else(|err| {
        // A usage error of `run` exits 125, as `env`, `nice` and `timeout` do,
        // so that it is never mistaken for the program's own exit code.
        let run = std::env::args_os().nth(1).is_some_and(|a| a == "run");
        if run && err.use_stderr() {
            let _ = err.print();
            std::process::exit(run::EXIT_FAILURE);
        }
        err.exit()
    });
    init_logging(cli.verbose);
    let code = match cli.command {
        Command::Run(args) => run::main(args),
        #[cfg(target_os = "linux")]
        Command::Job(args) => job::main(args),
        Command::Ps(args) => ps::ps(args),
        #[cfg(target_os = "linux")]
        Command::Inspect(args) => inspect::inspect_cmd(args),
        #[cfg(target_os = "linux")]
        Command::Threads(args) => inspect::threads_cmd(args),
        #[cfg(target_os = "linux")]
        Command::Open(args) => open::main(args),
        #[cfg(target_os = "linux")]
        Command::Top(args) => top::main(args),
        Command::Completions(args) => install::completions(args),
        Command::Manpages(args) => install::manpages(args),
    };
    match code {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("taskloom: {}", output::error_chain(&err));
            std::process::exit(run::failure_code(&err));
        }
    }
}
