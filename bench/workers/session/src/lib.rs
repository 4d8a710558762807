//! Benchmark variant (b): the bare worker plus a gluebind scope opened per request, its
//! session opened (no query), and both removed in `ctx.waitUntil` by `gluebind::wasm::serve`.

#[cfg(target_arch = "wasm32")]
mod worker_app {
    use gluebind::{Engine, Registry, SessionFactory};
    use std::cell::OnceCell;
    use worker::{event, Context, Env, Request, Response, Result};

    thread_local! {
        // Once per isolate: the registry (never a current session).
        static REGISTRY: OnceCell<Registry> = const { OnceCell::new() };
    }

    fn registry() -> Registry {
        REGISTRY.with(|cell| {
            cell.get_or_init(|| {
                let engine = Engine::from_url("memory://").expect("valid URL");
                let factory = SessionFactory::builder()
                    .bind(engine)
                    .build()
                    .expect("engine bound");
                Registry::new(factory)
            })
            .clone()
        })
    }

    #[event(fetch)]
    async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
        gluebind::wasm::serve(&registry(), req, env, ctx, |_req, event| async move {
            let _session = event.session()?;
            Response::ok("ok")
        })
        .await
    }
}
