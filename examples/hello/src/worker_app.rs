use gluebind::{params, wasm::Event, wasm::Gluebind, SessionFactory};
use worker::*;

thread_local! {
    // Once per isolate: the database (never a current session), made from the first event's
    // env — DATABASE_URL = "memory://", "kv://BINDING" or "do://BINDING" in wrangler.toml.
    static DB: Gluebind = Gluebind::new(|env| {
        let url = gluebind::wasm::var(env, "DATABASE_URL", "memory://");
        SessionFactory::builder().bind(gluebind::wasm::engine(env, &url)?).build()
    })
    // Once, before the first event's handler; events arriving meanwhile wait for it.
    .init(|session| async move {
        session.execute_batch("CREATE TABLE IF NOT EXISTS hits (n INTEGER)").await?;
        session.commit().await.map(|_| ())
    });
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    // A scope per event; teardown in ctx.waitUntil.
    DB.with(Clone::clone).serve(req, env, ctx, count).await
}

/// A gluebind error answers JSON with its status (404, 409); `?` on worker calls works too.
async fn count(_req: Request, event: Event) -> gluebind::Result<Response> {
    let session = event.session()?;
    session
        .execute("INSERT INTO hits VALUES ($1)", params![1i64])
        .await?;
    // The durable path: commit before responding, so a conflict reaches the client.
    session.commit().await?;
    Ok(Response::ok("counted")?)
}
