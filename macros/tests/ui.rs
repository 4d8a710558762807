//! Compile-fail tests: bad `#[derive(Model)]` input gets a readable error at the right place.
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p gluebind-macros`.

#[test]
fn bad_derive_input() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
