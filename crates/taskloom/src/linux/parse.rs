//! Parsers for `/proc` files: bytes in, values out, no I/O (fuzzed and
//! property-tested on generated files).
//!
//! The traps they avoid: a command name is raw bytes between the first `(`
//! and the **last** `)` of `stat` and may hold spaces, `)`, newlines, tabs,
//! `:` and invalid UTF-8; `status` lines split at the *first* `:` only;
//! `cmdline` and `environ` are NUL-separated bytes, kept as bytes.

/// A `/proc` file did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected /proc format: {0}")]
pub struct ParseError(pub &'static str);

/// `/proc/<pid>/stat` (and `task/<tid>/stat`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stat {
    /// Process (or thread) id.
    pub pid: i32,
    /// The command name, raw bytes (at most 15 + NUL in the kernel).
    #[serde(serialize_with = "crate::bytes::serialize")]
    pub comm: Vec<u8>,
    /// State letter: R, S, D, Z, T, t, X, I, ...
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// Process group.
    pub pgrp: i32,
    /// Session.
    pub session: i32,
    /// Controlling terminal device number.
    pub tty_nr: i32,
    /// `PF_*` flags.
    pub flags: u32,
    /// Minor faults.
    pub minflt: u64,
    /// Major faults.
    pub majflt: u64,
    /// User time in clock ticks.
    pub utime: u64,
    /// Kernel time in clock ticks.
    pub stime: u64,
    /// Kernel priority value.
    pub priority: i64,
    /// Nice value.
    pub nice: i64,
    /// Threads.
    pub num_threads: i64,
    /// Start time in clock ticks since boot.
    pub starttime: u64,
    /// Virtual memory size in bytes.
    pub vsize: u64,
    /// Resident pages.
    pub rss_pages: i64,
    /// CPU it last ran on.
    pub processor: i32,
    /// Real-time priority.
    pub rt_priority: u32,
    /// Scheduling policy (`SCHED_*`).
    pub policy: u32,
    /// Exit status as `waitpid` would report it (zombies; kernel 3.5+).
    pub exit_code: Option<i32>,
}

/// `PF_KTHREAD`: a kernel thread (Windows' "minimal process" is its nearest kin).
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// Parses `stat`.
pub fn parse_stat(buf: &[u8]) -> Result<Stat, ParseError> {
    let open = buf
        .iter()
        .position(|&c| c == b'(')
        .ok_or(ParseError("stat: no '('"))?;
    let close = buf
        .iter()
        .rposition(|&c| c == b')')
        .ok_or(ParseError("stat: no ')'"))?;
    if close < open {
        return Err(ParseError("stat: ')' before '('"));
    }
    let pid = parse_int::<i32>(trim(&buf[..open])).ok_or(ParseError("stat: pid"))?;
    let comm = buf[open + 1..close].to_vec();
    let rest = buf
        .get(close + 2..)
        .ok_or(ParseError("stat: nothing after the name"))?;
    let rest = trim(rest);
    let f: Vec<&[u8]> = rest.split(|&c| c == b' ').collect();
    if f.len() < 22 {
        return Err(ParseError("stat: too few fields"));
    }
    let num = |i: usize| -> Result<i64, ParseError> {
        f.get(i)
            .and_then(|s| parse_int::<i64>(s))
            .ok_or(ParseError("stat: bad number"))
    };
    let unum = |i: usize| -> Result<u64, ParseError> {
        f.get(i)
            .and_then(|s| parse_int::<u64>(s))
            .ok_or(ParseError("stat: bad number"))
    };
    let state = *f[0].first().ok_or(ParseError("stat: empty state"))? as char;
    Ok(Stat {
        pid,
        comm,
        state,
        ppid: num(1)? as i32,
        pgrp: num(2)? as i32,
        session: num(3)? as i32,
        tty_nr: num(4)? as i32,
        flags: unum(6)? as u32,
        minflt: unum(7)?,
        majflt: unum(9)?,
        utime: unum(11)?,
        stime: unum(12)?,
        priority: num(15)?,
        nice: num(16)?,
        num_threads: num(17)?,
        starttime: unum(19)?,
        vsize: unum(20)?,
        rss_pages: num(21)?,
        processor: f.get(36).and_then(|s| parse_int::<i32>(s)).unwrap_or(-1),
        rt_priority: f.get(37).and_then(|s| parse_int::<u32>(s)).unwrap_or(0),
        policy: f.get(38).and_then(|s| parse_int::<u32>(s)).unwrap_or(0),
        exit_code: f.get(49).and_then(|s| parse_int::<i32>(s)),
    })
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// Parses a decimal integer from ASCII bytes (optional leading '-').
pub fn parse_int<T: std::str::FromStr>(b: &[u8]) -> Option<T> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// `status`: the value of `key` (the text after the first `:` of its line, trimmed).
pub fn status_field<'a>(buf: &'a [u8], key: &str) -> Option<&'a [u8]> {
    buf.split(|&c| c == b'\n').find_map(|line| {
        let colon = line.iter().position(|&c| c == b':')?;
        (&line[..colon] == key.as_bytes()).then(|| trim(&line[colon + 1..]))
    })
}

/// The parts of `status` taskloom reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// Real, effective, saved, filesystem uid.
    pub uid: [u32; 4],
    /// Real, effective, saved, filesystem gid.
    pub gid: [u32; 4],
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Capability sets: inheritable, permitted, effective, bounding, ambient.
    pub cap_inh: u64,
    /// Permitted.
    pub cap_prm: u64,
    /// Effective.
    pub cap_eff: u64,
    /// Bounding.
    pub cap_bnd: u64,
    /// Ambient.
    pub cap_amb: u64,
    /// `no_new_privs`.
    pub no_new_privs: bool,
    /// Seccomp mode: 0 off, 1 strict, 2 filter.
    pub seccomp: u32,
    /// Pid of the tracer (0: not being debugged).
    pub tracer_pid: i32,
    /// Peak virtual memory, bytes.
    pub vm_peak: Option<u64>,
    /// Peak resident memory, bytes.
    pub vm_hwm: Option<u64>,
    /// Resident memory, bytes.
    pub vm_rss: Option<u64>,
    /// Private (anonymous) resident memory, bytes.
    pub rss_anon: Option<u64>,
    /// Voluntary context switches.
    pub voluntary_switches: u64,
    /// Involuntary context switches.
    pub involuntary_switches: u64,
    /// Allowed CPUs, as a list.
    pub cpus_allowed_list: String,
    /// The pid in each nested pid namespace, outermost first.
    pub nspid: Vec<i32>,
}

fn ints<T: std::str::FromStr>(b: &[u8]) -> Vec<T> {
    b.split(|c| c.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
        .filter_map(parse_int)
        .collect()
}

fn kb(b: Option<&[u8]>) -> Option<u64> {
    let b = b?;
    let num = b.split(|&c| c == b' ').next()?;
    // A value no kernel writes (above 2^54 kB) is not a size: None, not a wrap.
    parse_int::<u64>(num).and_then(|k| k.checked_mul(1024))
}

fn hex(b: Option<&[u8]>) -> u64 {
    b.and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .unwrap_or(0)
}

/// Parses `status`.
pub fn parse_status(buf: &[u8]) -> Status {
    let f = |k| status_field(buf, k);
    let four = |k| {
        let v: Vec<u32> = f(k).map(ints).unwrap_or_default();
        [
            v.first().copied().unwrap_or(0),
            v.get(1).copied().unwrap_or(0),
            v.get(2).copied().unwrap_or(0),
            v.get(3).copied().unwrap_or(0),
        ]
    };
    let num = |k| f(k).and_then(parse_int::<u64>).unwrap_or(0);
    Status {
        uid: four("Uid"),
        gid: four("Gid"),
        groups: f("Groups").map(ints).unwrap_or_default(),
        cap_inh: hex(f("CapInh")),
        cap_prm: hex(f("CapPrm")),
        cap_eff: hex(f("CapEff")),
        cap_bnd: hex(f("CapBnd")),
        cap_amb: hex(f("CapAmb")),
        no_new_privs: num("NoNewPrivs") == 1,
        seccomp: num("Seccomp") as u32,
        tracer_pid: f("TracerPid").and_then(parse_int::<i32>).unwrap_or(0),
        vm_peak: kb(f("VmPeak")),
        vm_hwm: kb(f("VmHWM")),
        vm_rss: kb(f("VmRSS")),
        rss_anon: kb(f("RssAnon")),
        voluntary_switches: num("voluntary_ctxt_switches"),
        involuntary_switches: num("nonvoluntary_ctxt_switches"),
        cpus_allowed_list: f("Cpus_allowed_list")
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default(),
        nspid: f("NSpid").map(ints).unwrap_or_default(),
    }
}

/// Splits NUL-separated bytes (`cmdline`, `environ`); a trailing NUL ends the last item.
pub fn split_nul(buf: &[u8]) -> Vec<Vec<u8>> {
    if buf.is_empty() {
        return Vec::new();
    }
    let body = buf.strip_suffix(&[0]).unwrap_or(buf);
    body.split(|&c| c == 0).map(<[u8]>::to_vec).collect()
}

/// One line of `maps`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mapping {
    /// Start address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// `rwxp` / `rwxs`.
    pub perms: String,
    /// File offset.
    pub offset: u64,
    /// Inode (0: anonymous).
    pub inode: u64,
    /// Path or pseudo-name (`[heap]`, `[stack]`, `[vdso]`), raw bytes.
    #[serde(serialize_with = "crate::bytes::serialize")]
    pub path: Vec<u8>,
}

/// Parses `maps`; malformed lines are skipped.
pub fn parse_maps(buf: &[u8]) -> Vec<Mapping> {
    buf.split(|&c| c == b'\n')
        .filter_map(parse_map_line)
        .collect()
}

fn parse_map_line(line: &[u8]) -> Option<Mapping> {
    let mut rest = line;
    let mut field = || -> Option<&[u8]> {
        let start = rest.iter().position(|&c| c != b' ')?;
        rest = &rest[start..];
        let end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
        let (f, r) = rest.split_at(end);
        rest = r;
        Some(f)
    };
    let range = field()?;
    let perms = field()?;
    let offset = field()?;
    let _dev = field()?;
    let inode = field()?;
    let dash = range.iter().position(|&c| c == b'-')?;
    let hexnum = |b: &[u8]| u64::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok();
    // The path is the rest after the padding; it may itself contain spaces.
    let path_start = rest.iter().position(|&c| c != b' ').unwrap_or(rest.len());
    let (start, end) = (hexnum(&range[..dash])?, hexnum(&range[dash + 1..])?);
    // The kernel never writes a range that ends below its start: not a mapping.
    if end < start {
        return None;
    }
    Some(Mapping {
        start,
        end,
        perms: String::from_utf8_lossy(perms).into_owned(),
        offset: hexnum(offset)?,
        inode: parse_int(inode)?,
        path: rest[path_start..].to_vec(),
    })
}

/// The GNU build-id of a 64-bit little-endian ELF image, from the start of
/// its file (`head` must hold the ELF header, the program headers and the
/// notes they point to; 64 KiB covers every ordinary binary).
pub fn elf_build_id(head: &[u8]) -> Option<Vec<u8>> {
    let u16_at = |o: usize| head.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        head.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        head.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    if head.get(..4)? != b"\x7fELF" || head.get(4)? != &2 || head.get(5)? != &1 {
        return None; // not ELF64 little-endian
    }
    let phoff = u64_at(0x20)? as usize;
    let phentsize = u16_at(0x36)? as usize;
    let phnum = u16_at(0x38)? as usize;
    if phentsize < 56 {
        return None;
    }
    for i in 0..phnum.min(256) {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(ph)? != 4 {
            continue; // PT_NOTE only
        }
        let off = u64_at(ph + 8)? as usize;
        let size = u64_at(ph + 32)? as usize;
        let notes = head.get(off..off.checked_add(size)?)?;
        let mut n = 0usize;
        while n + 12 <= notes.len() {
            let word = |o: usize| {
                notes
                    .get(o..o + 4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            };
            let (namesz, descsz, kind) = (word(n)?, word(n + 4)?, word(n + 8)?);
            let name_end = n.checked_add(12)?.checked_add(namesz)?;
            let desc_start = n.checked_add(12)?.checked_add(namesz.div_ceil(4) * 4)?;
            let desc_end = desc_start.checked_add(descsz)?;
            if desc_end > notes.len() || name_end > notes.len() {
                break;
            }
            if kind == 3 && &notes[n + 12..name_end] == b"GNU\0" {
                return Some(notes[desc_start..desc_end].to_vec());
            }
            n = desc_start.checked_add(descsz.div_ceil(4) * 4)?;
        }
    }
    None
}

/// Capability names, by bit number (linux/capability.h).
pub const CAPABILITY_NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// The names of the capabilities set in `mask` (`cap_N` past the known ones).
pub fn capability_names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| {
            CAPABILITY_NAMES
                .get(b)
                .map_or_else(|| format!("cap_{b}"), |n| (*n).to_string())
        })
        .collect()
}

/// `fdinfo`'s `flags:` field (octal open flags).
pub fn fdinfo_flags(buf: &[u8]) -> Option<u32> {
    let v = status_field(buf, "flags")?;
    u32::from_str_radix(std::str::from_utf8(v).ok()?, 8).ok()
}

/// A cgroup2 `io.stat`, summed over its devices: bytes and operations
/// read, written and discarded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStat {
    /// Bytes read.
    pub rbytes: u64,
    /// Bytes written.
    pub wbytes: u64,
    /// Bytes discarded.
    pub dbytes: u64,
    /// Read operations.
    pub rios: u64,
    /// Write operations.
    pub wios: u64,
    /// Discard operations.
    pub dios: u64,
}

/// Parses `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6`
/// per line); unknown keys and malformed pairs are skipped.
pub fn parse_io_stat(text: &str) -> IoStat {
    let mut out = IoStat::default();
    for line in text.lines() {
        for pair in line.split_whitespace().skip(1) {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            let slot = match k {
                "rbytes" => &mut out.rbytes,
                "wbytes" => &mut out.wbytes,
                "dbytes" => &mut out.dbytes,
                "rios" => &mut out.rios,
                "wios" => &mut out.wios,
                "dios" => &mut out.dios,
                _ => continue,
            };
            *slot = slot.saturating_add(v);
        }
    }
    out
}

/// The `avg10` values of a pressure file (`cpu.pressure`, `memory.pressure`,
/// `io.pressure`): the share of the last ten seconds, in percent, in which
/// some (and, for memory and I/O, all) of the group's tasks were stalled.
pub fn parse_pressure(text: &str) -> (Option<f64>, Option<f64>) {
    let avg10 = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))?
            .split_whitespace()
            .find_map(|f| f.strip_prefix("avg10="))?
            .parse()
            .ok()
    };
    (avg10("some "), avg10("full "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_stat_sums_every_device() {
        let t = "8:0 rbytes=1024 wbytes=4096 rios=1 wios=2 dbytes=0 dios=0\n\
                 253:1 rbytes=10 wbytes=20 rios=3 wios=4 dbytes=5 dios=6 junk\n";
        let s = parse_io_stat(t);
        assert_eq!((s.rbytes, s.wbytes, s.dbytes), (1034, 4116, 5));
        assert_eq!((s.rios, s.wios, s.dios), (4, 6, 6));
        assert_eq!(parse_io_stat(""), IoStat::default());
    }

    #[test]
    fn pressure_gives_the_ten_second_averages() {
        let t = "some avg10=1.50 avg60=0.20 avg300=0.00 total=123\nfull avg10=0.25 avg60=0.00 avg300=0.00 total=4\n";
        assert_eq!(parse_pressure(t), (Some(1.5), Some(0.25)));
        assert_eq!(
            parse_pressure("some avg10=3.00 avg60=0 avg300=0 total=1\n"),
            (Some(3.0), None)
        );
        assert_eq!(parse_pressure("garbage"), (None, None));
    }

    #[test]
    fn stat_names_with_parens_spaces_and_newlines() {
        let line = b"4242 (x) S 1 (y z) S 1 4242 4242 0 -1 4194560 100 0 2 0 7 3 0 0 20 0 1 0 12345 8192000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 9\n";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, b"x) S 1 (y z");
        assert_eq!(
            (s.state, s.ppid, s.utime, s.stime, s.num_threads),
            ('S', 1, 7, 3, 1)
        );
        assert_eq!(
            (s.starttime, s.vsize, s.rss_pages, s.processor),
            (12345, 8192000, 300, 1)
        );
        assert_eq!(s.exit_code, Some(9));
        let nl = b"7 (a\nb\t:c\xff) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0\n";
        let s = parse_stat(nl).unwrap();
        assert_eq!(s.comm, b"a\nb\t:c\xff");
        assert_eq!(s.state, 'R');
        assert!(parse_stat(b"12 (unterminated R 1").is_err());
        assert!(parse_stat(b"").is_err());
    }

    #[test]
    fn status_splits_at_the_first_colon() {
        let buf = b"Name:\ta:b:c\nUid:\t1000\t1001\t1002\t1003\nGroups:\t4 24 27 \nCapEff:\t0000000000003000\nVmHWM:\t  2048 kB\nNSpid:\t77\t1\nCpus_allowed_list:\t0-3,5\n";
        assert_eq!(status_field(buf, "Name"), Some(&b"a:b:c"[..]));
        let s = parse_status(buf);
        assert_eq!(s.uid, [1000, 1001, 1002, 1003]);
        assert_eq!(s.groups, [4, 24, 27]);
        assert_eq!(capability_names(s.cap_eff), ["net_admin", "net_raw"]);
        assert_eq!(s.vm_hwm, Some(2048 * 1024));
        assert_eq!(s.nspid, [77, 1]);
        assert_eq!(s.cpus_allowed_list, "0-3,5");
    }

    #[test]
    fn nul_lists_keep_bytes() {
        assert_eq!(
            split_nul(b"a\0b c\0\xff\0"),
            vec![b"a".to_vec(), b"b c".to_vec(), b"\xff".to_vec()]
        );
        assert!(split_nul(b"").is_empty());
        assert_eq!(split_nul(b"no-nul"), vec![b"no-nul".to_vec()]);
    }

    #[test]
    fn build_ids_come_from_the_gnu_note() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let id = elf_build_id(&exe[..exe.len().min(64 * 1024)]);
        // Rust test binaries are linked with a build-id on Debian's toolchain; if this
        // one has none the parser must simply say so.
        if let Some(id) = &id {
            assert!(id.len() >= 8, "{id:?}");
        }
        assert_eq!(elf_build_id(b"not an elf file at all"), None);
        assert_eq!(
            elf_build_id(&exe[..64.min(exe.len())]),
            None,
            "headers cut short: no panic, no id"
        );
    }

    #[test]
    fn what_the_fuzzers_found_is_refused_not_wrapped() {
        // parse_maps: a range that ends below its start (the subtraction
        // that sized modules overflowed).
        assert!(parse_maps(b"7f00-1000 r-xp 00000000 08:01 42 /lib/x.so\n").is_empty());
        // parse_status: a kB value whose byte count does not fit in u64.
        let st = parse_status(b"VmRSS:\t18446744073709551615 kB\n");
        assert_eq!(st.vm_rss, None);
    }

    #[test]
    fn maps_paths_may_hold_spaces() {
        let buf = b"55d0c0a00000-55d0c0a02000 r--p 00000000 fe:01 1234   /usr/bin/my prog (deleted)\n7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]\n7f0000-7f1000 ---p 00000000 00:00 0\nbroken\n";
        let m = parse_maps(buf);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].path, b"/usr/bin/my prog (deleted)");
        assert_eq!(
            (m[0].start, m[0].end, m[0].inode),
            (0x55d0c0a00000, 0x55d0c0a02000, 1234)
        );
        assert_eq!(m[1].path, b"[stack]");
        assert!(m[2].path.is_empty());
    }
}
