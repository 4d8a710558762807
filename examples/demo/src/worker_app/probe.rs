//! A second module that looks the event's session up in the registry on its own, for the
//! seed's "reachable app-wide" check (`GET /__gluebind/probe`).

use gluebind::Scope;

/// The event's session id, found through the isolate's registry (not passed in).
pub fn session_id_from_another_module(scope: &Scope) -> gluebind::Result<String> {
    let registry = super::db::current_registry().ok_or_else(|| gluebind::Error::Config {
        message: "registry not created yet".to_owned(),
    })?;
    Ok(registry.session(scope)?.id().to_owned())
}
