use std::env;

fn parse_args() -> Result<(String, u32), String> {
    let args: Vec<String> = env::args().collect();
    if args.len() != 3 {
        return Err(format!("usage: {} NAME COUNT", args[0]));
    }
    let count = args[2].parse::<u32>().map_err(|e| e.to_string())?;
    Ok((args[1].clone(), count))
}

fn main() {
    match parse_args() {
        Ok((name, n)) => (0..n).for_each(|_| println!("hi {}", name)),
        Err(msg) => eprintln!("{}", msg),
    }
}
