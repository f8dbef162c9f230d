//! The node's addresses, as upstream's `NodeAddress` setter without a cloud provider: the
//! InternalIP(s) from `--node-ip`, else the hostname when it is an IP, else the address of the
//! interface holding the default route (upstream's `ChooseHostInterface`), else the first
//! non-loopback IPv4 address of the host; then the Hostname.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};

use k8s_openapi::api::core::v1::NodeAddress;

/// Upstream's `validateNodeIP` checks that need no interface list.
pub fn validate_node_ip(ip: IpAddr) -> Result<(), String> {
    if ip.is_loopback() {
        return Err(format!("nodeIP {ip} can't be loopback address"));
    }
    if ip.is_multicast() {
        return Err(format!("nodeIP {ip} can't be a multicast address"));
    }
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        return Err(format!("nodeIP {ip} can't be a link-local unicast address"));
    }
    if ip.is_unspecified() {
        return Err(format!("nodeIP {ip} can't be an all zeros address"));
    }
    Ok(())
}

/// The source address the kernel would use for the default route: a connected UDP socket
/// (nothing is sent).
fn default_route_ipv4() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 254), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    validate_node_ip(ip).ok().map(|_| ip)
}

/// Local IPv4 addresses from /proc/net/fib_trie's local table (`|-- a.b.c.d` followed by
/// `/32 host LOCAL`), in table order.
pub fn fib_trie_local_ipv4(text: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(addr) = trimmed.strip_prefix("|-- ") {
            last = addr.trim().parse().ok();
        } else if trimmed.starts_with("/32 host LOCAL") {
            if let Some(ip) = last.take() {
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out
}

/// The first usable non-loopback IPv4 address of the host.
fn first_host_ipv4() -> Option<IpAddr> {
    let text = std::fs::read_to_string("/proc/net/fib_trie").ok()?;
    fib_trie_local_ipv4(&text)
        .into_iter()
        .map(IpAddr::V4)
        .find(|ip| validate_node_ip(*ip).is_ok())
}

/// The node's InternalIP(s): `configured` (from `--node-ip`) when given, else detected.
pub fn node_ips(configured: &[IpAddr], hostname: &str) -> Result<Vec<IpAddr>, String> {
    if !configured.is_empty() {
        return Ok(configured.to_vec());
    }
    if let Ok(ip) = hostname.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    default_route_ipv4()
        .or_else(first_host_ipv4)
        .map(|ip| vec![ip])
        .ok_or_else(|| {
            format!("can't get ip address of node {hostname}: no default route and no non-loopback IPv4 address")
        })
}

/// `status.addresses`: InternalIP(s) then Hostname.
pub fn node_addresses(ips: &[IpAddr], hostname: &str) -> Vec<NodeAddress> {
    let mut out: Vec<NodeAddress> = ips
        .iter()
        .map(|ip| NodeAddress {
            type_: "InternalIP".to_string(),
            address: ip.to_string(),
        })
        .collect();
    out.push(NodeAddress {
        type_: "Hostname".to_string(),
        address: hostname.to_string(),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIB_TRIE: &str = "\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     |-- 192.0.2.0
        /24 link UNICAST
     |-- 192.0.2.2
        /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
           |-- 127.0.0.1
              /32 host LOCAL
     |-- 192.0.2.2
        /32 host LOCAL
     |-- 10.1.0.7
        /32 host LOCAL
";

    #[test]
    fn fib_trie_lists_local_addresses() {
        let ips = fib_trie_local_ipv4(FIB_TRIE);
        assert_eq!(
            ips,
            vec![
                Ipv4Addr::new(127, 0, 0, 1),
                Ipv4Addr::new(192, 0, 2, 2),
                Ipv4Addr::new(10, 1, 0, 7)
            ]
        );
    }

    #[test]
    fn addresses_are_internal_ips_then_hostname() {
        let ips: Vec<IpAddr> = vec!["10.0.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        assert_eq!(node_ips(&ips, "n1").unwrap(), ips);
        let got = node_addresses(&ips, "n1");
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|a| (a.type_.as_str(), a.address.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("InternalIP", "10.0.0.5"),
                ("InternalIP", "fd00::5"),
                ("Hostname", "n1")
            ]
        );
        // A hostname that is an IP is the node's IP.
        assert_eq!(
            node_ips(&[], "10.9.8.7").unwrap(),
            vec!["10.9.8.7".parse::<IpAddr>().unwrap()]
        );
        // Detection finds something non-loopback on any machine with a network.
        let detected = node_ips(&[], "n1").unwrap();
        assert!(!detected[0].is_loopback(), "{detected:?}");
    }

    #[test]
    fn node_ip_validation_matches_upstream() {
        for (ip, want) in [
            ("127.0.0.1", "loopback"),
            ("224.0.0.1", "multicast"),
            ("169.254.1.1", "link-local"),
            ("0.0.0.0", "all zeros"),
            ("fe80::1", "link-local"),
        ] {
            let err = validate_node_ip(ip.parse().unwrap()).unwrap_err();
            assert!(err.contains(want), "{ip}: {err}");
        }
        assert!(validate_node_ip("10.0.0.1".parse().unwrap()).is_ok());
    }
}
