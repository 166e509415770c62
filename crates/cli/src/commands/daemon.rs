//! `serve`, `token`, `events`, `hooks install|remove`.

use lifeboat_daemon::web;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
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

const APT_HOOK: &str = "/etc/apt/apt.conf.d/80lifeboat";

/// The line APT runs before it changes packages. A failed backup must not stop the upgrade
/// (the event history says it failed), hence `|| true`.
fn apt_hook_text(lifeboat: &Path, config: Option<&Path>, units: &[String], location: Option<&str>) -> String {
    let mut cmd = format!("{} --quiet", lifeboat.display());
    if let Some(c) = config {
        cmd.push_str(&format!(" --config {}", c.display()));
    }
    cmd.push_str(" backups new --name 'Before package upgrade'");
    for u in units {
        cmd.push_str(&format!(" --unit {u}"));
    }
    if let Some(l) = location {
        cmd.push_str(&format!(" --location {l}"));
    }
    format!(
        "// Installed by `lifeboat hooks install apt`; remove with `lifeboat hooks remove apt`.\n\
         DPkg::Pre-Invoke {{ \"if [ -x {bin} ]; then {cmd} || true; fi\"; }};\n",
        bin = lifeboat.display()
    )
}

pub fn install_hook(ctx: &Context, hook: &str, units: &[String], location: Option<&str>) -> Result<i32> {
    if hook != "apt" {
        bail!("no hook named {hook:?}: the hooks are apt");
    }
    ctx.select_units(units)?;
    if let Some(l) = location {
        ctx.location(Some(l))?;
    }
    let bin = std::env::current_exe().context("finding this program's path")?;
    let text = apt_hook_text(&bin, ctx.config().file.as_deref(), units, location);
    let dest = std::env::var_os("LIFEBOAT_APT_HOOK").map(PathBuf::from).unwrap_or_else(|| APT_HOOK.into());
    std::fs::write(&dest, text)
        .with_context(|| format!("writing {} (installing an APT hook needs root)", dest.display()))?;
    outln!("Installed {}: APT makes a backup before it changes packages.", dest.display())?;
    // APT gives the hook no password: say now, not at the first upgrade, when it cannot open
    // the backups.
    match ctx.opens_unattended(location) {
        Ok(true) => Ok(exit::OK),
        Ok(false) => {
            let loc = ctx.location(location)?;
            eprintln!(
                "warning: the hook cannot open the backups in {} on its own (they need a password, and APT gives \
                 none): run `lifeboat key add --device --location {}` once, or set repository_password_file in \
                 the location; until then each upgrade logs a failed backup (`lifeboat logs --list`).",
                loc.describe(),
                loc.name
            );
            Ok(exit::WARNINGS)
        }
        Err(e) => {
            eprintln!("warning: could not check that the hook can open the backups: {}", exit::sentence(&e));
            Ok(exit::WARNINGS)
        }
    }
}

pub fn remove_hook(hook: &str) -> Result<i32> {
    if hook != "apt" {
        bail!("no hook named {hook:?}: the hooks are apt");
    }
    let dest = std::env::var_os("LIFEBOAT_APT_HOOK").map(PathBuf::from).unwrap_or_else(|| APT_HOOK.into());
    match std::fs::remove_file(&dest) {
        Ok(()) => outln!("Removed {}.", dest.display())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => outln!("No APT hook was installed.")?,
        Err(e) => return Err(e).with_context(|| format!("removing {}", dest.display())),
    }
    Ok(exit::OK)
}
