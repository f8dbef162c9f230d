//! Resource amounts as the node reports them: lists of `resource.Quantity` values kept as exact
//! nano-units, the arithmetic of node allocatable (capacity minus system-reserved, kube-reserved
//! and the hard eviction thresholds, never below zero, with hugepages taken out of memory), and
//! upstream's canonical rendering (`16318800Ki`, `3500m`, `110`) so that `kubectl describe node`
//! reads as it does against an upstream kubelet.

use std::collections::BTreeMap;

use apimachinery::quantity::Quantity;

use crate::eviction::Threshold;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const PODS: &str = "pods";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
pub const HUGEPAGES_PREFIX: &str = "hugepages-";

const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// Resource name -> amount in nano-units (1 = `1n`; one byte of memory = 10^9).
pub type ResourceList = BTreeMap<String, i128>;

/// An amount of whole units (bytes, cores, pods) in nano-units.
pub fn units(n: u64) -> i128 {
    i128::from(n) * NANOS_PER_UNIT
}

/// Parses `cpu=200m,memory=500Mi` style maps (from a flag or a file's map) into a list;
/// `what` names the setting in errors.
pub fn parse_resource_list(
    entries: &BTreeMap<String, String>,
    what: &str,
) -> Result<ResourceList, String> {
    let mut list = ResourceList::new();
    for (name, value) in entries {
        let q = Quantity::parse(value)
            .map_err(|err| format!("{what}: invalid quantity {value:?} for {name}: {err}"))?;
        if q.nanos() < 0 {
            return Err(format!(
                "{what}: resource quantity for {name} must not be negative: {value}"
            ));
        }
        list.insert(name.clone(), q.nanos());
    }
    Ok(list)
}

/// Splits `a=1,b=2` into a map (upstream's mapStringString flags); `what` names the flag.
pub fn parse_key_values(text: &str, what: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(format!("{what}: {part:?} is not in key=value form"));
        };
        map.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(map)
}

/// Whether a resource's quantities are powers-of-two sized (BinarySI) when rendered.
fn is_binary(resource: &str) -> bool {
    resource == MEMORY
        || resource == EPHEMERAL_STORAGE
        || resource == "storage"
        || resource.starts_with(HUGEPAGES_PREFIX)
}

/// Renders an amount the way upstream's `Quantity.String()` renders a value of that resource's
/// format: BinarySI for byte amounts (`16Gi`, `16318800Ki`, or plain bytes when not a multiple
/// of 1024), DecimalSI otherwise (`4`, `3500m`, `1k`).
pub fn format_quantity(resource: &str, nanos: i128) -> String {
    if nanos == 0 {
        return "0".to_string();
    }
    if is_binary(resource) && nanos % NANOS_PER_UNIT == 0 {
        let negative = nanos < 0;
        let mut value = (nanos / NANOS_PER_UNIT).unsigned_abs();
        let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        let mut exp = 0;
        while exp + 1 < suffixes.len() && value >= 1024 && value.is_multiple_of(1024) {
            value /= 1024;
            exp += 1;
        }
        let sign = if negative { "-" } else { "" };
        return format!("{sign}{value}{}", suffixes[exp]);
    }
    // DecimalSI (and BinarySI amounts with a fraction, which upstream renders in decimal):
    // the largest power of 1000 that keeps the mantissa whole.
    let negative = nanos < 0;
    let mut value = nanos.unsigned_abs();
    let suffixes = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"];
    let mut exp = 0;
    while exp + 1 < suffixes.len() && value.is_multiple_of(1000) {
        value /= 1000;
        exp += 1;
    }
    let sign = if negative { "-" } else { "" };
    format!("{sign}{value}{}", suffixes[exp])
}

/// Renders a whole list.
pub fn format_list(list: &ResourceList) -> BTreeMap<String, String> {
    list.iter()
        .map(|(name, nanos)| (name.clone(), format_quantity(name, *nanos)))
        .collect()
}

/// What node allocatable holds back from capacity: system-reserved + kube-reserved + the hard
/// eviction thresholds for `memory.available` (-> memory) and `nodefs.available`
/// (-> ephemeral-storage), as upstream's `GetNodeAllocatableReservation`.
pub fn allocatable_reservation(
    capacity: &ResourceList,
    system_reserved: &ResourceList,
    kube_reserved: &ResourceList,
    eviction_hard: &[Threshold],
) -> ResourceList {
    let mut reservation = ResourceList::new();
    for list in [system_reserved, kube_reserved] {
        for (name, amount) in list {
            *reservation.entry(name.clone()).or_insert(0) += amount;
        }
    }
    for threshold in eviction_hard {
        let Some(resource) = threshold.signal.reserved_resource() else {
            continue;
        };
        let Some(cap) = capacity.get(resource) else {
            continue;
        };
        *reservation.entry(resource.to_string()).or_insert(0) += threshold.value.amount(*cap);
    }
    reservation
}

/// Allocatable for every resource in `capacity`: capacity minus its reservation, never
/// negative, and memory further reduced by the hugepages capacity (pre-allocated pages are not
/// available as ordinary memory).
pub fn allocatable(capacity: &ResourceList, reservation: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    for (name, cap) in capacity {
        let reserved = reservation.get(name).copied().unwrap_or(0);
        out.insert(name.clone(), (cap - reserved).max(0));
    }
    let hugepages: i128 = capacity
        .iter()
        .filter(|(name, _)| name.starts_with(HUGEPAGES_PREFIX))
        .map(|(_, amount)| *amount)
        .sum();
    if let Some(memory) = out.get_mut(MEMORY) {
        *memory = (*memory - hugepages).max(0);
    }
    out
}

/// The resource name of a hugepage size in bytes (`2097152` -> `hugepages-2Mi`).
pub fn hugepage_resource_name(page_size_bytes: u64) -> String {
    format!(
        "{HUGEPAGES_PREFIX}{}",
        format_quantity(MEMORY, units(page_size_bytes))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eviction::parse_thresholds;

    fn q(text: &str) -> i128 {
        Quantity::parse(text).unwrap().nanos()
    }

    #[test]
    fn canonical_rendering_matches_upstream() {
        let cases: &[(&str, &str, &str)] = &[
            (MEMORY, "17179869184", "16Gi"),
            (MEMORY, "16710451200", "16318800Ki"),
            (MEMORY, "100Mi", "100Mi"),
            (MEMORY, "1000", "1000"),
            (EPHEMERAL_STORAGE, "93478772582", "93478772582"),
            (CPU, "4", "4"),
            (CPU, "3500m", "3500m"),
            (CPU, "0.1", "100m"),
            (PODS, "110", "110"),
            (PODS, "1000", "1k"),
            (MEMORY, "0", "0"),
            ("hugepages-2Mi", "0", "0"),
            ("example.com/dongle", "3", "3"),
        ];
        for (resource, input, want) in cases {
            assert_eq!(
                format_quantity(resource, q(input)),
                *want,
                "{resource} {input}"
            );
        }
        assert_eq!(hugepage_resource_name(2 * 1024 * 1024), "hugepages-2Mi");
        assert_eq!(hugepage_resource_name(1024 * 1024 * 1024), "hugepages-1Gi");
    }

    #[test]
    fn allocatable_is_capacity_minus_reserved_minus_hard_eviction() {
        let capacity: ResourceList = [
            (CPU, q("4")),
            (MEMORY, q("16Gi")),
            (EPHEMERAL_STORAGE, q("100Gi")),
            (PODS, q("110")),
            ("hugepages-2Mi", q("0")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        // Upstream's defaults: nothing reserved, memory.available<100Mi, nodefs.available<10%.
        let hard = parse_thresholds(&crate::eviction::default_eviction_hard()).unwrap();
        let reservation =
            allocatable_reservation(&capacity, &ResourceList::new(), &ResourceList::new(), &hard);
        let got = format_list(&allocatable(&capacity, &reservation));
        assert_eq!(got[CPU], "4");
        assert_eq!(got[MEMORY], "16284Mi");
        assert_eq!(got[EPHEMERAL_STORAGE], "90Gi");
        assert_eq!(got[PODS], "110");
        assert_eq!(got["hugepages-2Mi"], "0");

        let system = parse_resource_list(
            &parse_key_values("cpu=500m,memory=1Gi", "--system-reserved").unwrap(),
            "systemReserved",
        )
        .unwrap();
        let kube = parse_resource_list(
            &parse_key_values("cpu=250m,memory=512Mi,ephemeral-storage=1Gi", "x").unwrap(),
            "kubeReserved",
        )
        .unwrap();
        let reservation = allocatable_reservation(&capacity, &system, &kube, &hard);
        let got = format_list(&allocatable(&capacity, &reservation));
        assert_eq!(got[CPU], "3250m");
        assert_eq!(got[MEMORY], "14748Mi");
        assert_eq!(got[EPHEMERAL_STORAGE], "89Gi");

        // 10% of a capacity that is not a multiple of 10 KiB leaves plain bytes, as upstream
        // shows on most real disks.
        let disk: ResourceList = [(EPHEMERAL_STORAGE.to_string(), q("101430961Ki"))]
            .into_iter()
            .collect();
        let reservation =
            allocatable_reservation(&disk, &ResourceList::new(), &ResourceList::new(), &hard);
        let got = format_list(&allocatable(&disk, &reservation));
        assert_eq!(got[EPHEMERAL_STORAGE], "93478773658");
    }

    #[test]
    fn allocatable_never_goes_negative_and_hugepages_leave_memory() {
        let capacity: ResourceList = [
            (CPU, q("1")),
            (MEMORY, q("4Gi")),
            ("hugepages-2Mi", q("1Gi")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let reserved: ResourceList = [(CPU.to_string(), q("2"))].into_iter().collect();
        let got = format_list(&allocatable(&capacity, &reserved));
        assert_eq!(got[CPU], "0");
        assert_eq!(got[MEMORY], "3Gi");
        assert_eq!(got["hugepages-2Mi"], "1Gi");
    }

    #[test]
    fn bad_reservations_are_named() {
        let err = parse_resource_list(
            &parse_key_values("cpu=lots", "--kube-reserved").unwrap(),
            "kubeReserved",
        )
        .unwrap_err();
        assert!(
            err.starts_with("kubeReserved: invalid quantity \"lots\" for cpu"),
            "{err}"
        );
        let err = parse_key_values("cpu", "--kube-reserved").unwrap_err();
        assert!(err.contains("key=value"), "{err}");
    }
}
