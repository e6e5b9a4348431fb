//! What `taskloom job caps` says of the direct backend: how each job
//! feature is enforced by cgroup directories here, probed, not assumed.

use super::{cgroup, isolation};
use crate::job::{Capability, layout::Controller};
use crate::process::Namespaces;

/// Whether members started by a job's handle are kept in (a cgroup
/// namespace per job), and what a member can still do.
fn containment_capability(has_v2: bool) -> (bool, String) {
    let still = "still possible: processes put in with `job assign` keep the namespaces they had, and so does the first process a handle opened by name (`Job::open`) starts in a job without a member to take them from; a member running as root in the machine's own user namespace can enter other namespaces (setns) and leave, and can signal and trace the guardian and the owner";
    let services = "a member can still ask the user's service manager to start a process outside the job (`systemd-run --user`), as a Windows process can through WMI, unless the job hides the services (`run --no-services`, `JobBuilder::hide_services`; a bus on an abstract socket is not hidden)";
    if !has_v2 {
        return (
            false,
            "needs cgroup2: a member that may write cgroup.procs above its job (root; the owner of a delegated subtree) can move itself out".into(),
        );
    }
    if !cgroup::namespaces_delegate() {
        return (
            false,
            "cgroup2 is not mounted with nsdelegate here, so a cgroup namespace does not bound migration: a member that may write cgroup.procs above its job (root; the owner of a delegated subtree) can move itself out".into(),
        );
    }
    let root = rustix::process::geteuid().is_root();
    let user = if root {
        ""
    } else {
        ", inside a user namespace that maps only you (set-user-ID programs such as sudo gain nothing there)"
    };
    // What a job would get: the same helper, placed nowhere.
    match Namespaces::isolated_by(!root, isolation(false).as_ref(), &|_| Ok(())) {
        Ok(ns) if ns.is_isolated() => (
            true,
            format!(
                "each process a job's handle starts (`run`, `Job::spawn`) is in namespaces of its job's own{user}: a cgroup namespace rooted at the job (it cannot move itself or its children out, nor change the job's limits), a pid namespace (it sees and can signal only its job's processes, never the guardian or the owner, and when the job closes the kernel ends every member, also without the guardian) and a mount namespace whose cgroup2 view is the job alone (no enclosing job's limit is within reach) (`run --uncontained` turns this off); {services}; {still}"
            ),
        ),
        Ok(_) | Err(_) => match Namespaces::rooted_by(!root, &|_| Ok(())) {
            Ok(_) => (
                true,
                format!(
                    "each process a job's handle starts (`run`, `Job::spawn`) is in a cgroup namespace rooted at its job{user}: it cannot move itself or its children out, nor change the job's limits (`run --uncontained` turns this off); but this machine gives it no pid and mount namespace of its own, so a member running as you can signal the guardian and the owner, and reach an enclosing job's limits through the machine's cgroup2 mount; {services}; {still}"
                ),
            ),
            Err(e) => (
                false,
                format!(
                    "an unprivileged cgroup namespace needs a user namespace, and this machine refuses one ({e}); the owner of the delegated subtree can move a member out"
                ),
            ),
        },
    }
}

/// How each job feature is enforced by cgroup directories below `roots`;
/// `manager` names the systemd manager that delegated them, if one did.
pub(crate) fn capabilities(roots: &cgroup::Roots, manager: Option<&str>) -> Vec<Capability> {
    let ctl = |c: Controller| -> (bool, String) {
        if let Some(r) = roots.v1_root(c) {
            (true, format!("cgroup v1 {} ({})", c.name(), r.display()))
        } else if roots.v2_controllers.iter().any(|n| n == c.name()) {
            (
                true,
                format!(
                    "cgroup2 {} ({})",
                    c.name(),
                    roots
                        .v2
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
            )
        } else if let Some(manager) = manager {
            (
                false,
                format!(
                    "the {c} controller is not delegated to {manager}; an administrator can add it: `systemctl edit user@.service` with [Service] Delegate=cpu cpuset io memory pids, then log in again",
                    c = c.name()
                ),
            )
        } else {
            (
                false,
                format!(
                    "the {} controller is not available to this process's cgroup",
                    c.name()
                ),
            )
        }
    };
    let mut caps = Vec::new();
    let mut push = |feature, (enforced, detail): (bool, String)| {
        caps.push(Capability {
            feature,
            enforced,
            detail,
        })
    };
    push(
        "membership",
        match (&roots.v2, manager) {
            (Some(r), Some(manager)) => (
                true,
                format!(
                    "cgroup2 delegated by {manager}: a transient scope per job ({}): inherited by every fork, double-fork and setsid included",
                    r.display()
                ),
            ),
            (Some(r), None) => (
                true,
                format!(
                    "cgroup2 ({}): inherited by every fork, double-fork and setsid included",
                    r.display()
                ),
            ),
            (None, _) if !roots.v1.is_empty() => (true, "cgroup v1 hierarchies".into()),
            (None, _) => (false, roots.problems.join("; ")),
        },
    );
    push("active-processes", ctl(Controller::Pids));
    push("job-memory", ctl(Controller::Memory));
    push("process-memory", (true, "RLIMIT_AS per process".into()));
    push("affinity", ctl(Controller::Cpuset));
    push("cpu-rate", ctl(Controller::Cpu));
    push(
        "cpu-weight",
        match ctl(Controller::Cpu) {
            (true, how) => (
                true,
                format!(
                    "{how}: cpu.weight (v1: cpu.shares), 1-9 scaled to keep ratios; a share under contention, not a reservation"
                ),
            ),
            no => no,
        },
    );
    // memory.low and memory.high are cgroup2's: a v1 memory controller has neither.
    let memory_v2 = roots.v1_root(Controller::Memory).is_none()
        && roots.v2_controllers.iter().any(|n| n == "memory");
    for (feature, file, what) in [
        (
            "memory-low",
            "memory.low",
            "reclaimed from last under pressure (a protection, not a reservation)",
        ),
        (
            "memory-high",
            "memory.high",
            "throttled and reclaimed above it, never killed for it",
        ),
    ] {
        push(
            feature,
            match ctl(Controller::Memory) {
                (true, _) if memory_v2 => (true, format!("cgroup2 {file}: {what}")),
                (true, _) => (
                    false,
                    format!("the memory controller is cgroup v1 here, which has no {file}"),
                ),
                no => no,
            },
        );
    }
    push(
        "priority",
        (
            true,
            "nice of each member, set at spawn/assign/set (a member with CAP_SYS_NICE can raise its own)".into(),
        ),
    );
    push("process-time", (true, "RLIMIT_CPU per process".into()));
    push(
        "die-on-unhandled-exception",
        (true, die_on_exception_detail()),
    );
    let io = roots.v2_controllers.iter().any(|c| c == "io");
    push(
        "io-accounting",
        match (io, manager) {
            (true, _) => (
                true,
                format!(
                    "cgroup2 io.stat ({}): what reaches a device, not the page cache",
                    roots
                        .v2
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
            ),
            (false, Some(manager)) => (
                false,
                format!(
                    "the io controller is not delegated to {manager}; an administrator can add it: `systemctl edit user@.service` with [Service] Delegate=cpu cpuset io memory pids"
                ),
            ),
            (false, None) => (
                false,
                "no cgroup2 io controller for jobs here (cgroup v1's blkio is not used)".into(),
            ),
        },
    );
    push(
        "io-rate",
        match (io, manager) {
            (true, _) => (
                true,
                "cgroup2 io.max per disk (a path names the disk that holds it): bytes and operations per second, read and write apart".into(),
            ),
            (false, Some(manager)) => (
                false,
                format!("the io controller is not delegated to {manager}; an administrator can add it: `systemctl edit user@.service` with [Service] Delegate=cpu cpuset io memory pids"),
            ),
            (false, None) => (
                false,
                "no cgroup2 io controller for jobs here (cgroup v1's blkio is not used)".into(),
            ),
        },
    );
    push(
        "job-time",
        (
            roots.v2.is_some() || roots.has(Controller::Cpuacct),
            "cgroup CPU accounting, enforced by a watcher while one runs (`Job::watch`, `taskloom run`)".into(),
        ),
    );
    push(
        "notification-limits",
        (
            roots.v2.is_some() || roots.has(Controller::Cpuacct),
            "soft limits (job memory at its peak, user time, I/O bytes where io.stat counts) compared at each scan by a watcher while one runs (`Job::watch`, `taskloom run`, `job watch`); nothing is stopped".into(),
        ),
    );
    push(
        "terminate",
        match &roots.v2 {
            Some(_) => (true, "cgroup.kill (no racing fork escapes)".into()),
            None if roots.has(Controller::Freezer) => {
                (true, "freeze, kill every member, thaw".into())
            }
            None => (
                false,
                "kill loop without a freezer: a process forking fast may escape".into(),
            ),
        },
    );
    push(
        "freeze",
        if roots.v2.is_some() {
            (true, "cgroup.freeze".into())
        } else {
            ctl(Controller::Freezer)
        },
    );
    push(
        "kill-on-close",
        (
            true,
            "guardian process watching the holders' pipe; survives SIGKILL of the owner".into(),
        ),
    );
    push(
        "notifications",
        (
            true,
            "cgroup.events, pids.events, memory events and member scans, polled".into(),
        ),
    );
    push("containment", containment_capability(roots.v2.is_some()));
    push(
        "total-processes",
        total_processes_capability(roots.v2.is_some()),
    );
    caps
}

/// Whether jobs keep `TotalProcesses` here (a counter process per job,
/// listening to the kernel's process events).
fn total_processes_capability(has_v2: bool) -> (bool, String) {
    if !has_v2 {
        return (
            false,
            "not counted: the job's counter needs cgroup2 (a watcher, `job watch`, counts while it runs)"
                .into(),
        );
    }
    match crate::job::guardian::counting_available() {
        Ok(()) => (
            true,
            "the job's guardian (or one that only counts) counts every process its members start, from the kernel's process events".into(),
        ),
        Err(e) => (
            false,
            format!(
                "not counted: the kernel's process events are not available to this process ({e}; any user on Linux 6.6 and later, root before, outside user and pid namespaces); a watcher (`job watch`) counts while it runs, less exactly"
            ),
        ),
    }
}

/// How a crash ends in a die-on-unhandled-exception job here: RLIMIT_CORE
/// 1, and what this machine's `core_pattern` makes of it.
pub(crate) fn die_on_exception_detail() -> String {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let pattern = pattern.trim();
    let how = if let Some(handler) = pattern.strip_prefix('|') {
        let program = handler.split_whitespace().next().unwrap_or(handler);
        format!("core_pattern pipes to {program}, which the kernel does not start at that limit")
    } else {
        format!("core_pattern {pattern:?} writes files, and none is written at that limit")
    };
    format!(
        "RLIMIT_CORE 1 (soft and hard) on each member: {how}; a crash is an exit by signal (a member with CAP_SYS_RESOURCE, root, may raise the limit again)"
    )
}
