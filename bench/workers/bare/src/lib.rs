//! Benchmark variant (a): a bare workers-rs worker answering "ok" — the floor.

#[cfg(target_arch = "wasm32")]
mod worker_app {
    use worker::{event, Context, Env, Request, Response, Result};

    #[event(fetch)]
    async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
        Response::ok("ok")
    }
}
