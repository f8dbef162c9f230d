//! The informer caches the volume plugins read (upstream's listers), gathered in one struct so
//! unit tests fill plain stores by hand and need no apiserver.

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::{CSIDriver, CSINode, CSIStorageCapacity, StorageClass};

use client::informer::store::Store;

use crate::framework::Handle;

/// Caches by store key: `namespace/name` for claims and pods, `name` for the cluster-scoped rest.
#[derive(Clone, Default)]
pub struct VolumeListers {
    pub pvcs: Store<PersistentVolumeClaim>,
    pub pvs: Store<PersistentVolume>,
    pub classes: Store<StorageClass>,
    pub csi_nodes: Store<CSINode>,
    pub csi_drivers: Store<CSIDriver>,
    pub capacities: Store<CSIStorageCapacity>,
    pub nodes: Store<Node>,
    pub pods: Store<Pod>,
}

impl VolumeListers {
    /// The shared informers' caches (each informer is registered with the factory, which
    /// starts it with the others); empty stores when the handle has no informers.
    pub fn from_handle(handle: &Handle) -> VolumeListers {
        let Some(factory) = handle.informers.as_ref() else {
            return VolumeListers::default();
        };
        VolumeListers {
            pvcs: factory.informer::<PersistentVolumeClaim>().store().clone(),
            pvs: factory.informer::<PersistentVolume>().store().clone(),
            classes: factory.informer::<StorageClass>().store().clone(),
            csi_nodes: factory.informer::<CSINode>().store().clone(),
            csi_drivers: factory.informer::<CSIDriver>().store().clone(),
            capacities: factory.informer::<CSIStorageCapacity>().store().clone(),
            nodes: factory.informer::<Node>().store().clone(),
            pods: factory.informer::<Pod>().store().clone(),
        }
    }

    /// The shared informer's cache of `K` (registering the informer), or an empty store when
    /// the handle has no informers: for plugins that read only a few kinds.
    pub fn store_of<K>(handle: &Handle) -> Store<K>
    where
        K: client::informer::Object,
        K::DynamicType: Default,
    {
        match handle.informers.as_ref() {
            Some(factory) => factory.informer::<K>().store().clone(),
            None => Store::default(),
        }
    }

    pub fn pvc(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<std::sync::Arc<PersistentVolumeClaim>> {
        self.pvcs.get_namespaced(Some(namespace), name)
    }

    /// Fills a store by hand (tests and fakes): the object under its store key.
    pub fn put<K>(store: &Store<K>, obj: K)
    where
        K: kube::core::Resource,
    {
        let key = client::informer::store::key_of(&obj);
        store.upsert(key, std::sync::Arc::new(obj));
    }
}
