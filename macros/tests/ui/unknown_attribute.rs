#[derive(gluebind_macros::Model)]
struct User {
    #[gluebind(primary_key, autoincrement)]
    id: i64,
}

fn main() {}
