use gluebind::{params, Engine, Registry, SessionFactory};
use std::cell::OnceCell;
use worker::*;

thread_local! {
    // Once per isolate: the registry (never a current session).
    static DB: OnceCell<Registry> = const { OnceCell::new() };
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let registry = DB.with(|db| {
        db.get_or_init(|| {
            let engine = Engine::from_url("memory://").expect("valid URL");
            let factory = SessionFactory::builder().bind(engine).build();
            Registry::new(factory.expect("engine bound"))
        })
        .clone()
    });
    gluebind::wasm::serve(&registry, req, env, ctx, |_req, event| async move {
        let session = event.session()?; // gluebind::Error converts into worker::Error
        let schema = "CREATE TABLE IF NOT EXISTS hits (n INTEGER)"; // idempotent
        session.execute_batch(schema).await?;
        let sql = "INSERT INTO hits VALUES ($1)";
        session.execute(sql, params![1i64]).await?;
        // The durable path: commit before responding, so a conflict reaches the client.
        session.commit().await?;
        Response::ok("counted")
    })
    .await
}
