//! ShellExecute's parsers (`shell::{desktop, assoc}`) against the
//! maintained crates for the same formats, on the cases taskloom's own tests
//! use. taskloom keeps its own parsers where a crate gets the spec wrong;
//! each difference is asserted here, so that a crate release that fixes it
//! fails this test and the choice is made again (ARCHITECTURE.md, "Why
//! hand-written and not a crate").
#![cfg(target_os = "linux")]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use freedesktop_desktop_entry::DesktopEntry as PeerEntry;
use taskloom::shell::assoc::{MimeDb, XdgDirs};
use taskloom::shell::desktop::{DesktopEntry, ExecContext, ExecTarget, expand_exec};

const ENTRY_PATH: &str = "/apps/viewer.desktop";

fn entry_text(exec: &str) -> String {
    format!("[Desktop Entry]\nType=Application\nName=Viewer\nIcon=viewer-icon\nExec={exec}\n")
}

/// taskloom: the argument vector for `exec` opening `target`.
fn ours(exec: &str, target: Option<&str>) -> Result<Vec<String>, String> {
    let entry = DesktopEntry::parse(&entry_text(exec))?;
    let target = target.map(|t| ExecTarget {
        path: Some(PathBuf::from(t)),
        url: format!("file://{t}"),
    });
    let ctx = ExecContext {
        name: "Viewer",
        icon: Some("viewer-icon"),
        entry_path: Path::new(ENTRY_PATH),
    };
    let exec = entry.exec.ok_or("no Exec")?;
    expand_exec(&exec, target.as_ref(), ctx).map(|v| {
        v.into_iter()
            .map(|s: OsString| s.into_string().unwrap())
            .collect()
    })
}

/// freedesktop-desktop-entry: the same.
fn peer(exec: &str, target: Option<&str>) -> Result<Vec<String>, String> {
    let e = PeerEntry::from_str(ENTRY_PATH, &entry_text(exec), None::<&[&str]>)
        .map_err(|e| e.to_string())?;
    let uris: Vec<&str> = target.into_iter().collect();
    e.parse_exec_with_uris(&uris, &[] as &[&str])
        .map_err(|e| e.to_string())
}

#[test]
fn exec_lines_where_the_desktop_entry_crate_and_taskloom_agree() {
    for (exec, target) in [
        // Two levels of escaping: the string's, then Exec's quoting.
        (r#"sh -c "echo \\"$1\\" \\\\x\\$" sh %f"#, Some("/f")),
        // Field codes inside quotes are literal.
        (r#"prog "%f" "a%%b""#, None),
        ("viewer %F", None),
        ("viewer %d %m", None),
        ("viewer %U", Some("/tmp/a b.txt")),
    ] {
        let (a, b) = (ours(exec, target), peer(exec, target));
        // %U gives the crate the target as it is; taskloom gives the URL.
        if exec.contains("%U") {
            assert_eq!(a.unwrap(), ["viewer", "file:///tmp/a b.txt"]);
            assert_eq!(b.unwrap(), ["viewer", "/tmp/a b.txt"]);
            continue;
        }
        assert_eq!(a, b, "Exec={exec}");
    }
    // Both refuse an unmatched quote and an empty line.
    for bad in ["prog \"open", "   "] {
        assert!(
            ours(bad, None).is_err() && peer(bad, None).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn exec_lines_the_desktop_entry_crate_gets_wrong() {
    // The spec (desktop-entry-spec, "The Exec key"): %i is two arguments,
    // `--icon` and the Icon key.
    assert_eq!(
        ours("viewer %i", None).unwrap(),
        ["viewer", "--icon", "viewer-icon"]
    );
    assert_eq!(peer("viewer %i", None).unwrap(), ["viewer", "viewer-icon"]);
    // "Literal percentage characters must be escaped as %%": it is a `%`.
    assert_eq!(ours("viewer %%", None).unwrap(), ["viewer", "%"]);
    assert_eq!(peer("viewer %%", None).unwrap(), ["viewer"]);
    // Field codes may stand inside an unquoted argument (only quoted ones
    // are literal): `--title=%c` is `--title=Viewer`.
    assert_eq!(
        ours("viewer --title=%c", None).unwrap(),
        ["viewer", "--title=Viewer"]
    );
    assert_eq!(
        peer("viewer --title=%c", None).unwrap(),
        ["viewer", "--title=%c"]
    );
    // An unknown field code or a lone `%` makes the line invalid; the crate
    // drops it and runs the rest.
    for bad in ["prog %z", "prog %"] {
        assert!(ours(bad, None).is_err(), "{bad}");
        assert_eq!(peer(bad, None).unwrap(), ["prog"], "{bad}");
    }
    // ShellExecute must hand the document over: with no file code in the
    // line taskloom appends it (as GLib does); the crate drops it.
    assert_eq!(
        ours("viewer --new-window", Some("/x")).unwrap(),
        ["viewer", "--new-window", "/x"]
    );
    assert_eq!(
        peer("viewer --new-window", Some("/x")).unwrap(),
        ["viewer", "--new-window"]
    );
}

/// A shared-mime-info tree: globs with weights and case flags, an alias,
/// subclasses.
fn mime_tree() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let mime = root.path().join("data/mime");
    std::fs::create_dir_all(&mime).unwrap();
    std::fs::write(
        mime.join("globs2"),
        "# weight:mime:glob[:flags]\n\
         80:application/x-compressed-tar:*.tar.gz\n\
         50:application/gzip:*.gz\n\
         50:text/plain:*.txt\n\
         60:text/x-readme:README*\n\
         50:text/x-csrc:*.c:cs\n\
         50:text/x-c++src:*.C:cs\n\
         50:text/x-makefile:Makefile\n\
         50:image/x-ms-bmp:*.bmp\n\
         50:application/x-trash:*~\n",
    )
    .unwrap();
    std::fs::write(mime.join("aliases"), "image/bmp image/x-ms-bmp\n").unwrap();
    std::fs::write(mime.join("subclasses"), "text/x-csrc text/plain\n").unwrap();
    root
}

#[test]
fn file_names_get_the_same_type_from_xdg_mime_and_taskloom() {
    let root = mime_tree();
    let ours = MimeDb::load(&XdgDirs::under(root.path()));
    let peer = xdg_mime::SharedMimeInfo::new_for_directory(root.path().join("data"));
    for name in [
        "a.TXT",
        "x.c",
        "x.C",
        "a.tar.gz",
        "a.Tar.GZ",
        "b.gz",
        "README.txt",
        "Makefile",
        "notes~",
        "dir/a.txt",
    ] {
        let theirs = peer.get_mime_types_from_file_name(name);
        assert_eq!(
            ours.by_name(name),
            theirs.first().map(|m| m.essence_str()),
            "{name}: crate says {theirs:?}"
        );
    }
    let bmp = mime::Mime::from_str("image/bmp").unwrap();
    assert_eq!(ours.unalias("image/bmp"), "image/x-ms-bmp");
    assert_eq!(
        peer.unalias_mime_type(&bmp)
            .map(|m| m.to_string())
            .as_deref(),
        Some("image/x-ms-bmp")
    );
}

#[test]
fn the_type_lineage_xdg_mime_loses() {
    // A C source file opens with a text editor when nothing handles
    // text/x-csrc: its parents (subclasses, then text/plain and
    // application/octet-stream, as the spec says) are where the lookup
    // goes next.
    let root = mime_tree();
    let ours = MimeDb::load(&XdgDirs::under(root.path()));
    assert_eq!(
        ours.lineage("text/x-csrc"),
        ["text/x-csrc", "text/plain", "application/octet-stream"]
    );
    // xdg-mime 0.4's get_parents answers only for aliases: for any other
    // type it says None, so the fallback would be lost.
    let peer = xdg_mime::SharedMimeInfo::new_for_directory(root.path().join("data"));
    let csrc = mime::Mime::from_str("text/x-csrc").unwrap();
    assert_eq!(peer.get_parents(&csrc), None);
}
