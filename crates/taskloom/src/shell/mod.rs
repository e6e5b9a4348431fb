//! `ShellExecute`: open a document, folder or URL with the application the
//! desktop associates with it, or run a program, and hand back the process
//! (`SEE_MASK_NOCLOSEPROCESS`).
//!
//! Windows asks the registry which application opens a file type; Linux
//! desktops answer the same question with the freedesktop.org
//! specifications, which this module reads itself:
//!
//! - **the type** of a file: its name against the shared MIME-info
//!   database (`mime/globs2`), then its content (text or not); a directory
//!   is `inode/directory`; a URL is `x-scheme-handler/<scheme>`;
//! - **the application**: `mimeapps.list` (defaults, added and removed
//!   associations) in the XDG configuration and data directories, then the
//!   `MimeType` keys of the installed desktop entries, for the type and then
//!   each of its ancestors (`text/x-csrc`, `text/plain`,
//!   `application/octet-stream`);
//! - **the command line**: the entry's `Exec` key with its field codes
//!   (`%f`, `%u`, `%i`, ...) expanded, inside a terminal emulator when the
//!   entry asks for one (`Terminal=true`).
//!
//! `xdg-open` does the same lookup but detaches what it starts, so the
//! caller gets no process; here the application is started with
//! [`ProcessBuilder`] and its [`Process`] returned.
//!
//! Verbs: `open` (the default), `explore` (a folder in its file manager),
//! `edit` (`$VISUAL`, else `$EDITOR`, the Unix convention: desktop entries
//! have no edit verb), `runas` (as root, which needs the privilege to
//! switch user: taskloom does not prompt like UAC), and any other name is
//! one of the associated application's own verbs, a `[Desktop Action]`
//! of its entry (`new-window`, `print`), as Windows takes a file type's
//! registered verbs. A program (an ELF
//! binary or a `#!` script with an execute bit) is run directly with the
//! parameters, as ShellExecute runs an `.exe`; parameters given for a
//! document are an error rather than silently dropped.
//!
//! ```no_run
//! use taskloom::shell::ShellExecute;
//! let launched = ShellExecute::new("report.pdf").spawn().unwrap();
//! println!("opened with {:?}", launched.launch.argv);
//! ```

pub mod assoc;
pub mod desktop;

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use self::assoc::{AppIndex, MimeDb, XdgDirs};
use self::desktop::{ExecContext, ExecTarget};
use crate::error::{Error, Result};
use crate::process::{Credentials, Process, ProcessBuilder, find_executable, split_command_line};

/// What to do with the target (`lpVerb`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Verb {
    /// Open it with its associated application, or run it if it is a program.
    #[default]
    Open,
    /// Open a folder in the application associated with `inode/directory`.
    Explore,
    /// Edit it with `$VISUAL`, else `$EDITOR`.
    Edit,
    /// As `Open`, as root.
    RunAs,
    /// One of the associated application's own verbs: a `[Desktop Action
    /// ID]` of its desktop entry (`new-window`, `print`, ...), as Windows
    /// takes the verbs a file type registers.
    Action(String),
}

impl std::str::FromStr for Verb {
    type Err = Error;
    fn from_str(s: &str) -> Result<Verb> {
        match s.to_ascii_lowercase().as_str() {
            "open" => Ok(Verb::Open),
            "explore" => Ok(Verb::Explore),
            "edit" => Ok(Verb::Edit),
            "runas" => Ok(Verb::RunAs),
            _ if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Ok(Verb::Action(s.to_string()))
            }
            _ => Err(Error::InvalidInput {
                what: "verb",
                reason: format!(
                    "{s:?}: expected open, explore, edit, runas or the ID of a desktop action"
                ),
            }),
        }
    }
}

/// What the target turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// A program, run directly.
    Program,
    /// A file opened by an application.
    Document,
    /// A directory.
    Folder,
    /// A URL other than `file://`.
    Url,
}

/// The resolved launch: what runs, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Launch {
    /// What the target is.
    pub target: TargetKind,
    /// Its MIME type (absent for a program).
    pub mime: Option<String>,
    /// The type whose association was used (the target's or an ancestor's).
    pub matched_mime: Option<String>,
    /// The desktop file ID of the application, when one was used.
    pub application: Option<String>,
    /// The `.desktop` file.
    pub desktop_file: Option<PathBuf>,
    /// The command that runs, program first (exact bytes).
    #[serde(serialize_with = "crate::bytes::serialize_list")]
    pub argv: Vec<Vec<u8>>,
    /// Its working directory, when set.
    pub cwd: Option<PathBuf>,
    /// Whether it runs as root (`runas`).
    pub as_root: bool,
    /// The desktop action used, for a verb other than the four built in.
    pub action: Option<String>,
    /// The application's own verbs (its desktop actions), usable as `Verb::Action`.
    pub actions: Vec<String>,
}

impl Launch {
    /// A launch that involves no desktop entry (a program, an editor).
    fn without_app(target: TargetKind, argv: Vec<Vec<u8>>) -> Launch {
        Launch {
            target,
            mime: None,
            matched_mime: None,
            application: None,
            desktop_file: None,
            argv,
            cwd: None,
            as_root: false,
            action: None,
            actions: Vec::new(),
        }
    }
}

/// A started launch: what ran and the process handle.
#[derive(Debug)]
pub struct Launched {
    /// What was resolved.
    pub launch: Launch,
    /// The process (`hProcess` of `SHELLEXECUTEINFO`).
    pub process: Process,
}

/// `ShellExecuteEx`: a builder for one launch.
#[derive(Debug, Clone)]
pub struct ShellExecute {
    target: OsString,
    verb: Verb,
    parameters: Vec<OsString>,
    directory: Option<PathBuf>,
    dirs: Option<XdgDirs>,
}

impl ShellExecute {
    /// A launch of `target` (`lpFile`): a path, or a URL such as `https://…` or `file:///…`.
    pub fn new(target: impl AsRef<OsStr>) -> ShellExecute {
        ShellExecute {
            target: target.as_ref().to_owned(),
            verb: Verb::Open,
            parameters: Vec::new(),
            directory: None,
            dirs: None,
        }
    }

    /// The verb (`lpVerb`).
    pub fn verb(mut self, verb: Verb) -> Self {
        self.verb = verb;
        self
    }

    /// Arguments for a program target (`lpParameters`).
    pub fn parameters<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.parameters
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// The working directory of what starts (`lpDirectory`); otherwise the
    /// entry's `Path` key, else the caller's.
    pub fn directory(mut self, dir: impl AsRef<Path>) -> Self {
        self.directory = Some(dir.as_ref().to_owned());
        self
    }

    /// Where the associations are read from (default: the XDG environment variables).
    pub fn xdg_dirs(mut self, dirs: XdgDirs) -> Self {
        self.dirs = Some(dirs);
        self
    }

    /// Resolves what would run, without starting it.
    pub fn resolve(&self) -> Result<Launch> {
        let dirs = self.dirs.clone().unwrap_or_else(XdgDirs::from_env);
        let db = MimeDb::load(&dirs);
        let target = classify(&self.target)?;
        let shown = self.target.to_string_lossy().into_owned();
        if !self.parameters.is_empty() && !matches!(target, Classified::Program(_)) {
            return Err(Error::InvalidInput {
                what: "parameters",
                reason: format!("{shown} is not a program: parameters go to programs only"),
            });
        }
        let action = match &self.verb {
            Verb::Action(id) => Some(id.as_str()),
            _ => None,
        };
        let mut launch = match (&self.verb, target) {
            (Verb::Explore, Classified::Folder(p))
            | (Verb::Open | Verb::RunAs | Verb::Action(_), Classified::Folder(p)) => self
                .with_app(
                    &dirs,
                    &db,
                    action,
                    TargetKind::Folder,
                    "inode/directory",
                    &file_target(&p),
                )?,
            (Verb::Explore, _) => {
                return Err(Error::InvalidInput {
                    what: "target",
                    reason: format!("explore needs a folder; {shown} is not one"),
                });
            }
            (Verb::Edit, Classified::Url(_)) => {
                return Err(Error::InvalidInput {
                    what: "target",
                    reason: format!("edit needs a local file; {shown} is a URL"),
                });
            }
            (Verb::Edit, Classified::Program(p) | Classified::Document(p)) => {
                edit_launch(&p, TargetKind::Document, &shown)?
            }
            (Verb::Edit, Classified::Folder(p)) => edit_launch(&p, TargetKind::Folder, &shown)?,
            (Verb::Action(id), Classified::Program(_)) => {
                return Err(Error::InvalidInput {
                    what: "verb",
                    reason: format!("{shown} is a program: it has no desktop action {id:?}"),
                });
            }
            (Verb::Open | Verb::RunAs, Classified::Program(p)) => {
                let mut argv = vec![p.as_os_str().as_bytes().to_vec()];
                argv.extend(self.parameters.iter().map(|a| a.as_bytes().to_vec()));
                Launch::without_app(TargetKind::Program, argv)
            }
            (Verb::Open | Verb::RunAs | Verb::Action(_), Classified::Document(p)) => {
                let mime = document_type(&db, &p);
                self.with_app(
                    &dirs,
                    &db,
                    action,
                    TargetKind::Document,
                    &mime,
                    &file_target(&p),
                )?
            }
            (Verb::Open | Verb::RunAs | Verb::Action(_), Classified::Url(url)) => {
                let scheme = url
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let t = ExecTarget { path: None, url };
                self.with_app(
                    &dirs,
                    &db,
                    action,
                    TargetKind::Url,
                    &format!("x-scheme-handler/{scheme}"),
                    &t,
                )?
            }
        };
        if let Some(d) = &self.directory {
            launch.cwd = Some(d.clone());
        }
        launch.as_root = self.verb == Verb::RunAs;
        launch.action = action.map(str::to_string);
        Ok(launch)
    }

    /// Resolves and starts the launch.
    pub fn spawn(&self) -> Result<Launched> {
        let launch = self.resolve()?;
        let (prog, args) = launch
            .argv
            .split_first()
            .expect("a launch always has a program");
        let mut b = ProcessBuilder::new(OsStr::from_bytes(prog))
            .args(args.iter().map(|a| OsStr::from_bytes(a)));
        if let Some(d) = &launch.cwd {
            b = b.current_dir(d);
        }
        if launch.as_root {
            b = b.credentials(Credentials::for_user("root")?);
        }
        let process = b.spawn()?;
        Ok(Launched { launch, process })
    }

    /// The launch of `target` by the application associated with `mime` or,
    /// failing that, with the nearest of its ancestors.
    fn with_app(
        &self,
        dirs: &XdgDirs,
        db: &MimeDb,
        action: Option<&str>,
        kind: TargetKind,
        mime: &str,
        target: &ExecTarget,
    ) -> Result<Launch> {
        let apps = AppIndex::load(dirs);
        let shown = self.target.to_string_lossy().into_owned();
        for m in db.lineage(mime) {
            let Some(app) = assoc::default_app(dirs, &apps, &m) else {
                continue;
            };
            let exec = match action {
                None => app.entry.exec.as_deref().unwrap_or_default(),
                Some(id) => {
                    let Some(a) = app.entry.actions.iter().find(|a| a.id == id) else {
                        let have: Vec<&str> =
                            app.entry.actions.iter().map(|a| a.id.as_str()).collect();
                        return Err(Error::InvalidInput {
                            what: "verb",
                            reason: format!(
                                "{} (which opens {m}) has no action {id:?}; it has: {}",
                                app.id,
                                if have.is_empty() {
                                    "none".to_string()
                                } else {
                                    have.join(", ")
                                }
                            ),
                        });
                    };
                    a.exec.as_deref().ok_or_else(|| Error::DesktopEntry {
                        path: app.path.clone(),
                        reason: format!("action {id:?} has no Exec"),
                    })?
                }
            };
            let ctx = ExecContext {
                name: &app.entry.name,
                icon: app.entry.icon.as_deref(),
                entry_path: &app.path,
            };
            let mut argv = desktop::expand_exec(exec, Some(target), ctx).map_err(|reason| {
                Error::DesktopEntry {
                    path: app.path.clone(),
                    reason: format!("Exec: {reason}"),
                }
            })?;
            if app.entry.terminal {
                argv = in_terminal(argv).ok_or_else(|| Error::DesktopEntry {
                    path: app.path.clone(),
                    reason: "it needs a terminal (Terminal=true), and neither $TERMINAL \
                             nor x-terminal-emulator is there"
                        .into(),
                })?;
            }
            return Ok(Launch {
                target: kind,
                mime: Some(mime.to_string()),
                matched_mime: Some(m),
                application: Some(app.id.clone()),
                desktop_file: Some(app.path.clone()),
                argv: argv.into_iter().map(|a| a.into_encoded_bytes()).collect(),
                cwd: app.entry.path.clone(),
                as_root: false,
                action: None,
                actions: app.entry.actions.iter().map(|a| a.id.clone()).collect(),
            });
        }
        Err(Error::NoAssociation {
            target: shown,
            mime: mime.to_string(),
        })
    }
}

/// The target after a look at it.
enum Classified {
    Program(PathBuf),
    Document(PathBuf),
    Folder(PathBuf),
    Url(String),
}

/// Tells a URL (`scheme:`…, RFC 3986) from a path; `file://` URLs become paths.
fn classify(target: &OsStr) -> Result<Classified> {
    let bytes = target.as_bytes();
    if bytes.is_empty() {
        return Err(Error::InvalidInput {
            what: "target",
            reason: "empty".into(),
        });
    }
    // A file that exists wins over a reading as a URL (`notes:v2`, `host:8080`).
    if let Some(scheme_len) = url_scheme_len(bytes).filter(|_| !Path::new(target).exists()) {
        let scheme = &bytes[..scheme_len];
        if !scheme.eq_ignore_ascii_case(b"file") {
            let url = std::str::from_utf8(bytes).map_err(|_| Error::InvalidInput {
                what: "URL",
                reason: format!("{} is not UTF-8", target.to_string_lossy()),
            })?;
            return Ok(Classified::Url(url.to_string()));
        }
        let path = file_url_path(&bytes[scheme_len + 1..]).ok_or_else(|| Error::InvalidInput {
            what: "URL",
            reason: format!(
                "{}: only local file:// URLs can be opened",
                target.to_string_lossy()
            ),
        })?;
        return classify_path(&path);
    }
    classify_path(Path::new(target))
}

fn classify_path(path: &Path) -> Result<Classified> {
    let abs = std::path::absolute(path)
        .map_err(|e| Error::os(format!("resolve the target path {}", path.display()), e))?;
    let meta = std::fs::metadata(&abs).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NoSuchTarget { path: abs.clone() },
        _ => Error::os(format!("look at the target {}", abs.display()), e),
    })?;
    if meta.is_dir() {
        return Ok(Classified::Folder(abs));
    }
    if meta.permissions().mode() & 0o111 != 0 && is_program(&abs) {
        return Ok(Classified::Program(abs));
    }
    Ok(Classified::Document(abs))
}

/// An ELF image or a `#!` script.
fn is_program(path: &Path) -> bool {
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == *b"\x7fELF" || head.starts_with(b"#!"))
}

/// The length of the scheme when `s` starts with `scheme:`, for schemes of
/// two or more characters (a one-letter "scheme" is more likely a path).
fn url_scheme_len(s: &[u8]) -> Option<usize> {
    let colon = s.iter().position(|&c| c == b':')?;
    let scheme = &s[..colon];
    let ok = scheme.len() >= 2
        && scheme[0].is_ascii_alphabetic()
        && scheme
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
    ok.then_some(colon)
}

/// The local path of the part of a `file:` URL after the colon:
/// `///p` or `//localhost/p`, with `%XX` escapes decoded.
fn file_url_path(rest: &[u8]) -> Option<PathBuf> {
    let p = if let Some(r) = rest.strip_prefix(b"//localhost") {
        if !r.starts_with(b"/") {
            return None;
        }
        r
    } else if let Some(r) = rest.strip_prefix(b"//") {
        if !r.starts_with(b"/") {
            return None; // another host
        }
        r
    } else if rest.starts_with(b"/") {
        rest
    } else {
        return None;
    };
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'%' && i + 2 < p.len() {
            let hex = std::str::from_utf8(&p[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(p[i]);
            i += 1;
        }
    }
    Some(PathBuf::from(OsStr::from_bytes(&out)))
}

/// A local file as an `Exec` target: its path, and a `file://` URL with
/// the bytes outside the unreserved set percent-encoded.
fn file_target(p: &Path) -> ExecTarget {
    let mut url = String::from("file://");
    for &b in p.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    ExecTarget {
        path: Some(p.to_owned()),
        url,
    }
}

/// A document's type: by name, else by content (`text/plain` when its
/// first 4 KiB are UTF-8 without NUL, else `application/octet-stream`).
fn document_type(db: &MimeDb, p: &Path) -> String {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if let Some(m) = db.by_name(&name) {
        return db.unalias(m).to_string();
    }
    let mut head = Vec::with_capacity(4096);
    let text = std::fs::File::open(p)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .is_ok()
        && !head.contains(&0)
        && match std::str::from_utf8(&head) {
            Ok(_) => true,
            // A multi-byte character cut at the 4 KiB boundary is still text.
            Err(e) => e.error_len().is_none(),
        };
    if text {
        "text/plain".into()
    } else {
        "application/octet-stream".into()
    }
}

/// `$VISUAL`, else `$EDITOR` (a command line, split as a shell would), with the file.
fn edit_launch(p: &Path, kind: TargetKind, shown: &str) -> Result<Launch> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .ok_or_else(|| Error::NoAssociation {
            target: shown.to_string(),
            mime: "editing (neither VISUAL nor EDITOR is set)".into(),
        })?;
    let mut argv: Vec<Vec<u8>> = split_command_line(&editor)?
        .into_iter()
        .map(String::into_bytes)
        .collect();
    argv.push(p.as_os_str().as_bytes().to_vec());
    Ok(Launch::without_app(kind, argv))
}

/// Wraps a command for `Terminal=true`: `$TERMINAL -e …`, else
/// `x-terminal-emulator -e …` (Debian's alternative); `None` without either.
fn in_terminal(argv: Vec<OsString>) -> Option<Vec<OsString>> {
    let term = std::env::var_os("TERMINAL")
        .filter(|t| !t.is_empty())
        .or_else(|| find_executable("x-terminal-emulator").map(PathBuf::into_os_string))?;
    let mut out = vec![term, OsString::from("-e")];
    out.extend(argv);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths() {
        assert_eq!(url_scheme_len(b"https://x"), Some(5));
        assert_eq!(url_scheme_len(b"mailto:a@b"), Some(6));
        assert_eq!(url_scheme_len(b"C:\\x"), None);
        assert_eq!(url_scheme_len(b"./a:b"), None);
        assert_eq!(url_scheme_len(b"notes.txt"), None);
        assert_eq!(
            file_url_path(b"///tmp/a%20b").unwrap(),
            PathBuf::from("/tmp/a b")
        );
        assert_eq!(
            file_url_path(b"//localhost/etc/x").unwrap(),
            PathBuf::from("/etc/x")
        );
        assert_eq!(file_url_path(b"//server/share"), None);
        let t = file_target(Path::new("/tmp/a b\u{e9}"));
        assert_eq!(t.url, "file:///tmp/a%20b%C3%A9");
    }

    #[test]
    fn verbs_parse() {
        assert_eq!("RunAs".parse::<Verb>().unwrap(), Verb::RunAs);
        assert_eq!(
            "new-window".parse::<Verb>().unwrap(),
            Verb::Action("new-window".into())
        );
        assert!("two words".parse::<Verb>().is_err());
        assert!("".parse::<Verb>().is_err());
    }
}
