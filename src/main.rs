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
    // A bug must not greet a user with a thread's backtrace (or one per worker thread). The hook only
    // remembers where a panic happened: many are caught and handled on the way (a library that panics on
    // a bad input becomes an error for that input). One that reaches `main` is reported below as one line
    // naming the command, the failure and its place; the full trace only with RUST_BACKTRACE set.
    let backtrace = std::env::var_os("RUST_BACKTRACE").is_some();
    if !backtrace {
        std::panic::set_hook(Box::new(|info| {
            let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) = Some((geode::panic_message(info.payload()), at));
        }));
    }
    let cli = geode::cli::Cli::parse();
    match std::panic::catch_unwind(|| geode::cli::run(cli)) {
        Ok(Ok(code)) => std::process::exit(code),
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
        Err(payload) => {
            let (msg, at) = LAST_PANIC
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_else(|| (geode::panic_message(&*payload), String::new()));
            let command: Vec<String> = std::env::args().skip(1).collect();
            let mut command = command.join(" ");
            if command.chars().count() > 160 {
                command = command.chars().take(160).collect::<String>() + "…";
            }
            let at = if at.is_empty() { String::new() } else { format!(" at {at}") };
            eprintln!(
                "error: internal error in `geode {command}`: {msg}{at}; this is a bug in geode \
                 (RUST_BACKTRACE=1 shows where)"
            );
            std::process::exit(101);
        }
    }
}

/// The message and place of the latest panic, kept by the panic hook for the report in `main`.
static LAST_PANIC: std::sync::Mutex<Option<(String, String)>> = std::sync::Mutex::new(None);
