use gluebind::{Engine, Result, SessionFactory};
use worker::{console_log, Env};

pub fn factory(env: &Env, debug: bool) -> Result<SessionFactory> {
    SessionFactory::builder()
        // The default bind: durable.
        .bind(gluebind::wasm::engine(env, "kv://GLUEBIND_KV")?)
        // SQLALCHEMY_BINDS: models with bind_key = "cache" run here.
        .bind_key("cache", Engine::from_url("memory://cache")?)
        // SQLALCHEMY_RECORD_QUERIES.
        .record_queries(debug)
        // before_models_committed: an Err vetoes the commit.
        .before_commit(|_session, _changes| Ok(()))
        // models_committed.
        .after_commit(|c| console_log!("{} rows, {:?}", c.info.rows_written, c.changes))
        .build()
}
