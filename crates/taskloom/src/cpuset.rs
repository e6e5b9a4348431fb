//! CPU sets (affinity masks) written and read as kernel CPU lists: `0-3,5`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The largest CPU number + 1 a [`CpuSet`] can hold (the size of glibc's `cpu_set_t`).
pub const MAX_CPUS: usize = 1024;
const WORDS: usize = MAX_CPUS / 64;

/// A set of CPUs, the Linux form of a Windows affinity mask.
///
/// Parses and prints the kernel's list format (`0-3,5`, as in
/// `/sys/devices/system/cpu/online` and `taskset -c`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CpuSet {
    bits: [u64; WORDS],
}

impl CpuSet {
    /// The empty set.
    pub const fn new() -> Self {
        CpuSet { bits: [0; WORDS] }
    }

    /// Adds `cpu`; panics if `cpu >= MAX_CPUS`.
    pub fn insert(&mut self, cpu: usize) {
        assert!(cpu < MAX_CPUS, "CPU {cpu} is beyond {MAX_CPUS}");
        self.bits[cpu / 64] |= 1 << (cpu % 64);
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: usize) -> bool {
        cpu < MAX_CPUS && self.bits[cpu / 64] & (1 << (cpu % 64)) != 0
    }

    /// Number of CPUs in the set.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set holds no CPU.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    /// The CPUs in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX_CPUS).filter(|&c| self.contains(c))
    }

    /// The raw mask words, CPU 0 in bit 0 of word 0: the layout `sched_setaffinity` takes.
    pub fn as_words(&self) -> &[u64; WORDS] {
        &self.bits
    }

    /// Builds a set from mask words laid out as by [`CpuSet::as_words`].
    pub fn from_words(words: &[u64]) -> Self {
        let mut set = CpuSet::new();
        for (i, w) in words.iter().take(WORDS).enumerate() {
            set.bits[i] = *w;
        }
        set
    }

    /// Parses a kernel CPU list (`0-3,5`, `7`, `0-15:2` is not accepted).
    pub fn parse_list(input: &str) -> Result<Self> {
        let bad = |reason: String| Error::InvalidCpuList {
            input: input.to_string(),
            reason,
        };
        let mut set = CpuSet::new();
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(bad("empty list".into()));
        }
        for part in trimmed.split(',') {
            let part = part.trim();
            let num = |s: &str| -> Result<usize> {
                let n: usize = s
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("{s:?} is not a CPU number")))?;
                if n >= MAX_CPUS {
                    return Err(bad(format!("CPU {n} is beyond the limit of {MAX_CPUS}")));
                }
                Ok(n)
            };
            match part.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (num(lo)?, num(hi)?);
                    if lo > hi {
                        return Err(bad(format!("range {lo}-{hi} runs backwards")));
                    }
                    (lo..=hi).for_each(|c| set.insert(c));
                }
                None => set.insert(num(part)?),
            }
        }
        Ok(set)
    }

    /// The CPUs this process may run on now (`sched_getaffinity`;
    /// `GetProcessAffinityMask` on Windows).
    #[cfg(windows)]
    pub fn current() -> Result<Self> {
        Ok(CpuSet::from_mask(crate::windows::own_affinity_mask()?))
    }

    /// The CPUs of a Windows affinity mask (one processor group).
    #[cfg(windows)]
    pub(crate) fn from_mask(mask: usize) -> CpuSet {
        let mut out = CpuSet::new();
        for cpu in 0..usize::BITS as usize {
            if mask & (1 << cpu) != 0 {
                out.insert(cpu);
            }
        }
        out
    }

    /// The Windows affinity mask of these CPUs: an error for a CPU beyond
    /// the 64 of one processor group.
    #[cfg(windows)]
    pub(crate) fn to_mask(self) -> Result<usize> {
        let mut mask = 0usize;
        for cpu in self.iter() {
            if cpu >= usize::BITS as usize {
                return Err(Error::InvalidInput {
                    what: "affinity",
                    reason: format!("CPU {cpu} is beyond the 64 of one processor group"),
                });
            }
            mask |= 1 << cpu;
        }
        Ok(mask)
    }

    /// The CPUs this process may run on now (`sched_getaffinity`).
    #[cfg(target_os = "linux")]
    pub fn current() -> Result<Self> {
        let set = rustix::thread::sched_getaffinity(None)
            .map_err(|e| Error::os("sched_getaffinity of this process", e.into()))?;
        let mut out = CpuSet::new();
        for cpu in 0..MAX_CPUS {
            if set.is_set(cpu) {
                out.insert(cpu);
            }
        }
        Ok(out)
    }
}

impl FromStr for CpuSet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        CpuSet::parse_list(s)
    }
}

/// Prints the kernel list format: `0-3,5`; the empty set prints as nothing.
impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut cpus = self.iter().peekable();
        while let Some(start) = cpus.next() {
            let mut end = start;
            while cpus.peek() == Some(&(end + 1)) {
                end = cpus.next().unwrap_or(end);
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if end == start {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuSet({self})")
    }
}

impl serde::Serialize for CpuSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CpuSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CpuSet::parse_list(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_kernel_lists() {
        for text in ["0", "0-3,5", "1,3,5-7", "0-1023"] {
            assert_eq!(CpuSet::parse_list(text).unwrap().to_string(), text);
        }
        assert_eq!(CpuSet::parse_list("3,0,1,2").unwrap().to_string(), "0-3");
        assert_eq!(CpuSet::parse_list("0-3,5").unwrap().len(), 5);
    }

    #[test]
    fn rejects_bad_lists() {
        for text in ["", "a", "3-1", "1024", "1,,2", "-1"] {
            let err = CpuSet::parse_list(text).unwrap_err();
            assert!(
                matches!(err, Error::InvalidCpuList { .. }),
                "{text:?} gave {err}"
            );
        }
    }
}
