//! `serve`, `token`, `events`.

use lifeboat_daemon::web;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use lifeboat_daemon::events::{self, Events};

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::output::{out, outln};

pub fn serve(ctx: &Context, config_file: Option<PathBuf>, listen: Option<String>) -> Result<i32> {
    let quiet = ctx.quiet;
    let token_file = lifeboat_daemon::token::token_file(&ctx.dirs().data);
    let stopped = lifeboat_daemon::serve(lifeboat_daemon::ServeOptions {
        dirs: ctx.dirs().clone(),
        config_file,
        config: ctx.config().clone(),
        password_file: ctx.credentials().password_file.clone(),
        listen,
        on_listening: Box::new(move |addr| {
            // One line on stdout, flushed: what scripts and service managers wait for.
            // A closed stdout must not stop the daemon: the line is for whoever listens.
            let _ = outln!("Listening on http://{addr}/");
            if !quiet {
                eprintln!("The API asks for the token in {} (`lifeboat token`).", token_file.display());
            }
            use std::io::Write;
            let _ = std::io::stdout().flush();
        }),
    })?;
    for line in &stopped.interrupted {
        eprintln!("lifeboat: {line}");
    }
    Ok(if stopped.interrupted.is_empty() { exit::OK } else { exit::WARNINGS })
}

pub fn token(ctx: &Context) -> Result<i32> {
    let t = lifeboat_daemon::token::read_or_create(&ctx.dirs().data).with_context(|| {
        format!("the API token in {}", lifeboat_daemon::token::token_file(&ctx.dirs().data).display())
    })?;
    outln!("{t}")?;
    Ok(exit::OK)
}

pub fn passwd(ctx: &Context, from_file: Option<std::path::PathBuf>, remove: bool) -> Result<i32> {
    let file = web::password::password_file(&ctx.dirs().data);
    if remove {
        if web::password::remove(&ctx.dirs().data).with_context(|| format!("removing {}", file.display()))? {
            eprintln!("The web page's password is removed; sign in with the token (`lifeboat token`).");
        } else {
            eprintln!("No password was set; sign in with the token (`lifeboat token`).");
        }
        return Ok(exit::OK);
    }
    let pw = super::key::new_password(from_file)?;
    web::password::set(&ctx.dirs().data, &pw).with_context(|| format!("saving the password in {}", file.display()))?;
    eprintln!("The web page now signs in with this password (the token works too).");
    Ok(exit::OK)
}

/// Adds an event to the history that `lifeboat events` and the page show. A history that
/// cannot be written does not fail the command that did the work; it is said on stderr.
pub fn record_event(ctx: &Context, kind: &str, level: &str, message: &str, about: &events::About) {
    let recorded = Events::open(&events::database_path(&ctx.dirs().data))
        .map_err(|e| e.to_string())
        .and_then(|ev| ev.record(kind, level, message, about).map_err(|e| e.to_string()));
    if let Err(e) = recorded {
        eprintln!("warning: the event was not recorded: {e}");
    }
}

pub fn events(ctx: &Context, limit: u32, json: bool) -> Result<i32> {
    let ev = Events::open(&events::database_path(&ctx.dirs().data))?;
    let list = ev.list(limit, None)?;
    if json {
        print_json(&list)?;
    } else if list.is_empty() {
        outln!("No events yet: backups, restores and what `lifeboat serve` does are recorded here.")?;
    } else {
        // Newest first, as the page shows them; what happened is never cut.
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|e| {
                let when = crate::format::local_time_of(&e.time);
                let dash = || "-".to_string();
                vec![
                    when,
                    e.level.clone(),
                    e.location.clone().unwrap_or_else(dash),
                    e.schedule.clone().unwrap_or_else(dash),
                    e.message.clone(),
                ]
            })
            .collect();
        out!("{}", crate::format::table_with_text(&["TIME", "LEVEL", "LOCATION", "SCHEDULE", "WHAT"], &rows))?;
    }
    Ok(exit::OK)
}
