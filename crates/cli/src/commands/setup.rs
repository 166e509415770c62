//! `lifeboat setup --from-backup`: this device set up from a backup's configuration.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::Result;

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::output::outln;

pub fn from_backup(ctx: &Context, from: &str, location: Option<&str>, dry_run: bool, json: bool) -> Result<i32> {
    let file = Path::new(from);
    // A file when one is there (a backup's slug has no `/` or `.tar`).
    let offer = if location.is_none() && (file.is_file() || from.contains('/') || from.ends_with(".tar")) {
        ctx.setup_offer_from_file(file)?
    } else {
        ctx.setup_offer(from, location)?
    };
    let target = &ctx.config().target_file;
    if dry_run {
        if json {
            print_json(&offer)?;
            return Ok(exit::OK);
        }
        say_offer(&offer)?;
        outln!("Nothing was changed (--dry-run); without it they are added to {}.", target.display())?;
        return Ok(exit::OK);
    }
    // The secrets the backup does not carry, asked for again on a terminal.
    let mut secrets: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() && !json {
        for loc in &offer.locations {
            for key in &loc.secrets {
                let question = format!(
                    "{key} of location {} ({} at {}; empty to give it later): ",
                    loc.name, loc.kind, loc.address
                );
                if let Ok(v) = rpassword::prompt_password(question) {
                    if !v.is_empty() {
                        secrets.entry(loc.name.clone()).or_default().insert(key.clone(), v);
                    }
                }
            }
        }
    }
    let applied = ctx.apply_setup(&offer, &secrets)?;
    if json {
        print_json(&serde_json::json!({ "offered": offer, "applied": applied }))?;
        return Ok(exit::OK);
    }
    say_offer(&offer)?;
    say_applied(&applied, target)?;
    Ok(exit::OK)
}

/// What a setup added to the configuration file `target`, and what is still to give.
pub fn say_applied(applied: &lifeboat_engine::setup::SetupApplied, target: &Path) -> Result<()> {
    let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    outln!(
        "Added to {}: units {}; schedules {}; locations {}.",
        target.display(),
        list(&applied.units),
        list(&applied.schedules),
        list(&applied.locations)
    )?;
    if let Some(d) = &applied.default_location {
        outln!("Backups go to location {d} by default now, as on the device that made the backup.")?;
    }
    if !applied.kept.is_empty() {
        outln!("Kept this device's own {}.", applied.kept.join(", "))?;
    }
    for missing in &applied.missing_secrets {
        let (loc, key) = missing.split_once('.').unwrap_or((missing, ""));
        outln!(
            "Location {loc} needs its {key} again: add {key}_file = \"…\" (a file holding it) to [location.{loc}] in {}.",
            target.display()
        )?;
    }
    outln!("See them with `lifeboat units list` and `lifeboat locations list`.")?;
    Ok(())
}

fn say_offer(offer: &lifeboat_engine::setup::SetupOffer) -> Result<()> {
    let units: Vec<String> = offer.units.iter().map(|u| format!("{} ({})", u.name, u.title)).collect();
    let locations: Vec<String> =
        offer.locations.iter().map(|l| format!("{} ({}) at {}", l.name, l.kind, l.address)).collect();
    let none = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    outln!(
        "The backup's configuration offers units {}; schedules {}; locations {}.",
        none(&units),
        none(&offer.schedules),
        none(&locations)
    )?;
    for why in &offer.left_out {
        outln!("Left out: {why}.")?;
    }
    Ok(())
}
