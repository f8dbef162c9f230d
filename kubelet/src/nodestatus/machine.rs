//! The machine a node runs on, as upstream reads it through cAdvisor: logical CPUs, memory from
//! `/proc/meminfo`, the filesystem holding the kubelet's root dir (ephemeral-storage), hugepage
//! pools, the machine/system/boot IDs, the kernel release and the OS image; and the simulated
//! machine hollow nodes report instead.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

use crate::resources::{self, ResourceList};

/// What the node status needs to know about the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineInfo {
    pub num_cores: u64,
    /// Bytes.
    pub memory_capacity: u64,
    /// Bytes of the filesystem holding the root dir.
    pub ephemeral_storage_capacity: u64,
    /// (page size in bytes, number of pages) per hugepage pool.
    pub hugepages: Vec<(u64, u64)>,
    pub swap_capacity: u64,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
}

/// `key:   123 kB` from /proc/meminfo, in bytes.
pub fn meminfo_bytes(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        if name.trim() != key {
            return None;
        }
        let mut parts = rest.split_whitespace();
        let n: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") => n.checked_mul(1024),
            None => Some(n),
            Some(_) => None,
        }
    })
}

/// `PRETTY_NAME` from an os-release file, unquoted.
pub fn os_release_pretty_name(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.trim().strip_prefix("PRETTY_NAME=")?;
        let value = value.trim();
        let unquoted = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        Some(unquoted.to_string())
    })
}

/// The number of CPUs in a kernel CPU list (`0-3,8,10-11` -> 7).
pub fn count_cpu_list(text: &str) -> Option<u64> {
    let mut n = 0u64;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                n += b.checked_sub(a)? + 1;
            }
            None => {
                part.trim().parse::<u64>().ok()?;
                n += 1;
            }
        }
    }
    (n > 0).then_some(n)
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The host's boot ID (for deriving simulated ones).
pub fn host_boot_id() -> String {
    read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default()
}

fn hugepage_pools() -> Vec<(u64, u64)> {
    let Ok(dir) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut pools: Vec<(u64, u64)> = dir
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let count = std::fs::read_to_string(entry.path().join("nr_hugepages"))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            Some((kb.checked_mul(1024)?, count))
        })
        .collect();
    pools.sort();
    pools
}

impl MachineInfo {
    /// Reads the host. `root_dir` must exist (its filesystem is ephemeral-storage).
    pub fn host(root_dir: &Path) -> Result<MachineInfo, String> {
        let num_cores = read_trimmed("/sys/devices/system/cpu/online")
            .and_then(|t| count_cpu_list(&t))
            .or_else(|| {
                std::thread::available_parallelism()
                    .ok()
                    .map(|n| n.get() as u64)
            })
            .ok_or("cannot count the CPUs")?;
        let meminfo = std::fs::read_to_string("/proc/meminfo")
            .map_err(|err| format!("reading /proc/meminfo: {err}"))?;
        let memory_capacity =
            meminfo_bytes(&meminfo, "MemTotal").ok_or("/proc/meminfo has no MemTotal")?;
        let swap_capacity = meminfo_bytes(&meminfo, "SwapTotal").unwrap_or(0);
        let fs = rustix::fs::statvfs(root_dir).map_err(|err| {
            format!(
                "cannot measure the filesystem of the root dir {}: {err}",
                root_dir.display()
            )
        })?;
        let uname = rustix::system::uname();
        Ok(MachineInfo {
            num_cores,
            memory_capacity,
            ephemeral_storage_capacity: fs.f_blocks.saturating_mul(fs.f_frsize),
            hugepages: hugepage_pools(),
            swap_capacity,
            machine_id: read_trimmed("/etc/machine-id")
                .or_else(|| read_trimmed("/var/lib/dbus/machine-id"))
                .unwrap_or_default(),
            system_uuid: read_trimmed("/sys/class/dmi/id/product_uuid").unwrap_or_default(),
            boot_id: host_boot_id(),
            kernel_version: uname.release().to_string_lossy().into_owned(),
            os_image: std::fs::read_to_string("/etc/os-release")
                .ok()
                .and_then(|t| os_release_pretty_name(&t))
                .unwrap_or_else(|| "Linux".to_string()),
        })
    }

    /// A plausible machine for hollow node `name`: 4 CPUs, 16Gi of memory, 100Gi of disk, no
    /// hugepages; IDs derived from the name (stable across restarts) and, for the boot ID, from
    /// the host's boot too. Kernel and OS are the host's.
    pub fn hollow(name: &str, host: &HostIdentity) -> MachineInfo {
        let gib = 1024 * 1024 * 1024;
        MachineInfo {
            num_cores: 4,
            memory_capacity: 16 * gib,
            ephemeral_storage_capacity: 100 * gib,
            hugepages: vec![(2 * 1024 * 1024, 0), (gib, 0)],
            swap_capacity: 0,
            machine_id: hex_id(&[name, "machine-id"]),
            system_uuid: uuid_form(&hex_id(&[name, "system-uuid"])),
            boot_id: uuid_form(&hex_id(&[name, &host.boot_id])),
            kernel_version: host.kernel_version.clone(),
            os_image: host.os_image.clone(),
        }
    }

    /// Capacity, with `max_pods` pods: cpu, memory, ephemeral-storage, pods, hugepages-*.
    pub fn capacity(&self, max_pods: u32) -> ResourceList {
        let mut list = ResourceList::new();
        list.insert(resources::CPU.into(), resources::units(self.num_cores));
        list.insert(
            resources::MEMORY.into(),
            resources::units(self.memory_capacity),
        );
        list.insert(
            resources::EPHEMERAL_STORAGE.into(),
            resources::units(self.ephemeral_storage_capacity),
        );
        list.insert(
            resources::PODS.into(),
            resources::units(u64::from(max_pods)),
        );
        for (size, count) in &self.hugepages {
            list.insert(
                resources::hugepage_resource_name(*size),
                resources::units(size.saturating_mul(*count)),
            );
        }
        list
    }
}

/// What hollow machines borrow from the host.
#[derive(Clone, Debug, Default)]
pub struct HostIdentity {
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
}

impl HostIdentity {
    pub fn read() -> HostIdentity {
        HostIdentity {
            boot_id: host_boot_id(),
            kernel_version: rustix::system::uname()
                .release()
                .to_string_lossy()
                .into_owned(),
            os_image: std::fs::read_to_string("/etc/os-release")
                .ok()
                .and_then(|t| os_release_pretty_name(&t))
                .unwrap_or_else(|| "Linux".to_string()),
        }
    }
}

/// 32 hex digits derived from `parts` (deterministic).
fn hex_id(parts: &[&str]) -> String {
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        parts.hash(&mut h);
        h.finish()
    };
    format!("{:016x}{:016x}", half(1), half(2))
}

/// 8-4-4-4-12.
fn uuid_form(hex: &str) -> String {
    let get = |a: usize, b: usize| hex.get(a..b).unwrap_or("0");
    format!(
        "{}-{}-{}-{}-{}",
        get(0, 8),
        get(8, 12),
        get(12, 16),
        get(16, 20),
        get(20, 32)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_files_parse() {
        let meminfo = "MemTotal:       16318800 kB\nMemFree:         1000 kB\nMemAvailable:   8000000 kB\nHugePages_Total:       0\n";
        assert_eq!(meminfo_bytes(meminfo, "MemTotal"), Some(16318800 * 1024));
        assert_eq!(meminfo_bytes(meminfo, "MemAvailable"), Some(8000000 * 1024));
        assert_eq!(meminfo_bytes(meminfo, "HugePages_Total"), Some(0));
        assert_eq!(meminfo_bytes(meminfo, "SwapTotal"), None);
        let os = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            os_release_pretty_name(os).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            os_release_pretty_name("PRETTY_NAME=Plain").as_deref(),
            Some("Plain")
        );
        assert_eq!(count_cpu_list("0-3,8,10-11\n"), Some(7));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("x"), None);
    }

    #[test]
    fn the_host_is_readable_here() {
        let dir = tempfile::tempdir().unwrap();
        let m = MachineInfo::host(dir.path()).unwrap();
        assert!(m.num_cores >= 1);
        assert!(m.memory_capacity > 0);
        assert!(m.ephemeral_storage_capacity > 0);
        assert!(!m.kernel_version.is_empty());
        let cap = resources::format_list(&m.capacity(110));
        assert_eq!(cap["pods"], "110");
        assert!(cap.contains_key("ephemeral-storage"));
    }

    #[test]
    fn hollow_machines_are_plausible_and_distinct() {
        let host = HostIdentity {
            boot_id: "b".into(),
            kernel_version: "6.1.0".into(),
            os_image: "Debian".into(),
        };
        let a = MachineInfo::hollow("h-0", &host);
        let b = MachineInfo::hollow("h-1", &host);
        assert_ne!(a.machine_id, b.machine_id);
        assert_ne!(a.system_uuid, b.system_uuid);
        assert_eq!(a, MachineInfo::hollow("h-0", &host), "stable");
        assert_eq!(a.machine_id.len(), 32);
        assert_eq!(a.system_uuid.len(), 36);
        let cap = resources::format_list(&a.capacity(110));
        assert_eq!(cap["cpu"], "4");
        assert_eq!(cap["memory"], "16Gi");
        assert_eq!(cap["ephemeral-storage"], "100Gi");
        assert_eq!(cap["hugepages-2Mi"], "0");
        assert_eq!(cap["hugepages-1Gi"], "0");
    }
}
