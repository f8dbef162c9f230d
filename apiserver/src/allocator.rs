//! Service ClusterIP and NodePort allocation. Each allocated address or port is one storage key
//! (`/ranges/serviceips/<ip>`, `/ranges/servicenodeports/<port>`) written with create-if-absent,
//! so two concurrent creates can never get the same one, and allocations survive restarts because
//! they live in the store (upstream 1.33 keeps one IPAddress object per allocated IP the same way).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use serde_json::{json, Value};
use storage::{Precondition, Storage};

use crate::errors::{self, ApiResult};

const IP_PREFIX: &str = "/ranges/serviceips/";
const PORT_PREFIX: &str = "/ranges/servicenodeports/";

/// A CIDR such as `10.0.0.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    base: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, bits) = text
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR {text:?}: missing prefix length"))?;
        let base: IpAddr = addr
            .parse()
            .map_err(|_| format!("invalid CIDR {text:?}: bad address"))?;
        let bits: u8 = bits
            .parse()
            .map_err(|_| format!("invalid CIDR {text:?}: bad prefix length"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(format!("invalid CIDR {text:?}: prefix length over {max}"));
        }
        let cidr = Cidr { base, bits };
        Ok(Cidr {
            base: cidr.nth(0),
            bits,
        })
    }

    fn width(&self) -> u32 {
        if self.base.is_ipv4() {
            32
        } else {
            128
        }
    }

    /// Addresses usable for services: the network address is skipped (and the broadcast
    /// address for IPv4), like upstream's allocator.
    pub fn size(&self) -> u128 {
        let host_bits = self.width() - u32::from(self.bits);
        let total = if host_bits >= 128 {
            u128::MAX
        } else {
            1u128 << host_bits
        };
        let reserved = if self.base.is_ipv4() { 2 } else { 1 };
        total.saturating_sub(reserved).min(1 << 20)
    }

    /// The `n`-th address of the range counted from the network address.
    fn nth(&self, n: u128) -> IpAddr {
        let host_bits = self.width() - u32::from(self.bits);
        let mask = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        match self.base {
            IpAddr::V4(v4) => {
                let base = u128::from(u32::from(v4)) & !mask & 0xffff_ffff;
                IpAddr::V4(Ipv4Addr::from((base + (n & mask)) as u32))
            }
            IpAddr::V6(v6) => {
                let base = u128::from(v6) & !mask;
                IpAddr::V6(Ipv6Addr::from(base + (n & mask)))
            }
        }
    }

    /// The first usable address: what the `kubernetes` Service gets.
    pub fn first(&self) -> IpAddr {
        self.nth(1)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                let c = Cidr {
                    base: ip,
                    bits: self.bits,
                };
                c.nth(0) == self.base
            }
            _ => false,
        }
    }
}

/// `30000-32767`.
pub fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = text
        .split_once('-')
        .ok_or_else(|| format!("invalid port range {text:?}"))?;
    let lo: u16 = lo
        .trim()
        .parse()
        .map_err(|_| format!("invalid port range {text:?}"))?;
    let hi: u16 = hi
        .trim()
        .parse()
        .map_err(|_| format!("invalid port range {text:?}"))?;
    if lo == 0 || lo > hi {
        return Err(format!("invalid port range {text:?}"));
    }
    Ok((lo, hi))
}

async fn claim(store: &Arc<dyn Storage>, key: &str, owner: &str) -> ApiResult<bool> {
    let value = serde_json::to_vec(&json!({"owner": owner})).unwrap_or_default();
    match store.create(key, value).await {
        Ok(_) => Ok(true),
        Err(storage::Error::AlreadyExists { .. }) => {
            // Already ours (a retried create, or the bootstrap on restart)?
            match store.get(key).await {
                Ok(Some(kv)) => {
                    let held: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
                    Ok(held.get("owner").and_then(Value::as_str) == Some(owner))
                }
                Ok(None) => Ok(false),
                Err(err) => Err(errors::internal(err)),
            }
        }
        Err(err) => Err(errors::internal(err)),
    }
}

async fn release(store: &Arc<dyn Storage>, key: &str) {
    match store.delete(key, Precondition::None).await {
        Ok(_) | Err(storage::Error::NotFound { .. }) => {}
        Err(err) => tracing::warn!(key, %err, "releasing an allocation failed"),
    }
}

pub async fn reserve_cluster_ip(
    store: &Arc<dyn Storage>,
    ip: IpAddr,
    owner: &str,
) -> ApiResult<()> {
    if claim(store, &format!("{IP_PREFIX}{ip}"), owner).await? {
        Ok(())
    } else {
        Err(errors::invalid_value_message(format!(
            "spec.clusterIPs: Invalid value: [\"{ip}\"]: failed to allocate IP {ip}: provided IP is already allocated"
        )))
    }
}

/// A free address from `range`, claimed for `owner`.
pub async fn allocate_cluster_ip(
    store: &Arc<dyn Storage>,
    range: &Cidr,
    owner: &str,
) -> ApiResult<IpAddr> {
    let size = range.size();
    if size <= 1 {
        return Err(errors::internal("the service IP range is too small"));
    }
    // Start at a random offset so that concurrent creates rarely race for the same key; the
    // first address stays reserved for the `kubernetes` Service.
    let start = uuid::Uuid::new_v4().as_u128() % size;
    for i in 0..size {
        let offset = 1 + (start + i) % size;
        if offset == 1 {
            continue;
        }
        let ip = range.nth(offset);
        if claim(store, &format!("{IP_PREFIX}{ip}"), owner).await? {
            return Ok(ip);
        }
    }
    Err(errors::internal(
        "failed to allocate a serviceIP: range is full",
    ))
}

pub async fn release_cluster_ip(store: &Arc<dyn Storage>, ip: &str) {
    release(store, &format!("{IP_PREFIX}{ip}")).await;
}

pub async fn reserve_node_port(
    store: &Arc<dyn Storage>,
    port: u16,
    range: (u16, u16),
    owner: &str,
) -> ApiResult<()> {
    if port < range.0 || port > range.1 {
        return Err(errors::invalid_value_message(format!(
            "spec.ports[0].nodePort: Invalid value: {port}: provided port is not in the valid range. The range of valid ports is {}-{}",
            range.0, range.1
        )));
    }
    if claim(store, &format!("{PORT_PREFIX}{port}"), owner).await? {
        Ok(())
    } else {
        Err(errors::invalid_value_message(format!(
            "spec.ports[0].nodePort: Invalid value: {port}: provided port is already allocated"
        )))
    }
}

pub async fn allocate_node_port(
    store: &Arc<dyn Storage>,
    range: (u16, u16),
    owner: &str,
) -> ApiResult<u16> {
    let size = u32::from(range.1 - range.0) + 1;
    let start = (uuid::Uuid::new_v4().as_u128() % u128::from(size)) as u32;
    for i in 0..size {
        let port = range.0 as u32 + (start + i) % size;
        let port = port as u16;
        if claim(store, &format!("{PORT_PREFIX}{port}"), owner).await? {
            return Ok(port);
        }
    }
    Err(errors::internal(
        "failed to allocate a nodePort: range is full",
    ))
}

pub async fn release_node_port(store: &Arc<dyn Storage>, port: u16) {
    release(store, &format!("{PORT_PREFIX}{port}")).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_count() {
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        assert_eq!(c.first(), "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(c.size(), 254);
        assert!(c.contains("10.0.0.77".parse().unwrap()));
        assert!(!c.contains("10.0.1.1".parse().unwrap()));
        assert_eq!(
            Cidr::parse("10.96.0.5/12").unwrap().first(),
            "10.96.0.1".parse::<IpAddr>().unwrap()
        );
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        let v6 = Cidr::parse("fd00::/120").unwrap();
        assert_eq!(v6.first(), "fd00::1".parse::<IpAddr>().unwrap());
        assert_eq!(parse_port_range("30000-32767"), Ok((30000, 32767)));
        assert!(parse_port_range("5-1").is_err());
    }

    #[tokio::test]
    async fn concurrent_allocations_never_collide_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let range = Cidr::parse("10.0.0.0/27").unwrap();
        let store: Arc<dyn Storage> = Arc::new(
            storage::embedded::EmbeddedStore::open(storage::embedded::EmbeddedConfig::new(
                dir.path(),
            ))
            .unwrap(),
        );
        let mut tasks = Vec::new();
        for i in 0..29 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                allocate_cluster_ip(&store, &range, &format!("ns/s{i}"))
                    .await
                    .unwrap()
            }));
        }
        let mut seen = std::collections::HashSet::new();
        for t in tasks {
            assert!(
                seen.insert(t.await.unwrap()),
                "an address was handed out twice"
            );
        }
        assert!(!seen.contains(&range.first()));
        assert!(
            allocate_cluster_ip(&store, &range, "ns/full")
                .await
                .is_err(),
            "30 usable, 1 reserved, 29 taken"
        );
        drop(store);
        let store: Arc<dyn Storage> = Arc::new(
            storage::embedded::EmbeddedStore::open(storage::embedded::EmbeddedConfig::new(
                dir.path(),
            ))
            .unwrap(),
        );
        let taken = *seen.iter().next().unwrap();
        assert!(
            reserve_cluster_ip(&store, taken, "ns/other").await.is_err(),
            "allocations survive a restart"
        );
        release_cluster_ip(&store, &taken.to_string()).await;
        reserve_cluster_ip(&store, taken, "ns/other").await.unwrap();
    }
}
