//! The node's own entry of the summary, read from the host the way cAdvisor's root container
//! sees it: `/proc/stat` (boot time, CPU), `/proc/meminfo` and `/proc/vmstat` (memory),
//! `statvfs` of the kubelet's filesystem, `/proc/sys/kernel/pid_max` and the pids in `/proc`
//! (rlimit).
//!
//! `usageNanoCores` is a rate, so it needs two samples: the previous one is kept in a
//! process-wide slot and the first request after start leaves the field out, as upstream does
//! until its cache has two points.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::types::{format_time, CpuStats, FsStats, MemoryStats, NodeStats, RlimitStats};

/// `USER_HZ`: the unit of `/proc/stat`'s CPU columns, 100 on every Linux architecture the
/// kubelet runs on.
const USER_HZ: u64 = 100;
const NANOS_PER_TICK: u64 = 1_000_000_000 / USER_HZ;

/// What the summary takes from `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcStat {
    /// `btime`: seconds since the epoch at boot.
    pub boot_time: Option<i64>,
    /// The aggregate `cpu` line's non-idle time, in core-nanoseconds.
    pub usage_core_nano_seconds: Option<u64>,
}

/// Parses `/proc/stat`. Non-idle time is user + nice + system + irq + softirq + steal: idle
/// and iowait are not use, and guest time is already part of user time.
pub fn parse_proc_stat(text: &str) -> ProcStat {
    let mut stat = ProcStat::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("cpu") => {
                let ticks: Vec<u64> = words.map_while(|w| w.parse().ok()).collect();
                if ticks.len() >= 4 {
                    let busy: u64 = [0, 1, 2, 5, 6, 7]
                        .iter()
                        .filter_map(|&i| ticks.get(i))
                        .sum();
                    stat.usage_core_nano_seconds = busy.checked_mul(NANOS_PER_TICK);
                }
            }
            Some("btime") => stat.boot_time = words.next().and_then(|w| w.parse().ok()),
            _ => {}
        }
    }
    stat
}

/// What the summary takes from `/proc/meminfo`, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MemInfo {
    pub total: Option<u64>,
    pub free: Option<u64>,
    pub available: Option<u64>,
    pub anon: Option<u64>,
}

/// Parses `/proc/meminfo` (`Key:   <n> kB` lines).
pub fn parse_meminfo(text: &str) -> MemInfo {
    let mut info = MemInfo::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let Some(value) = words.next().and_then(|w| w.parse::<u64>().ok()) else {
            continue;
        };
        let bytes = match words.next() {
            Some("kB") => value.checked_mul(1024),
            _ => Some(value),
        };
        match key {
            "MemTotal" => info.total = bytes,
            "MemFree" => info.free = bytes,
            "MemAvailable" => info.available = bytes,
            "AnonPages" => info.anon = bytes,
            _ => {}
        }
    }
    info
}

/// `pgfault` and `pgmajfault` from `/proc/vmstat`.
pub fn parse_vmstat(text: &str) -> (Option<u64>, Option<u64>) {
    let (mut faults, mut major) = (None, None);
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("pgfault", n)) => faults = n.trim().parse().ok(),
            Some(("pgmajfault", n)) => major = n.trim().parse().ok(),
            _ => {}
        }
    }
    (faults, major)
}

/// Memory as cAdvisor reports the root container: the working set is what cannot be
/// reclaimed easily (total - available), usage includes the page cache (total - free).
pub fn memory_stats(info: &MemInfo, faults: (Option<u64>, Option<u64>), time: &str) -> MemoryStats {
    MemoryStats {
        time: time.to_string(),
        available_bytes: info.available,
        usage_bytes: info.total.zip(info.free).map(|(t, f)| t.saturating_sub(f)),
        working_set_bytes: info
            .total
            .zip(info.available)
            .map(|(t, a)| t.saturating_sub(a)),
        rss_bytes: info.anon,
        page_faults: faults.0,
        major_page_faults: faults.1,
    }
}

/// The average use, in core-nanoseconds per second, between two cumulative readings taken
/// `elapsed` apart; `None` when there is no window or the counter went back.
pub fn usage_nano_cores(previous: u64, current: u64, elapsed: Duration) -> Option<u64> {
    let window = elapsed.as_nanos();
    if window == 0 {
        return None;
    }
    let used = u128::from(current.checked_sub(previous)?);
    u64::try_from(used * 1_000_000_000 / window).ok()
}

/// The previous node CPU reading: when it was taken, and the cumulative usage then.
static LAST_CPU_SAMPLE: Mutex<Option<(Instant, u64)>> = Mutex::new(None);

/// Records this reading and returns the rate since the previous one.
fn sample_cpu(usage: u64) -> Option<u64> {
    let now = Instant::now();
    let mut last = LAST_CPU_SAMPLE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let rate = last.and_then(|(at, previous)| usage_nano_cores(previous, usage, now - at));
    *last = Some((now, usage));
    rate
}

/// The filesystem holding `path`, from `statvfs`.
pub fn fs_stats(path: &Path, time: &str) -> Option<FsStats> {
    let vfs = rustix::fs::statvfs(path).ok()?;
    let block = vfs.f_frsize;
    Some(FsStats {
        time: time.to_string(),
        available_bytes: vfs.f_bavail.checked_mul(block),
        capacity_bytes: vfs.f_blocks.checked_mul(block),
        used_bytes: vfs.f_blocks.saturating_sub(vfs.f_bfree).checked_mul(block),
        inodes_free: Some(vfs.f_ffree),
        inodes: Some(vfs.f_files),
        inodes_used: Some(vfs.f_files.saturating_sub(vfs.f_ffree)),
    })
}

/// `pid_max`, and how many processes exist (the numeric entries of `/proc`).
fn rlimit_stats(time: &str) -> RlimitStats {
    let maxpid = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let curproc = std::fs::read_dir("/proc").ok().map(|entries| {
        let count = entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
            })
            .count();
        i64::try_from(count).unwrap_or(i64::MAX)
    });
    RlimitStats {
        time: time.to_string(),
        maxpid,
        curproc,
    }
}

/// The node's entry; `fs_root` is a path on the filesystem the kubelet keeps its data on.
/// Anything the host does not give is left out rather than failing the whole summary.
pub fn node_stats(node_name: &str, fs_root: &Path, now: DateTime<Utc>) -> NodeStats {
    let time = format_time(now);
    let stat = std::fs::read_to_string("/proc/stat")
        .map(|text| parse_proc_stat(&text))
        .unwrap_or_default();
    let start_time = stat
        .boot_time
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .map_or_else(|| time.clone(), format_time);
    let cpu = stat.usage_core_nano_seconds.map(|usage| CpuStats {
        time: time.clone(),
        usage_nano_cores: sample_cpu(usage),
        usage_core_nano_seconds: Some(usage),
    });
    let memory = std::fs::read_to_string("/proc/meminfo").ok().map(|text| {
        let faults = std::fs::read_to_string("/proc/vmstat")
            .map(|v| parse_vmstat(&v))
            .unwrap_or_default();
        memory_stats(&parse_meminfo(&text), faults, &time)
    });
    NodeStats {
        node_name: node_name.to_string(),
        system_containers: Vec::new(),
        start_time,
        cpu,
        memory,
        fs: fs_stats(fs_root, &time),
        runtime: None,
        rlimit: Some(rlimit_stats(&time)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_STAT: &str = "\
cpu  100 20 30 4000 50 6 7 8 9 10
cpu0 50 10 15 2000 25 3 3 4 4 5
intr 12345 0 0
ctxt 987654
btime 1700000000
processes 4242
procs_running 2
";

    #[test]
    fn proc_stat_gives_boot_time_and_busy_time() {
        let stat = parse_proc_stat(PROC_STAT);
        assert_eq!(stat.boot_time, Some(1_700_000_000));
        // user + nice + system + irq + softirq + steal = 100 + 20 + 30 + 6 + 7 + 8 ticks.
        assert_eq!(stat.usage_core_nano_seconds, Some(171 * 10_000_000));
    }

    #[test]
    fn proc_stat_without_the_lines_gives_nothing() {
        assert_eq!(parse_proc_stat("intr 1\nctxt 2\n"), ProcStat::default());
        assert_eq!(
            parse_proc_stat("cpu  x y z\nbtime nope\n"),
            ProcStat::default()
        );
    }

    #[test]
    fn proc_stat_with_old_kernels_short_cpu_line() {
        // Kernels before 2.6.11 stop after irq/softirq; the missing steal counts as 0.
        let stat = parse_proc_stat("cpu 1 2 3 4 5 6 7\n");
        assert_eq!(stat.usage_core_nano_seconds, Some(19 * 10_000_000));
    }

    const MEMINFO: &str = "\
MemTotal:        8000000 kB
MemFree:         1000000 kB
MemAvailable:    5000000 kB
Buffers:          200000 kB
Cached:          3000000 kB
AnonPages:       2500000 kB
HugePages_Total:       0
";

    #[test]
    fn meminfo_and_vmstat_make_the_memory_entry() {
        let info = parse_meminfo(MEMINFO);
        assert_eq!(info.total, Some(8_000_000 * 1024));
        assert_eq!(info.anon, Some(2_500_000 * 1024));
        let faults = parse_vmstat("pgpgin 1\npgfault 123456\npgmajfault 789\npgfree 5\n");
        assert_eq!(faults, (Some(123_456), Some(789)));
        let memory = memory_stats(&info, faults, "2026-01-01T00:00:00Z");
        assert_eq!(memory.available_bytes, Some(5_000_000 * 1024));
        assert_eq!(memory.usage_bytes, Some(7_000_000 * 1024));
        assert_eq!(memory.working_set_bytes, Some(3_000_000 * 1024));
        assert_eq!(memory.rss_bytes, Some(2_500_000 * 1024));
        assert_eq!(memory.page_faults, Some(123_456));
        assert_eq!(memory.major_page_faults, Some(789));
    }

    #[test]
    fn meminfo_missing_available_leaves_working_set_out() {
        let info = parse_meminfo("MemTotal: 100 kB\nMemFree: 50 kB\ngarbage\n");
        let memory = memory_stats(&info, (None, None), "t");
        assert_eq!(memory.usage_bytes, Some(50 * 1024));
        assert_eq!(memory.working_set_bytes, None);
        assert_eq!(memory.available_bytes, None);
        assert_eq!(memory.page_faults, None);
    }

    #[test]
    fn nano_cores_is_the_rate_between_two_readings() {
        // Half a core over two seconds.
        assert_eq!(
            usage_nano_cores(1_000_000_000, 2_000_000_000, Duration::from_secs(2)),
            Some(500_000_000)
        );
        assert_eq!(usage_nano_cores(5, 5, Duration::from_secs(1)), Some(0));
        assert_eq!(usage_nano_cores(10, 5, Duration::from_secs(1)), None);
        assert_eq!(usage_nano_cores(1, 5, Duration::ZERO), None);
    }

    #[test]
    fn fs_stats_of_the_root_filesystem() {
        let Some(fs) = fs_stats(Path::new("/"), "t") else {
            panic!("statvfs of / failed");
        };
        let (Some(capacity), Some(available), Some(inodes), Some(free)) = (
            fs.capacity_bytes,
            fs.available_bytes,
            fs.inodes,
            fs.inodes_free,
        ) else {
            panic!("fields missing: {fs:?}");
        };
        assert!(available <= capacity);
        assert_eq!(fs.inodes_used, Some(inodes - free));
        assert!(fs_stats(Path::new("/no/such/dir/anywhere"), "t").is_none());
    }

    #[test]
    fn node_stats_from_this_host() {
        let node = node_stats("node-a", Path::new("/"), Utc::now());
        assert_eq!(node.node_name, "node-a");
        let Some(rlimit) = node.rlimit else {
            panic!("no rlimit");
        };
        assert!(rlimit.maxpid.is_some_and(|m| m > 0));
        assert!(rlimit.curproc.is_some_and(|c| c > 0));
        assert!(node
            .cpu
            .is_some_and(|c| c.usage_core_nano_seconds.is_some()));
        assert!(node.memory.is_some_and(|m| m.working_set_bytes.is_some()));
        assert!(DateTime::parse_from_rfc3339(&node.start_time).is_ok());
    }
}
