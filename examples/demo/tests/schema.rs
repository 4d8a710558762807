//! The models and the schema snapshot agree: a model changed without its migration step fails
//! here (with the step to write) before it fails a deploy's start-up with `DRIFT`.

use gluebind::migrate;
use gluebind_demo::service::MODELS;

#[test]
fn the_models_match_the_schema_snapshot() {
    let step = migrate::next_step("<next>", MODELS, include_str!("../schema.json")).unwrap();
    assert!(
        step.is_empty(),
        "the models changed since examples/demo/schema.json: run `npm run migrations:new -- \
         <name>` and add the step it prints ({} {:?})",
        step.rust,
        step.notes
    );
}
