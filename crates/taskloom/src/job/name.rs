//! Job names: what a name may be, and the names of jobs made without one.

use crate::error::{Error, Result};

/// The name of the directory that holds jobs below a cgroup on Linux
/// (`linux::JOB_ROOT_NAME`): no job takes it, on either system, so a name
/// valid on one is valid on the other.
const RESERVED: &str = "taskloom";

/// The longest job name accepted.
pub const MAX_NAME_LEN: usize = 128;

/// Checks that `name` is one safe path component.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidJobName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 128 bytes");
    }
    if name.contains('/') {
        return bad("contains '/'");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not names");
    }
    if name.starts_with('.') {
        return bad("starts with '.'");
    }
    if name.contains('\0') {
        return bad("contains a NUL byte");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad("only letters, digits, '-', '_' and '.' are allowed");
    }
    if name == RESERVED {
        return bad("is reserved: it holds the jobs a job's members make");
    }
    // Control files are named `<controller>.<file>` (cgroup v1 and v2) or
    // are one of v1's few bare names: a job of such a name would clash in
    // some hierarchy, now or when a controller is mounted later.
    const CONTROLLERS: [&str; 17] = [
        "cgroup",
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "pids",
        "io",
        "blkio",
        "freezer",
        "devices",
        "net_cls",
        "net_prio",
        "hugetlb",
        "perf_event",
        "rdma",
        "misc",
        "dmem",
    ];
    let prefix = name.split('.').next().unwrap_or(name);
    if (name.contains('.') && CONTROLLERS.contains(&prefix))
        || name.contains(".max")
        || ["tasks", "notify_on_release", "release_agent"].contains(&name)
    {
        return bad("clashes with a cgroup control file");
    }
    Ok(())
}

/// The name of a job made without one (`CreateJobObject(NULL, NULL)`).
pub(crate) fn anon_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "anon-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn the_reserved_name_is_the_cgroup_job_root() {
        assert_eq!(RESERVED, crate::linux::JOB_ROOT_NAME);
    }

    #[test]
    fn names_that_escape_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\0b",
            ".hidden",
            "cgroup.procs",
            "cpu.shares",
            "cpu.stat",
            "memory.limit_in_bytes",
            "pids.current",
            "freezer.state",
            "io.weight",
            "tasks",
            "sp ace",
            "ü",
            "pids.max",
        ] {
            assert!(
                matches!(validate_name(bad), Err(Error::InvalidJobName { .. })),
                "{bad:?}"
            );
        }
        assert!(validate_name(&"x".repeat(129)).is_err());
        for good in [
            "build",
            "ci-42",
            "a.b_c",
            "cpu",
            "memory-heavy",
            "v1.2",
            &"x".repeat(128),
        ] {
            validate_name(good).unwrap();
        }
    }
}
