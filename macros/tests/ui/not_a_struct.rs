#[derive(gluebind_macros::Model)]
enum Shape {
    Circle,
    Square,
}

#[derive(gluebind_macros::Model)]
struct Point(i64, i64);

fn main() {}
