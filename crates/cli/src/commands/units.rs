use anyhow::Result;

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::format;

pub fn list(ctx: &Context, json: bool) -> Result<i32> {
    let units = ctx.units()?;
    let infos: Vec<_> = units.iter().map(|u| u.info_with_size()).collect();
    if json {
        print_json(&infos)?;
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> =
        infos.iter().map(|u| vec![u.name.clone(), u.title.clone(), u.kind.clone(), u.paths.join(", ")]).collect();
    print!("{}", format::table(&["UNIT", "TITLE", "KIND", "PATHS"], &rows));
    for u in &infos {
        if !u.not_included.is_empty() {
            println!("{} does not include: {}", u.name, u.not_included.join("; "));
        }
    }
    if ctx.config().file.is_none() {
        println!("(built-in defaults: no configuration file at {})", ctx.config().target_file.display());
    }
    Ok(exit::OK)
}

pub fn use_profile(ctx: &Context, profile: &str) -> Result<i32> {
    let file = &ctx.config().target_file;
    let added = lifeboat_engine::config_edit::use_profile(profile, file)?;
    println!("Added units {} from profile {profile} to {}.", added.join(", "), file.display());
    Ok(exit::OK)
}
