//! `WorkersKv`: the real Workers KV binding behind gluebind's [`KvBackend`] interface.

use crate::storage::kv::backend::{
    BoxFuture, KvBackend, KvEntry, KvFailure, KvResult, ListPage, ListedKey, MAX_LIST,
};
use std::time::Duration;
use worker::{kv::KvStore, Delay, KvError};

/// A Workers KV namespace binding, as a gluebind KV backend.
#[derive(Debug, Clone)]
pub struct WorkersKv {
    store: KvStore,
}

impl WorkersKv {
    /// Wraps the binding named `binding` from the Worker's environment.
    ///
    /// # Errors
    /// [`crate::Error::Config`] when the environment has no KV namespace of that name.
    pub fn from_env(env: &worker::Env, binding: &str) -> crate::Result<Self> {
        env.kv(binding)
            .map(|store| Self { store })
            .map_err(|e| crate::Error::Config {
                message: format!(
                    "no KV namespace bound as {binding:?} ({e}); add [[kv_namespaces]] with \
                     binding = \"{binding}\" to wrangler.toml"
                ),
            })
    }
}

/// Sorts a binding error into retryable or not, from the message Workers gives.
fn classify(error: KvError) -> KvFailure {
    let message = match &error {
        KvError::JavaScript(value) => value
            .as_string()
            .or_else(|| {
                worker::js_sys::Reflect::get(value, &"message".into())
                    .ok()
                    .and_then(|m| m.as_string())
            })
            .unwrap_or_else(|| format!("{value:?}")),
        other => other.to_string(),
    };
    KvFailure::classify(message)
}

impl KvBackend for WorkersKv {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<Option<KvEntry>>> {
        Box::pin(async move {
            let (value, metadata) = self
                .store
                .get(key)
                .text_with_metadata::<serde_json::Value>()
                .await
                .map_err(classify)?;
            Ok(value.map(|value| KvEntry { value, metadata }))
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, KvResult<Vec<Option<KvEntry>>>> {
        Box::pin(async move {
            // Values only: workers-rs 0.8.7's bulk get "with metadata" fails on missing keys
            // (it reads fields of their null entries), and gluebind's values hold everything.
            let mut found = self.store.get_bulk(keys).text().await.map_err(classify)?;
            Ok(keys
                .iter()
                .map(|k| {
                    found.remove(k).flatten().map(|value| KvEntry {
                        value,
                        metadata: None,
                    })
                })
                .collect())
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        metadata: Option<serde_json::Value>,
    ) -> BoxFuture<'a, KvResult<()>> {
        Box::pin(async move {
            let mut put = self.store.put(key, value).map_err(classify)?;
            if let Some(metadata) = metadata {
                put = put.metadata(metadata).map_err(classify)?;
            }
            put.execute().await.map_err(classify)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, KvResult<()>> {
        Box::pin(async move { self.store.delete(key).await.map_err(classify) })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        cursor: Option<String>,
        limit: usize,
    ) -> BoxFuture<'a, KvResult<ListPage>> {
        Box::pin(async move {
            let mut list = self
                .store
                .list()
                .prefix(prefix.to_owned())
                .limit(limit.clamp(1, MAX_LIST) as u64);
            if let Some(cursor) = cursor {
                list = list.cursor(cursor);
            }
            let page = list.execute().await.map_err(classify)?;
            Ok(ListPage {
                keys: page
                    .keys
                    .into_iter()
                    .map(|k| ListedKey {
                        name: k.name,
                        metadata: k.metadata,
                    })
                    .collect(),
                cursor: if page.list_complete {
                    None
                } else {
                    page.cursor
                },
            })
        })
    }

    fn now_ms(&self) -> u64 {
        // Whole milliseconds since the epoch fit in f64 exactly.
        worker::js_sys::Date::now() as u64
    }

    fn sleep(&self, ms: u64) -> BoxFuture<'static, ()> {
        Box::pin(Delay::from(Duration::from_millis(ms)))
    }
}
