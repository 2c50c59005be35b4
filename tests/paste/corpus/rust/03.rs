use std::fs::File;
use std::io::{self, BufRead, BufReader};

fn count_lines(path: &str) -> io::Result<usize> {
    let file = File::open(path)?;
    let reader = BufReader::new(file);
    Ok(reader.lines().count())
}

fn main() {
    match count_lines("Cargo.toml") {
        Ok(n) => println!("{} lines", n),
        Err(e) => eprintln!("error: {}", e),
    }
}
