//! `lifeboat`: the command line. Parses arguments, runs the engine, shows progress, and turns
//! errors into one line on stderr and an exit code (docs/CONFIG.md lists them).

mod args;
mod commands;
mod context;
mod exit;
mod format;
mod interrupt;
mod logging;
mod output;
mod progress_view;

use clap::FromArgMatches;

fn main() {
    limit_heap_growth();
    lifeboat_storage::tls::install_provider();
    let cli = match args::Cli::from_arg_matches(&args::command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    logging::init(cli.verbose);
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(_) if output::stdout_closed() => output::CLOSED_PIPE,
        Err(e) => {
            let (code, msg) = exit::describe(&e);
            eprintln!("lifeboat: {msg}");
            code
        }
    };
    lifeboat_storage::faults::report();
    std::process::exit(code);
}

/// Large buffers (chunks, packs) are allocated and freed all the time on many threads. With
/// glibc's default, its mmap threshold rises to the largest freed size and those buffers then
/// fragment per-thread arenas: peak memory on the benchmark corpus was 60 % higher. A fixed
/// threshold keeps every buffer above 256 KiB in its own mapping, returned on free.
fn limit_heap_growth() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called once, first thing in
    // main, before any other thread exists, with a valid parameter constant and value. Its
    // return value (0 on failure) only means the default stays, which is harmless.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}
