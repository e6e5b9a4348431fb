//! Says in `taskloom --version` which commit a checkout build came from and
//! which features it has.

fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|c| !c.is_empty())
        .map_or_else(
            || "not from a checkout".to_owned(),
            |c| format!("commit {c}"),
        );
    let mut features = Vec::new();
    if std::env::var_os("CARGO_FEATURE_LOGON").is_some() {
        features.push("logon");
    }
    let features = if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(", ")
    };
    println!("cargo:rustc-env=TASKLOOM_COMMIT={commit}");
    println!("cargo:rustc-env=TASKLOOM_FEATURES={features}");
    // A new commit changes the version string.
    if let Ok(head) = std::fs::read_to_string("../../.git/HEAD") {
        println!("cargo:rerun-if-changed=../../.git/HEAD");
        if let Some(r) = head.strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=../../.git/{}", r.trim());
        }
    }
}
