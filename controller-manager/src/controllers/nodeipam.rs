//! Node IPAM (upstream's range allocator in `pkg/controller/nodeipam`): with
//! `--allocate-node-cidrs`, every node without `spec.podCIDR` gets the next free
//! `/--node-cidr-mask-size` block of `--cluster-cidr`; blocks of nodes that go away are free
//! again. Blocks already on nodes (set by a previous manager, or by hand) are marked used first,
//! so a restart never hands one out twice. IPv4 only; a full range records a `CIDRNotAvailable`
//! Warning event on the node, as upstream.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use client::informer::Event;
use client::Api;
use k8s_openapi::api::core::v1::Node;
use serde_json::json;
use workqueue::Queue;

use crate::framework::{
    reference, run_workers, stop_queue_on_shutdown, warn_event, ControllerContext,
};

/// An IPv4 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    base: u32,
    prefix: u8,
}

impl Cidr {
    pub(crate) fn parse(text: &str) -> Result<Cidr, String> {
        let (ip, prefix) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR address: {text}"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid CIDR address: {text}"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("invalid CIDR address: {text}"))?;
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(Cidr {
            base: u32::from(ip) & mask,
            prefix,
        })
    }

    fn block(&self, mask_size: u8, index: u32) -> Cidr {
        Cidr {
            base: self.base | (index << (32 - u32::from(mask_size))),
            prefix: mask_size,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

/// Which blocks of the cluster range are taken.
#[derive(Debug)]
pub(crate) struct Allocator {
    range: Cidr,
    mask_size: u8,
    used: BTreeSet<u32>,
}

impl Allocator {
    pub(crate) fn new(range: Cidr, mask_size: u8) -> Result<Allocator, String> {
        if mask_size < range.prefix || mask_size > 32 || mask_size - range.prefix > 24 {
            return Err(format!(
                "--node-cidr-mask-size {mask_size} does not fit --cluster-cidr {range}"
            ));
        }
        Ok(Allocator {
            range,
            mask_size,
            used: BTreeSet::new(),
        })
    }

    fn blocks(&self) -> u32 {
        1u32 << (self.mask_size - self.range.prefix)
    }

    /// The block index of `cidr`, when it is one of this range's blocks.
    fn index_of(&self, cidr: &Cidr) -> Option<u32> {
        if cidr.prefix != self.mask_size {
            return None;
        }
        let offset = cidr.base.checked_sub(self.range.base)?;
        let index = offset >> (32 - u32::from(self.mask_size));
        (index < self.blocks()).then_some(index)
    }

    pub(crate) fn occupy(&mut self, cidr: &str) {
        if let Some(index) = Cidr::parse(cidr).ok().and_then(|c| self.index_of(&c)) {
            self.used.insert(index);
        }
    }

    pub(crate) fn release(&mut self, cidr: &str) {
        if let Some(index) = Cidr::parse(cidr).ok().and_then(|c| self.index_of(&c)) {
            self.used.remove(&index);
        }
    }

    pub(crate) fn allocate(&mut self) -> Option<Cidr> {
        let index = (0..self.blocks()).find(|i| !self.used.contains(i))?;
        self.used.insert(index);
        Some(self.range.block(self.mask_size, index))
    }
}

fn pod_cidr(node: &Node) -> Option<String> {
    node.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.clone())
        .filter(|c| !c.is_empty())
}

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    if !ctx.options.allocate_node_cidrs {
        tracing::info!("node-ipam-controller: --allocate-node-cidrs is false, nothing to do");
        return Ok(());
    }
    let range = Cidr::parse(&ctx.options.cluster_cidr)
        .map_err(|err| anyhow::anyhow!("--cluster-cidr: {err}"))?;
    let allocator = Arc::new(Mutex::new(
        Allocator::new(range, ctx.options.node_cidr_mask_size).map_err(anyhow::Error::msg)?,
    ));
    let queue: Queue<String> = Queue::new("node_ipam");
    stop_queue_on_shutdown(ctx, queue.clone());
    let nodes = ctx.factory.informer::<Node>();
    {
        let (q, allocator) = (queue.clone(), allocator.clone());
        nodes.add_event_handler(None, move |event| match event {
            Event::Add(node) | Event::Update { new: node, .. } => match pod_cidr(&node) {
                Some(cidr) => {
                    if let Ok(mut a) = allocator.lock() {
                        a.occupy(&cidr);
                    }
                }
                None => q.add(crate::framework::key_of(node.as_ref())),
            },
            Event::Delete(deleted) => {
                if let Some(cidr) = pod_cidr(deleted.object()) {
                    if let Ok(mut a) = allocator.lock() {
                        a.release(&cidr);
                    }
                }
            }
        });
    }
    let client = ctx.client.clone();
    let recorder = ctx.recorder("node-ipam-controller");
    let synced = nodes.clone();
    run_workers("node-ipam-controller", queue, 1, move |name: String| {
        let (client, nodes, allocator, recorder) = (
            client.clone(),
            synced.clone(),
            allocator.clone(),
            recorder.clone(),
        );
        async move {
            // Every existing block must be known before one is handed out.
            if !nodes.wait_synced().await {
                return Ok(());
            }
            let Some(node) = nodes.store().get(&name) else {
                return Ok(());
            };
            if pod_cidr(&node).is_some() {
                return Ok(());
            }
            // Blocks on nodes the handler has not reported yet are taken too.
            let cidr = allocator.lock().ok().and_then(|mut a| {
                for other in nodes.store().list() {
                    if let Some(taken) = pod_cidr(&other) {
                        a.occupy(&taken);
                    }
                }
                a.allocate()
            });
            let Some(cidr) = cidr else {
                warn_event(
                    &recorder,
                    &reference(node.as_ref()),
                    "CIDRNotAvailable",
                    &format!("Node {name} status is now: CIDRNotAvailable"),
                );
                anyhow::bail!("no pod CIDR left for node {name}");
            };
            let patch =
                json!({"spec": {"podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()]}});
            let api: Api<Node> = client.api(None);
            match api
                .patch(
                    &name,
                    &client::client::PatchParams::default(),
                    &client::client::Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {
                    tracing::info!(node = %name, %cidr, "allocated a pod CIDR");
                    Ok(())
                }
                Err(err) => {
                    if let Ok(mut a) = allocator.lock() {
                        a.release(&cidr.to_string());
                    }
                    if err.is_not_found() {
                        Ok(())
                    } else {
                        Err(err.into())
                    }
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_handed_out_in_order_skipping_taken_ones_and_reused_after_release() {
        let range = Cidr::parse("10.244.0.0/16").unwrap_or(Cidr { base: 0, prefix: 0 });
        let Ok(mut a) = Allocator::new(range, 24) else {
            panic!("a /24 fits a /16")
        };
        a.occupy("10.244.1.0/24");
        a.occupy("192.168.0.0/24"); // not ours: ignored
        let first = a.allocate().map(|c| c.to_string());
        let second = a.allocate().map(|c| c.to_string());
        assert_eq!(first.as_deref(), Some("10.244.0.0/24"));
        assert_eq!(second.as_deref(), Some("10.244.2.0/24"));
        a.release("10.244.0.0/24");
        assert_eq!(
            a.allocate().map(|c| c.to_string()).as_deref(),
            Some("10.244.0.0/24")
        );
    }

    #[test]
    fn a_full_range_and_bad_flags() {
        let Ok(range) = Cidr::parse("10.0.0.0/30") else {
            panic!("valid")
        };
        let Ok(mut a) = Allocator::new(range, 31) else {
            panic!("fits")
        };
        assert!(a.allocate().is_some());
        assert!(a.allocate().is_some());
        assert!(a.allocate().is_none());
        assert!(Cidr::parse("10.0.0.0").is_err());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(
            Allocator::new(range, 24).is_err(),
            "a block larger than the range"
        );
        assert_eq!(
            Cidr::parse("10.1.2.3/16").map(|c| c.to_string()),
            Ok("10.1.0.0/16".to_string())
        );
    }
}
