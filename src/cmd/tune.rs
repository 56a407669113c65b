use std::path::PathBuf;
use std::process::ExitCode;

use ferroflow_tuning::{apply_sysctls, Config, Topology, TuneReport};

pub fn run(config: Option<PathBuf>, root: PathBuf, toml: bool, apply: bool) -> ExitCode {
    let cfg = match Config::from_sources(config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferroflow tune: {e}");
            return ExitCode::from(2);
        }
    };
    let topo = Topology::read(&root);
    let report = TuneReport::build(&topo, &cfg);
    if toml {
        print!("{}", report.to_toml_snippet());
    } else {
        print!("{}", report.render_text());
    }
    if apply {
        match apply_sysctls(&root, &report) {
            Ok(done) => {
                for d in done {
                    println!("applied: {d}");
                }
            }
            Err(e) => {
                eprintln!("ferroflow tune --apply: {e}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}
