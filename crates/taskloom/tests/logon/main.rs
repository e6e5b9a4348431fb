//! Logon with a password through the machine's own PAM configuration, with
//! a throwaway user this test makes and removes (root only: CI runs as root).
#![cfg(feature = "logon")]
#![cfg(target_os = "linux")]

use std::process::Command;

use taskloom::LogonFailure;
use taskloom::process::logon::Logon;
use taskloom::process::{ProcessBuilder, Stdio};
use zeroize::Zeroizing;

/// A PAM service for one test: the repository's `dist/pam.d/taskloom` under
/// a name of its own, removed when the test ends.
struct Service(String);

impl Service {
    fn new(tag: &str) -> Service {
        let name = format!("taskloom-test-{}-{tag}", std::process::id());
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../dist/pam.d/taskloom"
        ))
        .unwrap();
        std::fs::write(format!("/etc/pam.d/{name}"), text).unwrap();
        Service(name)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/etc/pam.d/{}", self.0));
    }
}

/// A user made for one test, removed (with its home) when the test ends,
/// also when it fails.
struct ThrowawayUser(String);

impl ThrowawayUser {
    fn new(tag: &str, password: &str) -> Option<ThrowawayUser> {
        if !rustix::process::geteuid().is_root() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root: the logon tests must run there"
            );
            eprintln!("logon test not run: making a throwaway user needs root");
            return None;
        }
        let name = format!("tl{tag}{}", std::process::id() % 100_000);
        let ok = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", &name])
            .status()
            .expect("useradd")
            .success();
        assert!(ok, "useradd {name}");
        let user = ThrowawayUser(name);
        let mut chpasswd = Command::new("chpasswd")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(chpasswd.stdin.take().unwrap(), "{}:{password}", user.0).unwrap();
        assert!(chpasswd.wait().unwrap().success());
        Some(user)
    }
}

impl Drop for ThrowawayUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel")
            .args(["--remove", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn pw(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_owned())
}

#[test]
fn the_right_password_starts_the_program_as_the_user_with_its_profile() {
    let Some(user) = ThrowawayUser::new("ok", "s3cret-Pass") else {
        return;
    };
    let service = Service::new("ok");
    let logon = Logon::with_service(&service.0, &user.0, pw("s3cret-Pass")).unwrap();
    let account = nix::unistd::User::from_name(&user.0).unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out");
    let out = std::fs::File::create(&out_path).unwrap();
    // The user must be able to write its output: hand it the open file.
    let builder = ProcessBuilder::new("/bin/sh")
        .args(["-c", "id -u; id -g; id -G; echo \"$HOME\"; pwd; echo \"$USER $LOGNAME $SHELL\"; echo \"$PATH\""])
        .stdout(Stdio::Fd(out.into()));
    let mut child = logon.apply(builder).spawn().unwrap();
    assert!(child.wait().unwrap().success());
    drop(logon);
    let text = std::fs::read_to_string(&out_path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], account.uid.to_string(), "{text}");
    assert_eq!(lines[1], account.gid.to_string(), "{text}");
    assert!(
        lines[2].split(' ').any(|g| g == account.gid.to_string()),
        "{text}"
    );
    let home = account.dir.to_str().unwrap();
    assert_eq!(lines[3], home, "{text}");
    assert_eq!(
        lines[4], home,
        "the home directory is the current one: {text}"
    );
    assert_eq!(lines[5], format!("{0} {0} /bin/sh", user.0), "{text}");
    assert!(lines[6].contains("/usr/bin"), "{text}");
}

#[test]
fn a_wrong_password_and_an_unknown_user_are_their_own_errors() {
    let Some(user) = ThrowawayUser::new("bad", "right-Pass1") else {
        return;
    };
    let service = Service::new("bad");
    let err = Logon::with_service(&service.0, &user.0, pw("wrong-Pass1")).unwrap_err();
    assert!(
        matches!(
            err,
            taskloom::Error::Logon {
                failure: LogonFailure::WrongPassword,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("wrong password"), "{err}");
    let err = Logon::with_service(&service.0, "tl-no-such-user-here", pw("x")).unwrap_err();
    assert!(
        matches!(
            err,
            taskloom::Error::Logon {
                failure: LogonFailure::UnknownUser,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn an_expired_account_is_refused_after_the_right_password() {
    let Some(user) = ThrowawayUser::new("exp", "right-Pass2") else {
        return;
    };
    assert!(
        Command::new("chage")
            .args(["-E", "0", &user.0])
            .status()
            .unwrap()
            .success()
    );
    let service = Service::new("exp");
    let err = Logon::with_service(&service.0, &user.0, pw("right-Pass2")).unwrap_err();
    // Debian's account stack reports it through pam_deny (AUTH_ERR): the
    // kind says the account was refused, PAM's message says why.
    assert!(
        matches!(
            err,
            taskloom::Error::Logon {
                failure: LogonFailure::AccountExpired | LogonFailure::AccountLocked,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("expired"), "{err}");
}
