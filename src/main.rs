fn main() {
    println!("ferroflow");
}
