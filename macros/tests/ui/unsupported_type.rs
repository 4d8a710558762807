#[derive(gluebind_macros::Model)]
struct User {
    #[gluebind(primary_key)]
    id: i64,
    tags: std::collections::HashMap<String, String>,
}

fn main() {}
