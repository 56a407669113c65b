//! Prints the `ferroflow tune` report for a root directory (default `/`) and an optional config
//! file, with `FERROFLOW_*` overrides from the environment:
//!
//!     cargo run -p ferroflow-tuning --example tune -- [ROOT] [CONFIG.toml]
//!     cargo run -p ferroflow-tuning --example tune -- tuning/tests/fixtures/two-socket-64

use std::path::Path;

use ferroflow_tuning::{Config, Topology, TuneReport};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = args.first().map_or("/", String::as_str);
    let config = match Config::from_sources(args.get(1).map(Path::new), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let topology = Topology::read(Path::new(root));
    print!("{}", TuneReport::build(&topology, &config).render_text());
}
