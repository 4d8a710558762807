#[derive(gluebind_macros::Model)]
struct User {
    #[gluebind(primary_key)]
    id: i64,
    #[gluebind(primary_key)]
    email: String,
}

fn main() {}
