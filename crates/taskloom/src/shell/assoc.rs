//! File associations, as the freedesktop.org specifications define them:
//! the shared MIME-info database (`mime/globs2`, `mime/aliases`,
//! `mime/subclasses`) for a file's type, and `mimeapps.list` plus the
//! desktop entries' `MimeType` keys for the application that opens it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::desktop::DesktopEntry;

/// Where the XDG specifications look: configuration directories (most
/// important first) and data directories (most important first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdgDirs {
    /// `$XDG_CONFIG_HOME`, then `$XDG_CONFIG_DIRS`.
    pub config: Vec<PathBuf>,
    /// `$XDG_DATA_HOME`, then `$XDG_DATA_DIRS`.
    pub data: Vec<PathBuf>,
}

impl XdgDirs {
    /// From the environment, with the specification's defaults
    /// (`~/.config`, `/etc/xdg`, `~/.local/share`, `/usr/local/share:/usr/share`).
    pub fn from_env() -> XdgDirs {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let one = |var: &str, default: Option<PathBuf>| -> Option<PathBuf> {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or(default)
        };
        let many = |var: &str, default: &str| -> Vec<PathBuf> {
            let v = std::env::var_os(var).filter(|v| !v.is_empty());
            let s = v.as_deref().map_or(default.into(), |v| v.to_string_lossy());
            s.split(':')
                .filter(|p| p.starts_with('/'))
                .map(PathBuf::from)
                .collect()
        };
        let mut config: Vec<PathBuf> =
            one("XDG_CONFIG_HOME", home.as_ref().map(|h| h.join(".config")))
                .into_iter()
                .collect();
        config.extend(many("XDG_CONFIG_DIRS", "/etc/xdg"));
        let mut data: Vec<PathBuf> = one(
            "XDG_DATA_HOME",
            home.as_ref().map(|h| h.join(".local/share")),
        )
        .into_iter()
        .collect();
        data.extend(many("XDG_DATA_DIRS", "/usr/local/share:/usr/share"));
        XdgDirs { config, data }
    }

    /// A self-contained tree: `<root>/config` and `<root>/data` (for tests,
    /// or to pin the associations a tool uses).
    pub fn under(root: &Path) -> XdgDirs {
        XdgDirs {
            config: vec![root.join("config")],
            data: vec![root.join("data")],
        }
    }
}

/// One `globs2` rule.
#[derive(Debug, Clone)]
struct Glob {
    weight: u32,
    mime: String,
    pattern: String,
    case_sensitive: bool,
}

/// The MIME database of every data directory, merged.
#[derive(Debug, Default)]
pub struct MimeDb {
    globs: Vec<Glob>,
    aliases: Vec<(String, String)>,
    parents: Vec<(String, String)>,
}

impl MimeDb {
    /// Reads `mime/globs2` (or the older `mime/globs`), `mime/aliases` and
    /// `mime/subclasses` from each data directory. Missing files are fine:
    /// with no database every file is `text/plain` or
    /// `application/octet-stream` by its content.
    pub fn load(dirs: &XdgDirs) -> MimeDb {
        let mut db = MimeDb::default();
        for d in &dirs.data {
            let mime = d.join("mime");
            if let Ok(t) = std::fs::read_to_string(mime.join("globs2")) {
                for line in t.lines().filter(|l| !l.starts_with('#')) {
                    let mut f = line.splitn(4, ':');
                    let (Some(w), Some(m), Some(p)) = (f.next(), f.next(), f.next()) else {
                        continue;
                    };
                    let flags = f.next().unwrap_or("");
                    db.globs.push(Glob {
                        weight: w.parse().unwrap_or(50),
                        mime: m.to_string(),
                        pattern: p.to_string(),
                        case_sensitive: flags.split(',').any(|x| x == "cs"),
                    });
                }
            } else if let Ok(t) = std::fs::read_to_string(mime.join("globs")) {
                for line in t.lines().filter(|l| !l.starts_with('#')) {
                    if let Some((m, p)) = line.split_once(':') {
                        db.globs.push(Glob {
                            weight: 50,
                            mime: m.to_string(),
                            pattern: p.to_string(),
                            case_sensitive: false,
                        });
                    }
                }
            }
            for (file, into) in [
                ("aliases", &mut db.aliases),
                ("subclasses", &mut db.parents),
            ] {
                if let Ok(t) = std::fs::read_to_string(mime.join(file)) {
                    for line in t.lines() {
                        if let Some((a, b)) = line.split_once(' ') {
                            into.push((a.to_string(), b.trim().to_string()));
                        }
                    }
                }
            }
        }
        db
    }

    /// The type of a file by its name: the heaviest matching glob, the
    /// longest pattern among equals (the shared MIME-info rule).
    pub fn by_name(&self, file_name: &str) -> Option<&str> {
        let lower = file_name.to_lowercase();
        self.globs
            .iter()
            .filter(|g| {
                if g.case_sensitive {
                    glob_match(g.pattern.as_bytes(), file_name.as_bytes())
                } else {
                    glob_match(g.pattern.to_lowercase().as_bytes(), lower.as_bytes())
                }
            })
            .max_by_key(|g| (g.weight, g.pattern.len()))
            .map(|g| g.mime.as_str())
    }

    /// The canonical name of a type that may be an alias.
    pub fn unalias<'a>(&'a self, mime: &'a str) -> &'a str {
        self.aliases
            .iter()
            .find(|(a, _)| a == mime)
            .map_or(mime, |(_, c)| c.as_str())
    }

    /// `mime` and then its ancestors, most specific first: the database's
    /// subclasses, `text/plain` under every `text/*`, and
    /// `application/octet-stream` under everything but `inode/*`.
    pub fn lineage(&self, mime: &str) -> Vec<String> {
        let mut out = vec![self.unalias(mime).to_string()];
        let mut i = 0;
        while i < out.len() {
            let cur = out[i].clone();
            for (child, parent) in &self.parents {
                let parent = self.unalias(parent);
                if *child == cur && !out.iter().any(|o| o == parent) {
                    out.push(parent.to_string());
                }
            }
            i += 1;
        }
        if mime.starts_with("text/") && !out.iter().any(|o| o == "text/plain") {
            out.push("text/plain".into());
        }
        if !mime.starts_with("inode/") && !out.iter().any(|o| o == "application/octet-stream") {
            out.push("application/octet-stream".into());
        }
        out
    }
}

/// Shell-style matching of `*`, `?` and `[...]` (what `globs2` patterns use).
pub fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let (mut star_p, mut star_i) = (None::<usize>, 0);
    while i < s.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star_p = Some(p);
                    star_i = i;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(&pat[p..], s[i]) {
                        if matched {
                            p += next;
                            i += 1;
                            continue;
                        }
                    } else if s[i] == b'[' {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
                c if c == s[i] => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star_p {
            Some(sp) => {
                p = sp + 1;
                star_i += 1;
                i = star_i;
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Matches one byte against a `[...]` class at the start of `pat`: whether
/// it matched and the class's length, or `None` for an unterminated class.
fn class_match(pat: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut j = 1;
    let negate = matches!(pat.get(j), Some(b'!' | b'^'));
    if negate {
        j += 1;
    }
    let mut matched = false;
    let mut first = true;
    while j < pat.len() {
        if pat[j] == b']' && !first {
            return Some((matched != negate, j + 1));
        }
        first = false;
        if j + 2 < pat.len() && pat[j + 1] == b'-' && pat[j + 2] != b']' {
            if pat[j] <= c && c <= pat[j + 2] {
                matched = true;
            }
            j += 3;
        } else {
            if pat[j] == c {
                matched = true;
            }
            j += 1;
        }
    }
    None
}

/// An installed application: its desktop file ID, where the file is, and the entry.
#[derive(Debug, Clone)]
pub struct App {
    /// The desktop file ID (`org.example.Viewer.desktop`).
    pub id: String,
    /// The `.desktop` file.
    pub path: PathBuf,
    /// Its `[Desktop Entry]`.
    pub entry: DesktopEntry,
}

/// The desktop entries of every data directory's `applications/`, by ID;
/// an ID found in a more important directory hides the others.
#[derive(Debug, Default)]
pub struct AppIndex {
    /// In directory order, then file name order.
    apps: Vec<App>,
}

impl AppIndex {
    /// Reads every `.desktop` file (subdirectories give `sub-name.desktop` IDs).
    pub fn load(dirs: &XdgDirs) -> AppIndex {
        let mut seen = HashSet::new();
        let mut apps = Vec::new();
        for d in &dirs.data {
            let root = d.join("applications");
            let mut found = Vec::new();
            collect_desktop_files(&root, &root, &mut found, 0);
            found.sort();
            for (id, path) in found {
                if !seen.insert(id.clone()) {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let Ok(entry) = DesktopEntry::parse(&text) else {
                    continue;
                };
                apps.push(App { id, path, entry });
            }
        }
        AppIndex { apps }
    }

    /// An installed application by ID: present, not `Hidden`, an
    /// `Application` with an `Exec`, and its `TryExec` (if any) found.
    pub fn installed(&self, id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.id == id).filter(|a| {
            !a.entry.hidden
                && a.entry.kind == "Application"
                && a.entry.exec.is_some()
                && a.entry.try_exec.as_deref().is_none_or(program_exists)
        })
    }

    /// Installed applications whose `MimeType` lists `mime`.
    fn declaring(&self, mime: &str) -> Vec<&App> {
        self.apps
            .iter()
            .filter(|a| a.entry.mime_types.iter().any(|m| m == mime))
            .filter(|a| self.installed(&a.id).is_some())
            .collect()
    }
}

fn collect_desktop_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>, depth: u32) {
    if depth > 8 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for ent in rd.flatten() {
        let path = ent.path();
        let Ok(ft) = ent.file_type() else { continue };
        if ft.is_dir() {
            collect_desktop_files(root, &path, out, depth + 1);
        } else if path.extension().is_some_and(|e| e == "desktop") {
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let id = rel.to_string_lossy().replace('/', "-");
            out.push((id, path));
        }
    }
}

/// Whether `prog` is a path that exists or an executable found as a spawn
/// would find it (`TryExec`).
fn program_exists(prog: &str) -> bool {
    if prog.contains('/') {
        return Path::new(prog).exists();
    }
    crate::process::find_executable(prog).is_some()
}

/// The `mimeapps.list` files in the specification's order of importance.
fn mimeapps_files(dirs: &XdgDirs) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = dirs
        .config
        .iter()
        .map(|d| d.join("mimeapps.list"))
        .collect();
    v.extend(
        dirs.data
            .iter()
            .map(|d| d.join("applications/mimeapps.list")),
    );
    v
}

/// The groups of one `mimeapps.list` that matter here.
#[derive(Debug, Default)]
struct MimeApps {
    defaults: Vec<(String, Vec<String>)>,
    added: Vec<(String, Vec<String>)>,
    removed: Vec<(String, Vec<String>)>,
}

fn parse_mimeapps(text: &str) -> MimeApps {
    let mut m = MimeApps::default();
    let mut group = "";
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            group = line;
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let ids: Vec<String> = v
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let into = match group {
            "[Default Applications]" => &mut m.defaults,
            "[Added Associations]" => &mut m.added,
            "[Removed Associations]" => &mut m.removed,
            _ => continue,
        };
        into.push((k.trim().to_string(), ids));
    }
    m
}

fn ids_for<'a>(list: &'a [(String, Vec<String>)], mime: &str) -> impl Iterator<Item = &'a str> {
    list.iter()
        .filter(move |(k, _)| k == mime)
        .flat_map(|(_, ids)| ids.iter().map(String::as_str))
}

/// The application that opens `mime` (one exact type, no ancestors): the
/// first installed default of the most important `mimeapps.list` that has
/// one, else the first installed application that an `[Added Associations]`
/// entry or its own `MimeType` key names, leaving out the ones a file of the
/// same or greater importance removed.
pub fn default_app<'a>(dirs: &XdgDirs, apps: &'a AppIndex, mime: &str) -> Option<&'a App> {
    let lists: Vec<MimeApps> = mimeapps_files(dirs)
        .iter()
        .map(|p| {
            std::fs::read_to_string(p).map_or_else(|_| MimeApps::default(), |t| parse_mimeapps(&t))
        })
        .collect();
    for l in &lists {
        if let Some(app) = ids_for(&l.defaults, mime).find_map(|id| apps.installed(id)) {
            return Some(app);
        }
    }
    let mut removed: HashSet<&str> = HashSet::new();
    for l in &lists {
        removed.extend(ids_for(&l.removed, mime));
        if let Some(app) = ids_for(&l.added, mime)
            .filter(|id| !removed.contains(id))
            .find_map(|id| apps.installed(id))
        {
            return Some(app);
        }
    }
    apps.declaring(mime)
        .into_iter()
        .find(|a| !removed.contains(a.id.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*.txt", b"notes.txt"));
        assert!(!glob_match(b"*.txt", b"notes.txt.gz"));
        assert!(glob_match(b"*.tar.gz", b"a.tar.gz"));
        assert!(glob_match(b"Makefile", b"Makefile"));
        assert!(glob_match(b"*.[ch]", b"x.h"));
        assert!(!glob_match(b"*.[ch]", b"x.o"));
        assert!(glob_match(b"*.[!ch]", b"x.o"));
        assert!(glob_match(b"README*", b"README.md"));
        assert!(glob_match(b"?.c", b"a.c"));
        assert!(!glob_match(b"?.c", b"ab.c"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"[a-c]x", b"bx"));
    }

    #[test]
    fn mimeapps_groups() {
        let m = parse_mimeapps(
            "[Default Applications]\ntext/plain=a.desktop;b.desktop\n\
             [Added Associations]\ntext/plain=c.desktop;\n[Removed Associations]\ntext/plain=d.desktop\n",
        );
        assert_eq!(
            ids_for(&m.defaults, "text/plain").collect::<Vec<_>>(),
            ["a.desktop", "b.desktop"]
        );
        assert_eq!(
            ids_for(&m.added, "text/plain").collect::<Vec<_>>(),
            ["c.desktop"]
        );
        assert_eq!(
            ids_for(&m.removed, "text/plain").collect::<Vec<_>>(),
            ["d.desktop"]
        );
    }
}
