#[derive(gluebind_macros::Model)]
struct User {
    id: i64,
    name: String,
}

fn main() {}
