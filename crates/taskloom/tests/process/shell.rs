//! ShellExecute against a self-contained XDG tree: a MIME database,
//! `mimeapps.list` files and desktop entries written by the test, with a
//! recorder script as every application, so what runs is checked exactly.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use taskloom::Error;
use taskloom::shell::assoc::XdgDirs;
use taskloom::shell::desktop::{DesktopEntry, ExecContext, expand_exec, quote_exec_arg};
use taskloom::shell::{ShellExecute, TargetKind, Verb};

use super::serial;

/// A temporary XDG tree and a recorder program that writes its arguments,
/// one per line, to the file named by its first argument.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let t = Tree {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["config", "data/mime", "data/applications/sub", "files"] {
            std::fs::create_dir_all(t.root().join(d)).unwrap();
        }
        t.write(
            "recorder.sh",
            "#!/bin/sh\nout=\"$1\"; shift\nprintf '%s\\n' \"$@\" > \"$out.tmp\" && mv \"$out.tmp\" \"$out\"\n",
        );
        std::fs::set_permissions(
            t.root().join("recorder.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        t.write(
            "data/mime/globs2",
            "# weight:type:glob\n50:text/x-tltest:*.tltest\n50:text/plain:*.txt\n60:image/x-tl:*.TLI:cs\n",
        );
        t.write("data/mime/subclasses", "text/x-tltest text/plain\n");
        t.write("data/mime/aliases", "text/x-tl-alias text/x-tltest\n");
        t
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.root().join(rel);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A desktop entry whose application records its arguments into `out/<id>`.
    fn app(&self, rel: &str, exec_args: &str, extra: &str) {
        let out = self.root().join(format!("out-{}", rel.replace('/', "-")));
        let text = format!(
            "[Desktop Entry]\nType=Application\nName=Recorder {rel}\nExec=\"{}\" \"{}\" {exec_args}\n{extra}",
            self.root().join("recorder.sh").display(),
            out.display()
        );
        self.write(&format!("data/applications/{rel}"), &text);
    }

    fn dirs(&self) -> XdgDirs {
        XdgDirs::under(self.root())
    }

    /// What the application with desktop file `rel` recorded.
    fn recorded(&self, rel: &str) -> Vec<String> {
        let p = self.root().join(format!("out-{}", rel.replace('/', "-")));
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        text.lines().map(str::to_string).collect()
    }
}

fn open(t: &Tree, target: impl AsRef<std::ffi::OsStr>) -> ShellExecute {
    ShellExecute::new(target).xdg_dirs(t.dirs())
}

#[test]
fn a_document_opens_with_the_default_of_its_nearest_type() {
    let _g = serial();
    let t = Tree::new();
    t.app("viewer.desktop", "--view %f", "");
    t.write(
        "config/mimeapps.list",
        "[Default Applications]\ntext/plain=missing.desktop;viewer.desktop;\n",
    );
    let doc = t.write("files/a b.tltest", "hello");
    let mut launched = open(&t, &doc).spawn().unwrap();
    assert!(launched.process.wait().unwrap().success());
    let l = &launched.launch;
    assert_eq!(l.target, TargetKind::Document);
    assert_eq!(l.mime.as_deref(), Some("text/x-tltest"));
    // No association for text/x-tltest itself: its parent's default is used,
    // skipping the listed default that is not installed.
    assert_eq!(l.matched_mime.as_deref(), Some("text/plain"));
    assert_eq!(l.application.as_deref(), Some("viewer.desktop"));
    assert_eq!(
        t.recorded("viewer.desktop"),
        ["--view", doc.to_str().unwrap()]
    );
}

#[test]
fn associations_come_from_mimetype_keys_added_and_removed_lists() {
    let _g = serial();
    let t = Tree::new();
    // A folder handler known only by its MimeType key, in a subdirectory (ID sub-files.desktop).
    t.app("sub/files.desktop", "%U", "MimeType=inode/directory;\n");
    let folder = t.root().join("files");
    let mut l = open(&t, &folder).verb(Verb::Explore).spawn().unwrap();
    assert!(l.process.wait().unwrap().success());
    assert_eq!(l.launch.application.as_deref(), Some("sub-files.desktop"));
    assert_eq!(l.launch.target, TargetKind::Folder);
    assert_eq!(
        t.recorded("sub/files.desktop"),
        [format!("file://{}", folder.display())]
    );

    // A URL scheme through [Added Associations]; a second handler removed at a
    // more important level is passed over even though its MimeType names the scheme.
    t.app("web.desktop", "%u", "");
    t.app("other.desktop", "%u", "MimeType=x-scheme-handler/tltest;\n");
    t.write(
        "data/applications/mimeapps.list",
        "[Added Associations]\nx-scheme-handler/tltest=web.desktop;\n",
    );
    t.write(
        "config/mimeapps.list",
        "[Removed Associations]\nx-scheme-handler/tltest=web.desktop;\n",
    );
    let r = open(&t, "tltest://host/x?y=1").resolve().unwrap();
    assert_eq!(r.application.as_deref(), Some("other.desktop"));
    t.write("config/mimeapps.list", "");
    let mut l = open(&t, "tltest://host/x?y=1").spawn().unwrap();
    assert!(l.process.wait().unwrap().success());
    assert_eq!(l.launch.application.as_deref(), Some("web.desktop"));
    assert_eq!(l.launch.mime.as_deref(), Some("x-scheme-handler/tltest"));
    assert_eq!(t.recorded("web.desktop"), ["tltest://host/x?y=1"]);

    // A hidden entry counts as deleted.
    t.app("web.desktop", "%u", "Hidden=true\n");
    let r = open(&t, "tltest://again").resolve().unwrap();
    assert_eq!(r.application.as_deref(), Some("other.desktop"));
}

#[test]
fn other_verbs_are_the_applications_desktop_actions() {
    let _g = serial();
    let t = Tree::new();
    let out = t.root().join("out-print");
    let text = format!(
        "[Desktop Entry]\nType=Application\nName=Viewer\nExec=/bin/false %f\nMimeType=text/plain;\n\
         Actions=print;new-window;\n\
         [Desktop Action print]\nName=Print\nExec=\"{}\" \"{}\" --print %f\n\
         [Desktop Action new-window]\nName=New window\nExec=/bin/true\n",
        t.root().join("recorder.sh").display(),
        out.display()
    );
    t.write("data/applications/viewer.desktop", &text);
    let doc = t.write("files/p.txt", "x");
    let mut l = open(&t, &doc)
        .verb("print".parse().unwrap())
        .spawn()
        .unwrap();
    assert!(l.process.wait().unwrap().success());
    assert_eq!(l.launch.action.as_deref(), Some("print"));
    assert_eq!(l.launch.actions, ["print", "new-window"]);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("--print\n{}\n", doc.display())
    );
    // A verb the application does not have: the error lists the ones it has.
    let e = open(&t, &doc)
        .verb(Verb::Action("mail".into()))
        .resolve()
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("has no action \"mail\"; it has: print, new-window"),
        "{e}"
    );
    // A program has no desktop actions.
    let e = open(&t, t.root().join("recorder.sh"))
        .verb(Verb::Action("print".into()))
        .resolve()
        .unwrap_err();
    assert!(e.to_string().contains("is a program"), "{e}");
}

#[test]
fn programs_run_directly_with_parameters() {
    let _g = serial();
    let t = Tree::new();
    let out = t.root().join("prog-out");
    let mut l = open(&t, t.root().join("recorder.sh"))
        .parameters([out.as_os_str(), "one two".as_ref(), "x".as_ref()])
        .spawn()
        .unwrap();
    assert!(l.process.wait().unwrap().success());
    assert_eq!(l.launch.target, TargetKind::Program);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, "one two\nx\n");
    // A document takes no parameters, and says so.
    let doc = t.write("files/n.txt", "x");
    let e = open(&t, &doc).parameters(["-x"]).resolve().unwrap_err();
    assert!(
        e.to_string().contains("parameters go to programs only"),
        "{e}"
    );
}

#[test]
fn file_urls_case_rules_and_content_sniffing() {
    let _g = serial();
    let t = Tree::new();
    t.app("img.desktop", "%f", "MimeType=image/x-tl;\n");
    t.app("text.desktop", "%f", "MimeType=text/plain;\n");
    // *.TLI is case-sensitive: a.TLI matches, b.tli does not (and is text by content).
    let a = t.write("files/a b.TLI", "x");
    let l = open(&t, format!("file://{}", a.display()).replace(' ', "%20"))
        .resolve()
        .unwrap();
    assert_eq!(l.mime.as_deref(), Some("image/x-tl"));
    assert_eq!(l.argv.last().unwrap(), a.to_str().unwrap().as_bytes());
    // An existing file whose name reads like a URL is a file.
    // (Relative, from inside its directory: every test here holds the serial lock.)
    let colon = t.write("files/notes:v2.txt", "x");
    let before = std::env::current_dir().unwrap();
    std::env::set_current_dir(t.root().join("files")).unwrap();
    let l = open(&t, "notes:v2.txt").resolve();
    let url = open(&t, "notes:v3.txt").resolve();
    std::env::set_current_dir(before).unwrap();
    let l = l.unwrap();
    assert_eq!(l.target, TargetKind::Document);
    assert_eq!(l.argv.last().unwrap(), colon.to_str().unwrap().as_bytes());
    // With no such file, the same shape is a URL of scheme `notes`.
    match url {
        Err(Error::NoAssociation { mime, .. }) => assert_eq!(mime, "x-scheme-handler/notes"),
        other => panic!("expected a URL with no handler, got {other:?}"),
    }
    let b = t.write("files/b.tli", "plain words");
    assert_eq!(
        open(&t, &b).resolve().unwrap().mime.as_deref(),
        Some("text/plain")
    );
    // Binary content with no known name: octet-stream, and nothing opens it.
    let blob = t.root().join("files/blob");
    std::fs::write(&blob, b"\x00\x01\x02").unwrap();
    match open(&t, &blob).resolve() {
        Err(Error::NoAssociation { mime, .. }) => assert_eq!(mime, "application/octet-stream"),
        other => panic!("expected NoAssociation, got {other:?}"),
    }
}

#[test]
fn bad_targets_and_verbs_are_clear_errors() {
    let _g = serial();
    let t = Tree::new();
    let missing = t.root().join("files/nope.txt");
    match open(&t, &missing).resolve() {
        Err(e @ Error::NoSuchTarget { .. }) => {
            assert_eq!(
                e.to_string(),
                format!("no such file or folder: {}", missing.display())
            )
        }
        other => panic!("expected NoSuchTarget, got {other:?}"),
    }
    let doc = t.write("files/d.txt", "x");
    let e = open(&t, &doc).verb(Verb::Explore).resolve().unwrap_err();
    assert!(e.to_string().contains("explore needs a folder"), "{e}");
    let e = open(&t, "file://elsewhere/share/x").resolve().unwrap_err();
    assert!(e.to_string().contains("only local file:// URLs"), "{e}");
    let e = open(&t, "tlnothing://x").resolve().unwrap_err();
    assert!(
        e.to_string()
            .contains("no application is associated with x-scheme-handler/tlnothing"),
        "{e}"
    );
    // A broken Exec names its desktop file.
    t.app("bad.desktop", "%z", "MimeType=text/plain;\n");
    let e = open(&t, &doc).resolve().unwrap_err();
    assert!(
        e.to_string().contains("bad.desktop") && e.to_string().contains("%z"),
        "{e}"
    );
}

#[test]
fn runas_runs_as_root_or_says_why_not() {
    let _g = serial();
    let t = Tree::new();
    let out = t.root().join("uid-out");
    let script = t.write(
        "whoami.sh",
        &format!("#!/bin/sh\nid -u > \"{}\"\n", out.display()),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = open(&t, &script).verb(Verb::RunAs).spawn();
    if rustix::process::geteuid().is_root() {
        let mut l = r.unwrap();
        assert!(l.launch.as_root);
        assert!(l.process.wait().unwrap().success());
        assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), "0");
    } else {
        eprintln!("not root: runas checked for its refusal only");
        let e = r.unwrap_err();
        assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
    }
}

/// Escapes a string value for a `.desktop` file.
fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\t', "\\t")
        .replace('\r', "\\r")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    /// Any arguments, quoted into an `Exec` line and written into a
    /// `.desktop` file, come back exactly, `%` and backslashes included.
    #[test]
    fn exec_lines_round_trip(args in proptest::collection::vec("[^\\x00]{0,12}", 1..5)) {
        prop_assume!(!args[0].is_empty());
        let exec: Vec<String> = args.iter().map(|a| quote_exec_arg(a)).collect();
        let file = format!("[Desktop Entry]\nExec={}\n", escape_value(&exec.join(" ")));
        let entry = DesktopEntry::parse(&file).unwrap();
        let ctx = ExecContext { name: "n", icon: None, entry_path: Path::new("/x.desktop") };
        let out = expand_exec(entry.exec.as_deref().unwrap(), None, ctx).unwrap();
        let out: Vec<String> = out.into_iter().map(|o| o.into_string().unwrap()).collect();
        prop_assert_eq!(out, args);
    }

    /// Whatever the line, expanding it returns or errs, never panics.
    #[test]
    fn exec_expansion_never_panics(line in "\\PC{0,40}") {
        let ctx = ExecContext { name: "n", icon: Some("i"), entry_path: Path::new("/x.desktop") };
        let _ = expand_exec(&line, None, ctx);
    }
}
