//! `geode`: the command-line entry point (the studio will open when run without arguments).

use clap::Parser;

fn main() {
    let cli = geode::cli::Cli::parse();
    match geode::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
