//! `geode`: the command-line entry point; with no subcommand it opens the studio.

use clap::Parser;

fn main() {
    // Behave like a Unix tool when the reader goes away (`geode … | head`): exit quietly on SIGPIPE
    // instead of panicking on a failed print.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = geode::cli::Cli::parse();
    match geode::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
