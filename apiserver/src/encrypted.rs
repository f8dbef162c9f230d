//! Encryption at rest (`--encryption-provider-config`): a `Storage` in front of the real one
//! that encrypts the values of the configured resources on the way in and decrypts them on the
//! way out (gets, lists, watch events), in upstream's on-disk format. The authenticated data of
//! aesgcm is the key as etcd stores it under the default `/registry` prefix, as upstream binds it.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use storage::{KeyValue, ListOptions, ListResult, Precondition, Storage, WatchEvent, WatchStream};

use crate::resources::RESOURCES;

pub struct EncryptedStorage {
    inner: Arc<dyn Storage>,
    config: Arc<encryption::EncryptionConfig>,
}

impl EncryptedStorage {
    pub fn new(inner: Arc<dyn Storage>, config: encryption::EncryptionConfig) -> EncryptedStorage {
        EncryptedStorage {
            inner,
            config: Arc::new(config),
        }
    }
}

/// The transformer for the resource a key belongs to, with the context aesgcm binds.
fn transformer<'a>(
    config: &'a encryption::EncryptionConfig,
    key: &str,
) -> Option<(&'a encryption::Transformer, String)> {
    let resource = RESOURCES
        .iter()
        .filter(|r| r.is_stored())
        .find(|r| key.starts_with(&r.key_prefix()))?;
    let transformer = config.for_resource(&resource.qualified())?;
    Some((transformer, format!("/registry{key}")))
}

fn encrypt(
    config: &encryption::EncryptionConfig,
    key: &str,
    value: Vec<u8>,
) -> storage::Result<Vec<u8>> {
    match transformer(config, key) {
        Some((t, context)) => {
            t.encrypt(&value, context.as_bytes())
                .map_err(|e| storage::Error::Malformed {
                    key: key.to_string(),
                    reason: format!("encrypting: {e}"),
                })
        }
        None => Ok(value),
    }
}

fn decrypt(config: &encryption::EncryptionConfig, mut kv: KeyValue) -> storage::Result<KeyValue> {
    if let Some((t, context)) = transformer(config, &kv.key) {
        let (plain, _stale) =
            t.decrypt(&kv.value, context.as_bytes())
                .map_err(|e| storage::Error::Malformed {
                    key: kv.key.clone(),
                    reason: format!("decrypting: {e}"),
                })?;
        kv.value = plain;
    }
    Ok(kv)
}

fn decrypt_event(
    config: &encryption::EncryptionConfig,
    event: WatchEvent,
) -> storage::Result<WatchEvent> {
    Ok(match event {
        WatchEvent::Created(kv) => WatchEvent::Created(decrypt(config, kv)?),
        WatchEvent::Modified { current, prev } => WatchEvent::Modified {
            current: decrypt(config, current)?,
            prev: prev.map(|p| decrypt(config, p)).transpose()?,
        },
        WatchEvent::Deleted {
            key,
            revision,
            prev,
        } => WatchEvent::Deleted {
            key,
            revision,
            prev: prev.map(|p| decrypt(config, p)).transpose()?,
        },
        progress @ WatchEvent::Progress { .. } => progress,
    })
}

#[async_trait]
impl Storage for EncryptedStorage {
    async fn get(&self, key: &str) -> storage::Result<Option<KeyValue>> {
        self.inner
            .get(key)
            .await?
            .map(|kv| decrypt(&self.config, kv))
            .transpose()
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> storage::Result<ListResult> {
        let mut page = self.inner.list(prefix, options).await?;
        page.items = page
            .items
            .into_iter()
            .map(|kv| decrypt(&self.config, kv))
            .collect::<storage::Result<Vec<_>>>()?;
        Ok(page)
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> storage::Result<KeyValue> {
        let kv = self
            .inner
            .create(key, encrypt(&self.config, key, value)?)
            .await?;
        decrypt(&self.config, kv)
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        precondition: Precondition,
    ) -> storage::Result<KeyValue> {
        let kv = self
            .inner
            .update(key, encrypt(&self.config, key, value)?, precondition)
            .await?;
        decrypt(&self.config, kv)
    }

    async fn delete(&self, key: &str, precondition: Precondition) -> storage::Result<KeyValue> {
        let kv = self.inner.delete(key, precondition).await?;
        decrypt(&self.config, kv)
    }

    async fn watch(&self, prefix: &str, after_revision: u64) -> storage::Result<WatchStream> {
        let config = self.config.clone();
        let stream = self.inner.watch(prefix, after_revision).await?;
        Ok(stream
            .map(move |event| event.and_then(|e| decrypt_event(&config, e)))
            .boxed())
    }

    async fn current_revision(&self) -> storage::Result<u64> {
        self.inner.current_revision().await
    }

    async fn compact(&self, revision: u64) -> storage::Result<()> {
        self.inner.compact(revision).await
    }
}
