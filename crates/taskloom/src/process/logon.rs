//! `LogonUser` + `CreateProcessWithLogonW(LOGON_WITH_PROFILE)`: a user name
//! and a password, checked by PAM with the machine's own configuration,
//! through the pam-client crate. The PAM service is `taskloom`
//! (`dist/pam.d/taskloom` in the repository: the machine's common auth,
//! account and session stacks) when `/etc/pam.d/taskloom` exists, else
//! `login` (whose `pam_loginuid` also sets the calling process's login uid,
//! and fails where the caller may not: in many containers).
//!
//! [`Logon::new`] authenticates, runs the account checks (expired, locked),
//! establishes the credentials and opens a session; [`Logon::apply`] makes
//! a [`ProcessBuilder`] start as that user (uid, gid, supplementary groups)
//! in the user's home directory with the environment a login gives (HOME,
//! USER, LOGNAME, SHELL, PATH, and what PAM's modules set). The session
//! stays open while the [`Logon`] lives: keep it until the process ends;
//! dropping it closes the session and deletes the credentials.
//!
//! The password: the caller's copy is taken as [`zeroize::Zeroizing`], and
//! taskloom's copy is wiped as soon as authentication is over. PAM's
//! conversation takes the password as a C string, which pam-client copies
//! into memory PAM frees (the `pam_unix` module wipes its copy); the one
//! intermediate `CString` pam-client's interface requires is freed with
//! only its first byte cleared, which this module cannot change.

use std::ffi::{CStr, CString, OsString};
use std::path::PathBuf;

use pam_client::{ConversationHandler, ErrorCode, Flag};
use zeroize::Zeroizing;

use super::{Credentials, ProcessBuilder};
use crate::error::{Error, LogonFailure, Result};

/// The PAM service [`Logon::new`] uses: `$TASKLOOM_PAM_SERVICE` when set,
/// else `taskloom` when it is installed, else `login`.
pub fn default_service() -> String {
    match std::env::var("TASKLOOM_PAM_SERVICE") {
        Ok(s) if !s.is_empty() => s,
        _ if std::path::Path::new("/etc/pam.d/taskloom").exists() => "taskloom".into(),
        _ => "login".into(),
    }
}

/// Answers PAM's prompts: the user name, and the password until it is wiped.
struct Answer {
    user: String,
    password: Option<Zeroizing<String>>,
    /// PAM's error messages, for the error taskloom returns.
    said: Vec<String>,
}

impl ConversationHandler for Answer {
    fn prompt_echo_on(&mut self, _prompt: &CStr) -> std::result::Result<CString, ErrorCode> {
        CString::new(self.user.as_bytes()).map_err(|_| ErrorCode::CONV_ERR)
    }

    fn prompt_echo_off(&mut self, _prompt: &CStr) -> std::result::Result<CString, ErrorCode> {
        let pw = self.password.as_ref().ok_or(ErrorCode::CONV_ERR)?;
        CString::new(pw.as_bytes()).map_err(|_| ErrorCode::CONV_ERR)
    }

    fn text_info(&mut self, _msg: &CStr) {}

    fn error_msg(&mut self, msg: &CStr) {
        self.said.push(msg.to_string_lossy().into_owned());
    }
}

/// A logged-on user with an open PAM session.
pub struct Logon {
    user: String,
    credentials: Credentials,
    home: PathBuf,
    env: Vec<(OsString, OsString)>,
    context: pam_client::Context<Answer>,
    session: Option<pam_client::SessionToken>,
}

impl std::fmt::Debug for Logon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logon")
            .field("user", &self.user)
            .field("credentials", &self.credentials)
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

/// The PATH a login gives: `ENV_PATH` (`ENV_SUPATH` for root) of
/// `/etc/login.defs`, else login's default.
fn login_path(root: bool) -> OsString {
    let key = if root { "ENV_SUPATH" } else { "ENV_PATH" };
    let defs = std::fs::read_to_string("/etc/login.defs").unwrap_or_default();
    defs.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let rest = l.strip_prefix(key)?.trim();
            Some(rest.strip_prefix("PATH=").unwrap_or(rest).to_owned())
        })
        .map(OsString::from)
        .unwrap_or_else(|| {
            OsString::from(if root {
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            } else {
                "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
            })
        })
}

fn failure_of(code: ErrorCode) -> LogonFailure {
    match code {
        ErrorCode::AUTH_ERR | ErrorCode::CRED_INSUFFICIENT | ErrorCode::AUTHINFO_UNAVAIL => {
            LogonFailure::WrongPassword
        }
        ErrorCode::USER_UNKNOWN => LogonFailure::UnknownUser,
        ErrorCode::ACCT_EXPIRED | ErrorCode::CRED_EXPIRED => LogonFailure::AccountExpired,
        ErrorCode::NEW_AUTHTOK_REQD | ErrorCode::AUTHTOK_EXPIRED => LogonFailure::PasswordExpired,
        ErrorCode::PERM_DENIED | ErrorCode::MAXTRIES => LogonFailure::AccountLocked,
        _ => LogonFailure::Other,
    }
}

impl Logon {
    /// `LogonUser(user, password)` with `LOGON_WITH_PROFILE`: checks the
    /// password and the account through PAM and opens a session. Each
    /// refusal is an [`Error::Logon`] saying why ([`LogonFailure`]), and
    /// nothing is left open.
    pub fn new(user: &str, password: Zeroizing<String>) -> Result<Logon> {
        Logon::with_service(&default_service(), user, password)
    }

    /// As [`Logon::new`], through PAM service `service` (`/etc/pam.d/<service>`).
    pub fn with_service(service: &str, user: &str, password: Zeroizing<String>) -> Result<Logon> {
        let refuse = |failure, detail: String| Error::Logon {
            user: user.to_owned(),
            failure,
            detail,
        };
        // A process started as another user needs setuid and setgid, and
        // only root may check another user's password.
        if !rustix::process::geteuid().is_root() {
            return Err(refuse(LogonFailure::NotPermitted, String::new()));
        }
        let account = nix::unistd::User::from_name(user)
            .map_err(|e| refuse(LogonFailure::Other, format!("user lookup: {e}")))?
            .ok_or_else(|| refuse(LogonFailure::UnknownUser, String::new()))?;
        let answer = Answer {
            user: user.to_owned(),
            password: Some(password),
            said: Vec::new(),
        };
        let mut context = pam_client::Context::new(service, Some(user), answer)
            .map_err(|e| refuse(LogonFailure::Other, e.to_string()))?;
        let pam_refusal = |context: &mut pam_client::Context<Answer>, e: pam_client::Error| {
            let said = std::mem::take(&mut context.conversation_mut().said).join("; ");
            let detail = if said.is_empty() {
                e.message().unwrap_or_default().to_owned()
            } else {
                said
            };
            refuse(failure_of(e.code()), detail)
        };
        let checked = context.authenticate(Flag::DISALLOW_NULL_AUTHTOK);
        // The password is not needed past the check: wiped now.
        context.conversation_mut().password = None;
        if let Err(e) = checked {
            return Err(pam_refusal(&mut context, e));
        }
        if let Err(e) = context.acct_mgmt(Flag::DISALLOW_NULL_AUTHTOK) {
            // The password was right: whatever the account stack returns
            // (Debian's ends in pam_deny, which says AUTH_ERR for an expired
            // account), it is the account that is refused.
            let mut err = pam_refusal(&mut context, e);
            if let Error::Logon { failure, .. } = &mut err
                && *failure == LogonFailure::WrongPassword
            {
                *failure = LogonFailure::AccountLocked;
            }
            return Err(err);
        }
        let groups = nix::unistd::getgrouplist(
            &CString::new(user).map_err(|_| refuse(LogonFailure::UnknownUser, String::new()))?,
            account.gid,
        )
        .map_err(|e| refuse(LogonFailure::Other, format!("group list: {e}")))?;
        let opened = context.open_session(Flag::NONE).map(|s| s.leak());
        let session = match opened {
            Ok(token) => token,
            Err(e) => return Err(pam_refusal(&mut context, e)),
        };
        let shell = account.shell.clone().into_os_string();
        let mut env: Vec<(OsString, OsString)> = vec![
            ("HOME".into(), account.dir.clone().into_os_string()),
            ("USER".into(), user.into()),
            ("LOGNAME".into(), user.into()),
            ("SHELL".into(), shell),
            ("PATH".into(), login_path(account.uid.is_root())),
        ];
        if let Some(term) = std::env::var_os("TERM") {
            env.push(("TERM".into(), term));
        }
        // What PAM's modules set (pam_env, pam_systemd's XDG_RUNTIME_DIR, ...) wins.
        for item in context.envlist().iter() {
            let (k, v) = item.key_value();
            env.retain(|(x, _)| x.as_os_str() != k);
            env.push((k.to_owned(), v.to_owned()));
        }
        Ok(Logon {
            user: user.to_owned(),
            credentials: Credentials {
                uid: account.uid.as_raw(),
                gid: account.gid.as_raw(),
                groups: groups.iter().map(|g| g.as_raw()).collect(),
            },
            home: account.dir,
            env,
            context,
            session: Some(session),
        })
    }

    /// The user logged on.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user's uid, gid and groups.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The environment a process of this logon starts with.
    pub fn environment(&self) -> &[(OsString, OsString)] {
        &self.env
    }

    /// Makes `builder` start as the logged-on user: credentials, the home
    /// directory as the current directory, the login environment (in place
    /// of the caller's).
    pub fn apply(&self, mut builder: ProcessBuilder) -> ProcessBuilder {
        builder = builder
            .credentials(self.credentials.clone())
            .current_dir(&self.home)
            .env_clear();
        for (k, v) in &self.env {
            builder = builder.env(k, v);
        }
        builder
    }
}

impl Drop for Logon {
    /// Closes the session and deletes the credentials (`pam_close_session`,
    /// `pam_setcred(PAM_DELETE_CRED)`).
    fn drop(&mut self) {
        if let Some(token) = self.session.take() {
            let session = self.context.unleak_session(token);
            drop(session);
        }
    }
}
