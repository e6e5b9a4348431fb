//! The library's error type: every variant says what failed and why.

use std::io;
use std::path::PathBuf;

/// Result alias used across taskloom.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a logon was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogonFailure {
    /// The password is wrong (`PAM_AUTH_ERR`).
    WrongPassword,
    /// No such user (checked through NSS before PAM is asked).
    UnknownUser,
    /// The account has expired (`PAM_ACCT_EXPIRED`).
    AccountExpired,
    /// The password has expired and must be changed first (`PAM_NEW_AUTHTOK_REQD`).
    PasswordExpired,
    /// The password was right, but the account may not log on now: the
    /// account check refused it (locked, expired where PAM does not say so
    /// by its code, outside its hours...; PAM's message says which).
    AccountLocked,
    /// This process may not start processes as another user (it is not root).
    NotPermitted,
    /// Another PAM failure.
    Other,
}

impl std::fmt::Display for LogonFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogonFailure::WrongPassword => "wrong password",
            LogonFailure::UnknownUser => "no such user",
            LogonFailure::AccountExpired => "the account has expired",
            LogonFailure::PasswordExpired => "the password has expired and must be changed",
            LogonFailure::AccountLocked => {
                "the account may not log on now (the account check refused it)"
            }
            LogonFailure::NotPermitted => {
                "starting a process as another user needs root (CAP_SETUID, CAP_SETGID)"
            }
            LogonFailure::Other => "PAM refused it",
        })
    }
}

/// What went wrong, with enough context to print a useful message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A program name without `/` was not found on the search path.
    #[error("program not found: {program} (searched PATH={search_path})")]
    ProgramNotFound {
        /// The name that was looked up.
        program: String,
        /// The search path that was used.
        search_path: String,
    },
    /// The program path does not exist.
    #[error("program not found: {}", path.display())]
    NoSuchFile {
        /// The path given.
        path: PathBuf,
    },
    /// The program path names a directory.
    #[error("cannot execute {}: is a directory", path.display())]
    IsADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// `execve` refused the program (EACCES, ENOEXEC, ETXTBSY, ...).
    #[error("cannot execute {}: {source}", path.display())]
    Exec {
        /// The resolved program path.
        path: PathBuf,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The working directory could not be entered in the child.
    #[error("cannot change directory to {}: {source}", path.display())]
    CurrentDir {
        /// The directory given.
        path: PathBuf,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// An environment variable name is empty or holds `=` or NUL.
    #[error("invalid environment variable name {name:?}: {reason}")]
    InvalidEnvName {
        /// The offending name, lossily shown.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// An argument, path or value holds a NUL byte.
    #[error("{what} contains a NUL byte: {value:?}")]
    NulByte {
        /// Which input.
        what: &'static str,
        /// The offending value, lossily shown.
        value: String,
    },
    /// A command line string could not be split.
    #[error("cannot parse command line: {0}")]
    CommandLine(String),
    /// A CPU list such as `0-3,5` did not parse or names no CPU.
    #[error("invalid CPU list {input:?}: {reason}")]
    InvalidCpuList {
        /// The text given.
        input: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Two handles were asked to land on the same descriptor number.
    #[error("file descriptor {target} is assigned twice in the child")]
    FdCollision {
        /// The descriptor number given twice.
        target: i32,
    },
    /// The thread does not exist (any more).
    #[error("no such thread: {tid}")]
    NoSuchThread {
        /// Its thread id.
        tid: i32,
    },
    /// A user or group name does not exist.
    #[error("{kind} not found: {name}")]
    NoSuchUser {
        /// "user" or "group".
        kind: &'static str,
        /// The name looked up.
        name: String,
    },
    /// A logon (user name and password, through PAM) was refused.
    #[error("logon as {user} refused: {failure}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    Logon {
        /// The user name given.
        user: String,
        /// Why, as PAM said it.
        failure: LogonFailure,
        /// PAM's own message, when it gave one.
        detail: String,
    },
    /// The kernel refused an operation for lack of privilege.
    #[error("not permitted to {what}: {source}")]
    PermissionDenied {
        /// What was attempted.
        what: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The systemd manager refused or failed a request (a job's scope).
    #[error("systemd could not {what}: {reason}")]
    Systemd {
        /// What was asked.
        what: String,
        /// What systemd (or the bus) said.
        reason: String,
    },
    /// No process with that pid exists (or it was already reaped).
    #[error("no such process: {pid}")]
    NoSuchProcess {
        /// The pid looked up.
        pid: i32,
    },
    /// A setting could not be applied to the new process before it ran.
    #[error("cannot {what} in the new process: {source}")]
    ChildSetup {
        /// Which step failed.
        what: &'static str,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// A cgroup control file could not be read or written.
    #[error("cgroup: cannot {op}: {source}")]
    Cgroup {
        /// What was attempted, with the path.
        op: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// A job name is not one safe path component.
    #[error("invalid job name {name:?}: {reason}")]
    InvalidJobName {
        /// The name given.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// No job with that name exists.
    #[error("no such job: {0}")]
    NoSuchJob(String),
    /// A job with that name exists already.
    #[error("job already exists: {0}")]
    JobExists(String),
    /// The machine offers no cgroup taskloom may write.
    #[error("jobs are unavailable here: {0}")]
    JobsUnavailable(String),
    /// What was asked has no meaning, or no implementation yet, on this
    /// operating system; `reason` says which and why.
    #[error("{what} is not supported here: {reason}")]
    Unsupported {
        /// What was asked.
        what: &'static str,
        /// Why it cannot be done here.
        reason: String,
    },
    /// A ShellExecute target (a file or folder) does not exist.
    #[error("no such file or folder: {}", path.display())]
    NoSuchTarget {
        /// The path, made absolute.
        path: PathBuf,
    },
    /// No application is associated with the target's type (ShellExecute's
    /// `SE_ERR_NOASSOC`).
    #[error("no application is associated with {mime}: cannot open {target}")]
    NoAssociation {
        /// The target, lossily shown.
        target: String,
        /// Its type, or what else was missing.
        mime: String,
    },
    /// A desktop entry could not be used.
    #[error("desktop entry {}: {reason}", path.display())]
    DesktopEntry {
        /// The `.desktop` file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Bad input that fits no other variant.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which input.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// Any other system call failure.
    #[error("{op} failed: {source}")]
    Os {
        /// The operation and what it was done to, e.g. `"pidfd_open of process 42"`.
        op: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
}

/// What kind of failure an [`Error`] is, for callers to match on without
/// naming every variant (the variant still says exactly what failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Something named does not exist: a program, a file, a user, a job, a
    /// process, a shell target.
    NotFound,
    /// It exists already (a job of that name).
    AlreadyExists,
    /// The kernel, PAM or a job's mode refused it for lack of a right.
    PermissionDenied,
    /// The caller's input is wrong (a name, a limit, a CPU list, a command line).
    InvalidInput,
    /// This machine cannot do it (no writable cgroup, no association, no
    /// systemd answer).
    Unsupported,
    /// A program could not be started (exec refused, set-up failed in the child).
    StartFailed,
    /// A system call or cgroup file failed otherwise.
    Os,
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::ProgramNotFound { .. }
            | Error::NoSuchFile { .. }
            | Error::NoSuchUser { .. }
            | Error::NoSuchProcess { .. }
            | Error::NoSuchThread { .. }
            | Error::NoSuchJob(_)
            | Error::NoSuchTarget { .. } => ErrorKind::NotFound,
            Error::JobExists(_) => ErrorKind::AlreadyExists,
            Error::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            Error::Logon { failure, .. } => match failure {
                LogonFailure::UnknownUser => ErrorKind::NotFound,
                LogonFailure::Other => ErrorKind::Os,
                _ => ErrorKind::PermissionDenied,
            },
            Error::IsADirectory { .. }
            | Error::CurrentDir { .. }
            | Error::InvalidEnvName { .. }
            | Error::NulByte { .. }
            | Error::CommandLine(_)
            | Error::InvalidCpuList { .. }
            | Error::FdCollision { .. }
            | Error::InvalidJobName { .. }
            | Error::DesktopEntry { .. }
            | Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::JobsUnavailable(_)
            | Error::NoAssociation { .. }
            | Error::Systemd { .. }
            | Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Exec { .. } | Error::ChildSetup { .. } => ErrorKind::StartFailed,
            Error::Cgroup { .. } | Error::Os { .. } => ErrorKind::Os,
        }
    }

    /// Wraps an OS error, turning EPERM/EACCES into [`Error::PermissionDenied`].
    pub(crate) fn os(op: impl Into<String>, source: io::Error) -> Self {
        let op = op.into();
        // EPERM and EACCES on Linux, ERROR_ACCESS_DENIED and friends on Windows.
        match source.kind() {
            io::ErrorKind::PermissionDenied => Error::PermissionDenied { what: op, source },
            _ => Error::Os { op, source },
        }
    }

    /// Wraps the calling thread's `errno`.
    /// A use of a handle it was not opened for, as Windows refuses it
    /// (ERROR_ACCESS_DENIED) whatever the kernel would allow: `what` says
    /// the use and the object, `right` is the missing access flag's name
    /// in a `PROCESS` or `THREAD` access mask (`kind`).
    pub(crate) fn not_granted(what: String, kind: &str, right: &str) -> Self {
        let right = match right {
            "SYNCHRONIZE" => right.to_owned(),
            _ => format!("{kind}_{right}"),
        };
        Error::PermissionDenied {
            what: format!("{what}: this handle was opened without {right}"),
            source: access_denied(),
        }
    }

    #[cfg(target_os = "linux")]
    pub(crate) fn last_os(op: impl Into<String>) -> Self {
        Self::os(op, io::Error::last_os_error())
    }
}

/// The OS's own "access denied" error (EACCES, ERROR_ACCESS_DENIED).
pub(crate) fn access_denied() -> io::Error {
    #[cfg(target_os = "linux")]
    let code = libc::EACCES;
    #[cfg(windows)]
    let code = windows_sys::Win32::Foundation::ERROR_ACCESS_DENIED as i32;
    io::Error::from_raw_os_error(code)
}

/// A step whose failure is not the caller's error: a clean-up after
/// another failure, a best-effort setting, a kill of something that may
/// already be gone. Its failure is traced (target `taskloom`, level
/// `debug`; the binary shows it with `-v` or `TASKLOOM_LOG=debug`) and
/// otherwise let go.
pub(crate) trait OrLog {
    /// Traces a failure, saying what was attempted (`what` is only
    /// formatted when there is a failure).
    fn or_log(self, what: impl FnOnce() -> String);
}

impl<T, E: std::fmt::Display> OrLog for std::result::Result<T, E> {
    fn or_log(self, what: impl FnOnce() -> String) {
        if let Err(e) = self {
            tracing::debug!(target: "taskloom", "{}: {e}", what());
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod kind_tests {
    use super::*;

    #[test]
    fn kinds_group_the_variants_callers_match_on() {
        assert_eq!(Error::NoSuchProcess { pid: 1 }.kind(), ErrorKind::NotFound);
        assert_eq!(Error::NoSuchJob("a".into()).kind(), ErrorKind::NotFound);
        assert_eq!(
            Error::JobExists("a".into()).kind(),
            ErrorKind::AlreadyExists
        );
        let denied = Error::os("kill", io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(denied.kind(), ErrorKind::PermissionDenied);
        let wrong = Error::Logon {
            user: "u".into(),
            failure: LogonFailure::WrongPassword,
            detail: String::new(),
        };
        assert_eq!(wrong.kind(), ErrorKind::PermissionDenied);
        assert_eq!(
            Error::InvalidInput {
                what: "x",
                reason: "y".into()
            }
            .kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            Error::JobsUnavailable("no".into()).kind(),
            ErrorKind::Unsupported
        );
    }

    /// Collects the messages of the events it is given.
    struct Collect(std::sync::Mutex<Vec<String>>);

    impl tracing::Subscriber for Collect {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            struct Message<'a>(&'a mut String);
            impl tracing::field::Visit for Message<'_> {
                fn record_debug(&mut self, _: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    self.0.push_str(&format!("{v:?}"));
                }
            }
            let mut text = format!(
                "{} {}: ",
                event.metadata().level(),
                event.metadata().target()
            );
            event.record(&mut Message(&mut text));
            self.0.lock().unwrap().push(text);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn failures_let_go_are_traced_with_what_was_attempted() {
        let collect = std::sync::Arc::new(Collect(Default::default()));
        tracing::subscriber::with_default(collect.clone(), || {
            Err::<(), _>(io::Error::from_raw_os_error(libc::EBUSY))
                .or_log(|| "remove the job root /x".into());
            Ok::<(), io::Error>(()).or_log(|| unreachable!("formatted only on failure"));
        });
        let seen = collect.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(
            seen[0].starts_with("DEBUG taskloom: remove the job root /x: "),
            "{seen:?}"
        );
        assert!(seen[0].contains("busy"), "{seen:?}");
    }
}
