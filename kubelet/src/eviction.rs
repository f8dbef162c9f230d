//! Hard eviction thresholds (`evictionHard`, `--eviction-hard`): parsing them as upstream's
//! `ParseThresholdConfig` does, what they hold back from node allocatable, and the node
//! pressure they imply.
//!
//! There is no eviction manager yet (nothing evicts pods); what is here is what the node's
//! status needs: the `MemoryPressure`, `DiskPressure` and `PIDPressure` conditions, observed
//! from the host each time the status is computed. Upstream measures `memory.available` as
//! capacity minus the root cgroup's working set; here it is the kernel's `MemAvailable`, which
//! tracks the same thing closely without reading cgroups. Upstream's pressure transition period
//! (a condition stays True for 5 minutes after the signal clears) is not modelled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use apimachinery::quantity::Quantity;

use crate::resources::{EPHEMERAL_STORAGE, MEMORY};

/// The eviction signals upstream accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Signal {
    MemoryAvailable,
    AllocatableMemoryAvailable,
    NodeFsAvailable,
    NodeFsInodesFree,
    ImageFsAvailable,
    ImageFsInodesFree,
    ContainerFsAvailable,
    ContainerFsInodesFree,
    PidAvailable,
}

impl Signal {
    pub fn parse(name: &str) -> Option<Signal> {
        Some(match name {
            "memory.available" => Signal::MemoryAvailable,
            "allocatableMemory.available" => Signal::AllocatableMemoryAvailable,
            "nodefs.available" => Signal::NodeFsAvailable,
            "nodefs.inodesFree" => Signal::NodeFsInodesFree,
            "imagefs.available" => Signal::ImageFsAvailable,
            "imagefs.inodesFree" => Signal::ImageFsInodesFree,
            "containerfs.available" => Signal::ContainerFsAvailable,
            "containerfs.inodesFree" => Signal::ContainerFsInodesFree,
            "pid.available" => Signal::PidAvailable,
            _ => return None,
        })
    }

    /// The node resource a hard threshold on this signal holds back from allocatable.
    pub fn reserved_resource(self) -> Option<&'static str> {
        match self {
            Signal::MemoryAvailable => Some(MEMORY),
            Signal::NodeFsAvailable => Some(EPHEMERAL_STORAGE),
            _ => None,
        }
    }
}

/// A threshold's value: an absolute quantity or a fraction of capacity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThresholdValue {
    /// Nano-units (bytes, inodes or pids times 10^9).
    Quantity(i128),
    /// 0.0 ..= 1.0.
    Percentage(f64),
}

impl ThresholdValue {
    /// The threshold as an amount of `capacity` (both in nano-units), as upstream's
    /// `GetThresholdQuantity`: a percentage of the whole-unit capacity, truncated.
    pub fn amount(self, capacity: i128) -> i128 {
        match self {
            ThresholdValue::Quantity(q) => q,
            ThresholdValue::Percentage(p) => {
                let units = (capacity + 999_999_999).div_euclid(1_000_000_000);
                // f64 as upstream computes it; truncation toward zero as Go's int64().
                let amount = (units as f64 * p) as i128;
                amount * 1_000_000_000
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    pub signal: Signal,
    pub value: ThresholdValue,
}

/// Upstream's Linux defaults for `evictionHard`.
pub fn default_eviction_hard() -> BTreeMap<String, String> {
    [
        ("memory.available", "100Mi"),
        ("nodefs.available", "10%"),
        ("nodefs.inodesFree", "5%"),
        ("imagefs.available", "15%"),
        ("imagefs.inodesFree", "5%"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Parses `signal -> value` thresholds (`10%`, `100Mi`); `0%` and `100%` disable a signal, as
/// upstream.
pub fn parse_thresholds(map: &BTreeMap<String, String>) -> Result<Vec<Threshold>, String> {
    let mut out = Vec::new();
    for (name, value) in map {
        let signal =
            Signal::parse(name).ok_or_else(|| format!("unsupported eviction signal {name}"))?;
        let value = value.trim();
        if let Some(percent) = value.strip_suffix('%') {
            if value == "0%" || value == "100%" {
                continue;
            }
            let p: f64 = percent
                .parse()
                .map_err(|_| format!("invalid percentage {value:?} for eviction signal {name}"))?;
            if p < 0.0 {
                return Err(format!(
                    "eviction percentage threshold {name} must be >= 0%: {value}"
                ));
            }
            if p > 100.0 {
                return Err(format!(
                    "eviction percentage threshold {name} must be <= 100%: {value}"
                ));
            }
            out.push(Threshold {
                signal,
                value: ThresholdValue::Percentage(p / 100.0),
            });
            continue;
        }
        let q = Quantity::parse(value)
            .map_err(|err| format!("invalid eviction threshold {name}={value:?}: {err}"))?;
        if q.nanos() <= 0 {
            return Err(format!(
                "eviction threshold {name} must be positive: {value}"
            ));
        }
        out.push(Threshold {
            signal,
            value: ThresholdValue::Quantity(q.nanos()),
        });
    }
    Ok(out)
}

/// Splits `--eviction-hard`'s `memory.available<100Mi,nodefs.available<10%` into a map.
pub fn parse_threshold_flag(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((signal, value)) = part.split_once('<') else {
            return Err(format!(
                "--eviction-hard: {part:?} is not in signal<value form (e.g. memory.available<100Mi)"
            ));
        };
        map.insert(signal.trim().to_string(), value.trim().to_string());
    }
    Ok(map)
}

/// Which pressure conditions hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
}

/// What a node observes its pressure from: the host, or nothing (simulated machines).
pub trait PressureObserver: Send + Sync {
    fn observe(&self) -> Pressure;
}

/// Simulated machines never run short.
pub struct NoPressure;

impl PressureObserver for NoPressure {
    fn observe(&self) -> Pressure {
        Pressure::default()
    }
}

/// The host's memory, the filesystem holding the root dir, and the pid space, against the hard
/// thresholds.
pub struct HostPressure {
    pub root_dir: PathBuf,
    pub memory_capacity: u64,
    pub thresholds: Vec<Threshold>,
}

/// One observation of the host, in whole units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observations {
    pub memory_available: Option<u64>,
    pub memory_capacity: u64,
    pub nodefs_available: Option<u64>,
    pub nodefs_capacity: Option<u64>,
    pub nodefs_inodes_free: Option<u64>,
    pub nodefs_inodes: Option<u64>,
    pub pid_available: Option<u64>,
    pub pid_max: Option<u64>,
}

impl HostPressure {
    fn observations(&self) -> Observations {
        let memory_available = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| crate::nodestatus::machine::meminfo_bytes(&text, "MemAvailable"));
        let fs = rustix::fs::statvfs(&self.root_dir).ok();
        let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok());
        // /proc/loadavg's fourth field is running/total scheduling entities.
        let pids = std::fs::read_to_string("/proc/loadavg").ok().and_then(|t| {
            t.split_whitespace()
                .nth(3)
                .and_then(|f| f.split_once('/'))
                .and_then(|(_, total)| total.parse::<u64>().ok())
        });
        Observations {
            memory_available,
            memory_capacity: self.memory_capacity,
            nodefs_available: fs.as_ref().map(|s| s.f_bavail.saturating_mul(s.f_frsize)),
            nodefs_capacity: fs.as_ref().map(|s| s.f_blocks.saturating_mul(s.f_frsize)),
            nodefs_inodes_free: fs.as_ref().map(|s| s.f_favail),
            nodefs_inodes: fs.as_ref().map(|s| s.f_files),
            pid_available: pid_max.zip(pids).map(|(max, n)| max.saturating_sub(n)),
            pid_max,
        }
    }
}

impl PressureObserver for HostPressure {
    fn observe(&self) -> Pressure {
        pressure(&self.thresholds, &self.observations())
    }
}

/// Which thresholds are crossed by `obs`. A signal that could not be observed crosses nothing.
pub fn pressure(thresholds: &[Threshold], obs: &Observations) -> Pressure {
    let below = |available: Option<u64>, capacity: Option<u64>, value: ThresholdValue| -> bool {
        let (Some(available), Some(capacity)) = (available, capacity) else {
            return false;
        };
        let limit = value.amount(crate::resources::units(capacity));
        crate::resources::units(available) < limit
    };
    let mut p = Pressure::default();
    for t in thresholds {
        match t.signal {
            Signal::MemoryAvailable | Signal::AllocatableMemoryAvailable => {
                p.memory |= below(obs.memory_available, Some(obs.memory_capacity), t.value);
            }
            Signal::NodeFsAvailable => {
                p.disk |= below(obs.nodefs_available, obs.nodefs_capacity, t.value);
            }
            Signal::NodeFsInodesFree => {
                p.disk |= below(obs.nodefs_inodes_free, obs.nodefs_inodes, t.value);
            }
            Signal::PidAvailable => {
                p.pid |= below(obs.pid_available, obs.pid_max, t.value);
            }
            // The image and container filesystems are the runtime's: observed once a runtime
            // reports its filesystem usage (CRI ImageFsInfo), not from the kubelet's root.
            Signal::ImageFsAvailable
            | Signal::ContainerFsAvailable
            | Signal::ImageFsInodesFree
            | Signal::ContainerFsInodesFree => {}
        }
    }
    p
}

/// Whether `path` is on a filesystem the kubelet can measure (for a clear start-up error).
pub fn check_measurable(path: &Path) -> Result<(), String> {
    rustix::fs::statvfs(path)
        .map(|_| ())
        .map_err(|err| format!("cannot measure the filesystem of {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn thresholds_parse_like_upstream() {
        let t = parse_thresholds(&default_eviction_hard()).unwrap();
        assert_eq!(t.len(), 5);
        let memory = t
            .iter()
            .find(|t| t.signal == Signal::MemoryAvailable)
            .unwrap();
        assert_eq!(
            memory.value,
            ThresholdValue::Quantity(100 * 1024 * 1024 * 1_000_000_000)
        );
        let t = parse_thresholds(&map(&[("nodefs.available", "0%")])).unwrap();
        assert!(t.is_empty(), "0% disables the signal");
        for (bad, want) in [
            (
                ("memory.free", "1Gi"),
                "unsupported eviction signal memory.free",
            ),
            (("memory.available", "-1Gi"), "must be positive"),
            (("nodefs.available", "120%"), "must be <= 100%"),
            (("nodefs.available", "lots"), "invalid eviction threshold"),
        ] {
            let err = parse_thresholds(&map(&[bad])).unwrap_err();
            assert!(err.contains(want), "{bad:?}: {err}");
        }
        let flag = parse_threshold_flag("memory.available<200Mi, nodefs.available<5%").unwrap();
        assert_eq!(
            flag,
            map(&[("memory.available", "200Mi"), ("nodefs.available", "5%")])
        );
        assert!(parse_threshold_flag("memory.available=200Mi").is_err());
    }

    #[test]
    fn pressure_follows_the_thresholds() {
        let t = parse_thresholds(&default_eviction_hard()).unwrap();
        let gib = 1024 * 1024 * 1024;
        let healthy = Observations {
            memory_available: Some(8 * gib),
            memory_capacity: 16 * gib,
            nodefs_available: Some(50 * gib),
            nodefs_capacity: Some(100 * gib),
            nodefs_inodes_free: Some(900_000),
            nodefs_inodes: Some(1_000_000),
            pid_available: Some(4_000_000),
            pid_max: Some(4_194_304),
        };
        assert_eq!(pressure(&t, &healthy), Pressure::default());
        let low_memory = Observations {
            memory_available: Some(50 * 1024 * 1024),
            ..healthy
        };
        assert!(pressure(&t, &low_memory).memory);
        let full_disk = Observations {
            nodefs_available: Some(9 * gib),
            ..healthy
        };
        assert!(pressure(&t, &full_disk).disk);
        let few_inodes = Observations {
            nodefs_inodes_free: Some(40_000),
            ..healthy
        };
        assert!(pressure(&t, &few_inodes).disk);
        // No default pid threshold: only a configured one raises PIDPressure.
        let few_pids = Observations {
            pid_available: Some(10),
            ..healthy
        };
        assert!(!pressure(&t, &few_pids).pid);
        let pid_threshold = parse_thresholds(&map(&[("pid.available", "1k")])).unwrap();
        assert!(pressure(&pid_threshold, &few_pids).pid);
        // What cannot be observed raises nothing.
        let blind = Observations {
            memory_available: None,
            nodefs_available: None,
            ..healthy
        };
        assert_eq!(
            pressure(
                &t,
                &Observations {
                    memory_capacity: 16 * gib,
                    ..blind
                }
            ),
            Pressure::default()
        );
    }
}
