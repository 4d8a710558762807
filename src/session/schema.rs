//! A table's schema as the session sees it: what start-up checks (model drift, migrations)
//! compare their expectations with.

use super::Session;
use crate::error::{Error, Result};
use gluesql_core::data::Schema;

impl Session {
    /// The stored schema of `table` (with its UNIQUE and PRIMARY KEY columns) as of this
    /// session's snapshot plus its own writes; `None` when the table does not exist.
    pub(crate) async fn stored_schema(&self, table: &str) -> Result<Option<Schema>> {
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
        store.real_schema(table).map_err(|e| Error::Storage {
            message: format!("reading the schema of table {table}: {e}"),
        })
    }
}
