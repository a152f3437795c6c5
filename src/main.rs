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
    // A bug must not greet a user with a thread's backtrace (or one per worker thread): one line naming
    // the failure, the full trace only with RUST_BACKTRACE set.
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown failure".into());
            let at = info.location().map(|l| format!(" ({}:{})", l.file(), l.line())).unwrap_or_default();
            eprintln!("error: internal error: {msg}{at}; this is a bug in geode (RUST_BACKTRACE=1 shows where)");
        }));
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
