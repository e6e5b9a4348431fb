//! Desktop entries (the freedesktop.org Desktop Entry Specification 1.5):
//! the `[Desktop Entry]` group of a `.desktop` file, and its `Exec` key
//! turned into an argument vector.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// The keys of a `[Desktop Entry]` group that launching needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesktopEntry {
    /// `Type` (`Application`, `Link`, `Directory`).
    pub kind: String,
    /// `Name` (the untranslated one).
    pub name: String,
    /// `Exec`, with the string escapes (`\s`, `\n`, `\t`, `\r`, `\\`) undone.
    pub exec: Option<String>,
    /// `TryExec`: a program whose absence means the application is not installed.
    pub try_exec: Option<String>,
    /// `Path`: the working directory to run in.
    pub path: Option<PathBuf>,
    /// `Terminal`: run inside a terminal emulator.
    pub terminal: bool,
    /// `Hidden`: the entry counts as deleted.
    pub hidden: bool,
    /// `Icon`, for the `%i` field code.
    pub icon: Option<String>,
    /// `MimeType`: the types it can open.
    pub mime_types: Vec<String>,
    /// The `[Desktop Action ID]` groups that `Actions` lists, in its order:
    /// an application's extra verbs ("new-window", "print", ...).
    pub actions: Vec<DesktopAction>,
}

/// One `[Desktop Action ID]` group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesktopAction {
    /// Its ID (the group name after `Desktop Action `).
    pub id: String,
    /// `Name`.
    pub name: String,
    /// `Exec`, string escapes undone.
    pub exec: Option<String>,
}

impl DesktopEntry {
    /// Parses the text of a `.desktop` file. Keys outside `[Desktop Entry]`
    /// and localised keys (`Name[de]`) are ignored; a file without the group
    /// is an error.
    pub fn parse(text: &str) -> Result<DesktopEntry, String> {
        let mut e = DesktopEntry::default();
        // Which group the lines belong to: the entry, an action (index), or another.
        enum Group {
            Entry,
            Action(usize),
            Other,
        }
        let mut group = Group::Other;
        let mut seen_group = false;
        let mut listed: Option<Vec<String>> = None;
        let mut actions: Vec<DesktopAction> = Vec::new();
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') {
                let header = line.trim_end();
                group = if header == "[Desktop Entry]" {
                    seen_group = true;
                    Group::Entry
                } else if let Some(id) = header
                    .strip_prefix("[Desktop Action ")
                    .and_then(|r| r.strip_suffix(']'))
                {
                    actions.push(DesktopAction {
                        id: id.to_string(),
                        ..Default::default()
                    });
                    Group::Action(actions.len() - 1)
                } else {
                    Group::Other
                };
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim_end();
            let value = unescape(value.trim_start());
            let i = match group {
                Group::Entry => None,
                Group::Action(i) => Some(i),
                Group::Other => continue,
            };
            if let Some(i) = i {
                match key {
                    "Name" => actions[i].name = value,
                    "Exec" => actions[i].exec = Some(value),
                    _ => {}
                }
                continue;
            }
            match key {
                "Type" => e.kind = value,
                "Name" => e.name = value,
                "Exec" => e.exec = Some(value),
                "TryExec" => e.try_exec = Some(value),
                "Path" if !value.is_empty() => e.path = Some(PathBuf::from(value)),
                "Terminal" => e.terminal = value == "true",
                "Hidden" => e.hidden = value == "true",
                "Icon" if !value.is_empty() => e.icon = Some(value),
                "MimeType" => {
                    e.mime_types = value
                        .split(';')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                }
                "Actions" => {
                    listed = Some(
                        value
                            .split(';')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect(),
                    )
                }
                _ => {}
            }
        }
        if !seen_group {
            return Err("no [Desktop Entry] group".into());
        }
        // Only the actions `Actions` lists count, in its order.
        for id in listed.unwrap_or_default() {
            if let Some(a) = actions.iter().find(|a| a.id == id) {
                e.actions.push(a.clone());
            }
        }
        Ok(e)
    }
}

/// Undoes the escapes of a `string` value: `\s` space, `\n`, `\t`, `\r`,
/// `\\`. Any other backslash is kept as it is (the `Exec` quoting rules
/// read it next).
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Quotes one argument for an `Exec` key (the inverse of what
/// [`expand_exec`] reads): enclosed in double quotes, with `"`, `` ` ``, `$`
/// and `\` escaped. A `.desktop` file additionally escapes each backslash
/// of the result as a string value (`\\`).
pub fn quote_exec_arg(arg: &str) -> String {
    let mut q = String::with_capacity(arg.len() + 2);
    q.push('"');
    for c in arg.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// What a launch opens, for the file and URL field codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecTarget {
    /// The local file, when there is one (`%f`, `%F`).
    pub path: Option<PathBuf>,
    /// The target as a URL (`%u`, `%U`): a `file://` URL for a local file.
    pub url: String,
}

/// The rest of what field codes can expand to.
#[derive(Debug, Clone, Copy)]
pub struct ExecContext<'a> {
    /// `Name`, for `%c`.
    pub name: &'a str,
    /// `Icon`, for `%i`.
    pub icon: Option<&'a str>,
    /// The desktop file's location, for `%k`.
    pub entry_path: &'a Path,
}

/// One piece of an `Exec` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Code(char),
}

/// Splits an `Exec` value (string escapes already undone) into arguments,
/// each a list of literal text and field codes. Quoting: an argument may
/// be enclosed in double quotes, inside which `\"`, `` \` ``, `\$` and `\\`
/// stand for the character; field codes are only recognised outside quotes.
fn split_exec(exec: &str) -> Result<Vec<Vec<Piece>>, String> {
    let mut args: Vec<Vec<Piece>> = Vec::new();
    let mut cur: Vec<Piece> = Vec::new();
    let mut text = String::new();
    let mut started = false;
    let mut chars = exec.chars().peekable();
    let flush_text = |text: &mut String, cur: &mut Vec<Piece>| {
        if !text.is_empty() {
            cur.push(Piece::Text(std::mem::take(text)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if started {
                    flush_text(&mut text, &mut cur);
                    args.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            '"' => {
                started = true;
                loop {
                    match chars.next() {
                        None => return Err("unterminated quote".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '`' | '$' | '\\')) => text.push(e),
                            Some(other) => {
                                return Err(format!(
                                    "\\{other} is not an escape inside a quoted argument"
                                ));
                            }
                            None => return Err("unterminated quote".into()),
                        },
                        Some(ch) => text.push(ch),
                    }
                }
            }
            '%' => {
                started = true;
                match chars.next() {
                    Some('%') => text.push('%'),
                    Some(code @ ('f' | 'F' | 'u' | 'U' | 'i' | 'c' | 'k')) => {
                        flush_text(&mut text, &mut cur);
                        cur.push(Piece::Code(code));
                    }
                    // Deprecated codes: removed (an argument of nothing else vanishes).
                    Some('d' | 'D' | 'n' | 'N' | 'v' | 'm') => {
                        flush_text(&mut text, &mut cur);
                        cur.push(Piece::Code('-'));
                    }
                    Some(other) => return Err(format!("unknown field code %{other}")),
                    None => return Err("a lone % at the end".into()),
                }
            }
            other => {
                started = true;
                text.push(other);
            }
        }
    }
    if started {
        flush_text(&mut text, &mut cur);
        args.push(cur);
    }
    Ok(args)
}

/// Expands an `Exec` value into the argument vector that opens `target`
/// (or starts the application bare when there is none). When the value has
/// no file or URL field code, the target is appended, as GLib does.
pub fn expand_exec(
    exec: &str,
    target: Option<&ExecTarget>,
    ctx: ExecContext<'_>,
) -> Result<Vec<OsString>, String> {
    let args = split_exec(exec)?;
    if args.is_empty() {
        return Err("Exec is empty".into());
    }
    let mut out: Vec<OsString> = Vec::new();
    let mut used_target = false;
    let file_arg = |t: &ExecTarget| -> OsString {
        match &t.path {
            Some(p) => p.clone().into_os_string(),
            None => OsString::from(&t.url),
        }
    };
    for (i, arg) in args.iter().enumerate() {
        // A field code alone expands to zero or more whole arguments.
        if let [Piece::Code(code)] = arg.as_slice() {
            match code {
                'f' | 'F' | 'u' | 'U' => {
                    used_target = true;
                    if let Some(t) = target {
                        out.push(if matches!(code, 'f' | 'F') {
                            file_arg(t)
                        } else {
                            OsString::from(&t.url)
                        });
                    }
                }
                'i' => {
                    if let Some(icon) = ctx.icon {
                        out.push("--icon".into());
                        out.push(icon.into());
                    }
                }
                'c' => out.push(ctx.name.into()),
                'k' => out.push(ctx.entry_path.as_os_str().to_owned()),
                '-' => {}
                _ => unreachable!("split_exec yields only known codes"),
            }
            continue;
        }
        let mut s: Vec<u8> = Vec::new();
        for piece in arg {
            match piece {
                Piece::Text(t) => s.extend_from_slice(t.as_bytes()),
                Piece::Code(code) => match code {
                    'f' | 'F' | 'u' | 'U' => {
                        used_target = true;
                        if let Some(t) = target {
                            let v = if matches!(code, 'f' | 'F') {
                                file_arg(t)
                            } else {
                                OsString::from(&t.url)
                            };
                            s.extend_from_slice(v.as_encoded_bytes());
                        }
                    }
                    'i' => {
                        if let Some(icon) = ctx.icon {
                            s.extend_from_slice(icon.as_bytes());
                        }
                    }
                    'c' => s.extend_from_slice(ctx.name.as_bytes()),
                    'k' => s.extend_from_slice(ctx.entry_path.as_os_str().as_encoded_bytes()),
                    '-' => {}
                    _ => unreachable!("split_exec yields only known codes"),
                },
            }
        }
        if i == 0 && s.is_empty() {
            return Err("Exec names no program".into());
        }
        out.push(OsString::from_vec(s));
    }
    if out.is_empty() {
        return Err("Exec names no program".into());
    }
    if !used_target && let Some(t) = target {
        out.push(file_arg(t));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ExecContext<'static> {
        ExecContext {
            name: "Viewer",
            icon: Some("viewer-icon"),
            entry_path: Path::new("/apps/viewer.desktop"),
        }
    }

    fn file(p: &str) -> ExecTarget {
        ExecTarget {
            path: Some(PathBuf::from(p)),
            url: format!("file://{p}"),
        }
    }

    fn strs(v: Vec<OsString>) -> Vec<String> {
        v.into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn field_codes_expand() {
        let t = file("/tmp/a b.txt");
        let v = expand_exec("viewer --title=%c %i %f", Some(&t), ctx()).unwrap();
        assert_eq!(
            strs(v),
            [
                "viewer",
                "--title=Viewer",
                "--icon",
                "viewer-icon",
                "/tmp/a b.txt"
            ]
        );
        let v = expand_exec("viewer %U %k %%", Some(&t), ctx()).unwrap();
        assert_eq!(
            strs(v),
            ["viewer", "file:///tmp/a b.txt", "/apps/viewer.desktop", "%"]
        );
    }

    #[test]
    fn quoting_and_escapes() {
        // In the file: Exec=sh -c "echo \\"$1\\" \\\\$HOME" sh %f
        let raw = r#"sh -c "echo \\"$1\\" \\\\x\\$" sh %f"#;
        let exec = DesktopEntry::parse(&format!("[Desktop Entry]\nExec={raw}\n"))
            .unwrap()
            .exec
            .unwrap();
        let v = expand_exec(&exec, Some(&file("/f")), ctx()).unwrap();
        assert_eq!(strs(v), ["sh", "-c", r#"echo "$1" \x$"#, "sh", "/f"]);
        // Field codes inside quotes are literal text.
        let v = expand_exec(r#"prog "%f" "a%%b""#, None, ctx()).unwrap();
        assert_eq!(strs(v), ["prog", "%f", "a%%b"]);
    }

    #[test]
    fn without_a_file_code_the_target_is_appended() {
        let v = expand_exec("viewer --new-window", Some(&file("/x")), ctx()).unwrap();
        assert_eq!(strs(v), ["viewer", "--new-window", "/x"]);
        // A URL with no local file goes to %f as the URL.
        let url = ExecTarget {
            path: None,
            url: "https://example.org/".into(),
        };
        let v = expand_exec("browser %f", Some(&url), ctx()).unwrap();
        assert_eq!(strs(v), ["browser", "https://example.org/"]);
        // No target: the code vanishes.
        let v = expand_exec("viewer %F", None, ctx()).unwrap();
        assert_eq!(strs(v), ["viewer"]);
        // Deprecated codes vanish.
        let v = expand_exec("viewer %d %m", None, ctx()).unwrap();
        assert_eq!(strs(v), ["viewer"]);
    }

    #[test]
    fn bad_exec_values_are_errors() {
        for bad in [
            "",
            "   ",
            "prog \"open",
            "prog %z",
            "prog %",
            r#"prog "\q""#,
            "%i",
        ] {
            let r = expand_exec(
                bad,
                None,
                ExecContext {
                    icon: None,
                    ..ctx()
                },
            );
            assert!(r.is_err(), "{bad:?} gave {r:?}");
        }
    }

    #[test]
    fn entry_keys() {
        let text = "# comment\n[Desktop Entry]\nType=Application\nName=Viewer\nName[de]=Betrachter\n\
                    Exec=viewer %f\nTerminal=true\nMimeType=text/plain;image/png;\nPath=/srv\n\
                    [Desktop Action new]\nExec=other\n";
        let e = DesktopEntry::parse(text).unwrap();
        assert_eq!(e.name, "Viewer");
        assert_eq!(e.exec.as_deref(), Some("viewer %f"));
        assert!(e.terminal && !e.hidden);
        assert_eq!(e.mime_types, ["text/plain", "image/png"]);
        assert_eq!(e.path.as_deref(), Some(Path::new("/srv")));
        // [Desktop Action new] is not listed in Actions: it does not count.
        assert!(e.actions.is_empty());
        let e = DesktopEntry::parse(
            "[Desktop Entry]\nExec=v %f\nActions=print;new;gone;\n\
             [Desktop Action new]\nName=New\nExec=v --new\n[Desktop Action print]\nExec=v -p %f\n",
        )
        .unwrap();
        let ids: Vec<&str> = e.actions.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["print", "new"]);
        assert_eq!(e.actions[1].name, "New");
        assert_eq!(e.actions[0].exec.as_deref(), Some("v -p %f"));
        assert_eq!(
            e.exec.as_deref(),
            Some("v %f"),
            "an action's Exec is not the entry's"
        );
        assert!(DesktopEntry::parse("Exec=x\n").is_err());
    }
}
