//! The tables as the session sees them: what start-up checks (model drift, migrations)
//! compare their expectations with.

use super::{store::SessionStore, Session};
use crate::error::{Error, Result};
use gluesql_core::{data::Schema, store::Store};

impl Session {
    /// Runs `read` on the session's store once every table's schema is loaded.
    async fn with_schemas<T>(&self, read: impl FnOnce(&SessionStore) -> T) -> Result<T> {
        // A dictionary query loads every table's schema (one load on kv:// and do://); after
        // it the store answers for any name, an absent table included, without a miss. Run
        // unrecorded: it is gluebind's question, not a statement of the application's.
        self.usable()?;
        let parsed = self
            .inner
            .engine
            .parse("SELECT COUNT(*) FROM GLUE_TABLES")
            .map_err(|e| Error::sql(e.to_string()))?;
        for statement in parsed.iter() {
            self.run_one(statement, &[], None, false).await?;
        }
        let slot = self.inner.store.borrow();
        let store = slot.as_ref().ok_or_else(|| self.closed())?;
        Ok(read(store))
    }

    /// The stored schema of `table` (with its UNIQUE and PRIMARY KEY columns) as of this
    /// session's snapshot plus its own writes; `None` when the table does not exist.
    pub(crate) async fn stored_schema(&self, table: &str) -> Result<Option<Schema>> {
        self.with_schemas(|store| store.real_schema(table))
            .await?
            .map_err(|e| Error::Storage {
                message: format!("reading the schema of table {table}: {e}"),
            })
    }

    /// The names of every table, in order.
    pub(crate) async fn table_names(&self) -> Result<Vec<String>> {
        let schemas = self
            .with_schemas(|store| store.fetch_all_schemas())
            .await?
            .map_err(|e| Error::Storage {
                message: format!("reading the tables' schemas: {e}"),
            })?;
        let mut names: Vec<String> = schemas.into_iter().map(|s| s.table_name).collect();
        names.sort();
        Ok(names)
    }
}
