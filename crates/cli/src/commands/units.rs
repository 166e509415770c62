use anyhow::Result;

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::format;
use crate::output::{out, outln};

pub fn list(ctx: &Context, json: bool) -> Result<i32> {
    let units = ctx.units()?;
    let infos: Vec<_> = units.iter().map(|u| u.info_with_size()).collect();
    if json {
        print_json(&infos)?;
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> =
        infos.iter().map(|u| vec![u.name.clone(), u.title.clone(), u.kind.clone(), u.paths.join(", ")]).collect();
    out!("{}", format::table(&["UNIT", "TITLE", "KIND", "PATHS"], &rows))?;
    for u in &infos {
        if !u.not_included.is_empty() {
            outln!("{} does not include: {}", u.name, u.not_included.join("; "))?;
        }
    }
    if ctx.config().file.is_none() {
        outln!("(built-in defaults: no configuration file at {})", ctx.config().target_file.display())?;
    }
    Ok(exit::OK)
}

pub fn use_profile(ctx: &Context, profile: &str) -> Result<i32> {
    let file = &ctx.config().target_file;
    let used = lifeboat_engine::config_edit::use_profile(profile, file)?;
    outln!("Added units {} from profile {profile} to {}.", used.added.join(", "), file.display())?;
    if used.kept_home {
        outln!(
            "Kept unit home (your whole home folder, backed up until now) beside them; to back up only the \
             profile's units, remove [unit.home] from {}.",
            file.display()
        )?;
    }
    Ok(exit::OK)
}
