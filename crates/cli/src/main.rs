//! `lifeboat`: the command line. Parses arguments, runs the engine, shows progress, and turns
//! errors into one line on stderr and an exit code (docs/CONFIG.md lists them).

mod args;
mod commands;
mod context;
mod exit;
mod format;
mod progress_view;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let (code, msg) = exit::describe(&e);
            eprintln!("lifeboat: {msg}");
            code
        }
    };
    std::process::exit(code);
}
