//! How a test that cannot run says so, shared by every test binary of
//! both crates (included by path where `tests/common` as a whole is not).

/// A test that cannot run on this machine says so, where it counts: under
/// CI (`CI` set) it fails, unless the CI script names it in
/// `TASKLOOM_NOT_RUN_HERE` (test names separated by spaces), which it does
/// for each machine where the test cannot run, with the reason, in its own
/// output (`.ci/run` for the host, `.ci/guests` per guest). Elsewhere it
/// prints why. The caller returns after it.
pub fn not_run(test: &str, why: &str) {
    let expected = std::env::var("TASKLOOM_NOT_RUN_HERE")
        .unwrap_or_default()
        .split_whitespace()
        .any(|t| t == test);
    if std::env::var_os("CI").is_some() && !expected {
        panic!(
            "{test}: cannot run here ({why}); CI expects every test to run, or names it in TASKLOOM_NOT_RUN_HERE"
        );
    }
    eprintln!("{test}: not run: {why}");
}
