//! Windows priority classes and their Linux meaning.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A Windows process priority class (`SetPriorityClass`).
///
/// | class          | Linux                       |
/// |----------------|-----------------------------|
/// | `Idle`         | nice 19                     |
/// | `BelowNormal`  | nice 10                     |
/// | `Normal`       | nice 0                      |
/// | `AboveNormal`  | nice -5                     |
/// | `High`         | nice -10                    |
/// | `Realtime`     | `SCHED_RR`, priority 1 (needs `CAP_SYS_NICE` or `RLIMIT_RTPRIO`) |
///
/// Raising priority above the current nice value needs `CAP_SYS_NICE` (or
/// `RLIMIT_NICE`); the spawn fails with a permission error otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PriorityClass {
    /// `IDLE_PRIORITY_CLASS`.
    Idle,
    /// `BELOW_NORMAL_PRIORITY_CLASS`.
    BelowNormal,
    /// `NORMAL_PRIORITY_CLASS`.
    Normal,
    /// `ABOVE_NORMAL_PRIORITY_CLASS`.
    AboveNormal,
    /// `HIGH_PRIORITY_CLASS`.
    High,
    /// `REALTIME_PRIORITY_CLASS`.
    Realtime,
}

impl PriorityClass {
    /// All classes, lowest first.
    pub const ALL: [PriorityClass; 6] = [
        PriorityClass::Idle,
        PriorityClass::BelowNormal,
        PriorityClass::Normal,
        PriorityClass::AboveNormal,
        PriorityClass::High,
        PriorityClass::Realtime,
    ];

    /// The nice value this class maps to (`Realtime` runs at nice 0 under `SCHED_RR`).
    pub const fn nice(self) -> i32 {
        match self {
            PriorityClass::Idle => 19,
            PriorityClass::BelowNormal => 10,
            PriorityClass::Normal => 0,
            PriorityClass::AboveNormal => -5,
            PriorityClass::High => -10,
            PriorityClass::Realtime => 0,
        }
    }

    /// Whether the class needs a real-time scheduling policy.
    pub const fn is_realtime(self) -> bool {
        matches!(self, PriorityClass::Realtime)
    }

    /// The class whose nice value is nearest `nice` (for reporting).
    pub fn from_nice(nice: i32) -> Self {
        match nice {
            15.. => PriorityClass::Idle,
            5..=14 => PriorityClass::BelowNormal,
            -2..=4 => PriorityClass::Normal,
            -7..=-3 => PriorityClass::AboveNormal,
            _ => PriorityClass::High,
        }
    }

    /// The kebab-case name used on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            PriorityClass::Idle => "idle",
            PriorityClass::BelowNormal => "below-normal",
            PriorityClass::Normal => "normal",
            PriorityClass::AboveNormal => "above-normal",
            PriorityClass::High => "high",
            PriorityClass::Realtime => "realtime",
        }
    }
}

impl fmt::Display for PriorityClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PriorityClass {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        PriorityClass::ALL
            .into_iter()
            .find(|c| c.name() == wanted)
            .ok_or_else(|| Error::InvalidInput {
                what: "priority class",
                reason: format!(
                    "{s:?}; expected one of idle, below-normal, normal, above-normal, high, realtime"
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for class in PriorityClass::ALL {
            assert_eq!(class.name().parse::<PriorityClass>().unwrap(), class);
        }
        assert_eq!(
            "BELOW_NORMAL".parse::<PriorityClass>().unwrap(),
            PriorityClass::BelowNormal
        );
        assert!("urgent".parse::<PriorityClass>().is_err());
    }

    #[test]
    fn nice_values_invert() {
        for class in PriorityClass::ALL.into_iter().filter(|c| !c.is_realtime()) {
            assert_eq!(PriorityClass::from_nice(class.nice()), class);
        }
    }
}
