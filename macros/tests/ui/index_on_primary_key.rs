#[derive(gluebind_macros::Model)]
struct User {
    #[gluebind(primary_key, index)]
    id: i64,
    email: String,
}

fn main() {}
