use anyhow::Result;
use lifeboat_engine::app::RepositoryHealth;
use lifeboat_engine::config_edit;

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::format;

pub fn list(ctx: &Context, json: bool) -> Result<i32> {
    let rows = ctx.survey_locations();
    if json {
        print_json(&rows)?;
        return Ok(exit::OK);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format!("{}{}", r.name, if r.default { " *" } else { "" }),
                r.kind.to_string(),
                r.place.clone(),
                if r.reachable { "yes".into() } else { "no".into() },
                r.free.map(format::bytes).unwrap_or_else(|| "-".into()),
                r.backups.map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
                r.size.map(format::bytes).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print!("{}", format::table(&["NAME", "KIND", "WHERE", "REACHABLE", "FREE", "BACKUPS", "SIZE"], &table));
    for r in &rows {
        if let Some(p) = &r.problem {
            println!("{}: {p}", r.name);
        }
    }
    println!("* the default location");
    Ok(exit::OK)
}

pub fn check(ctx: &Context, name: &str) -> Result<i32> {
    let c = ctx.check_location(name)?;
    println!("{}: {} ({})", c.name, c.place, c.kind);
    println!("  reachable: yes");
    println!("  writable: yes");
    if let Some(free) = c.free {
        println!("  free: {}", format::bytes(free));
    }
    match c.repository {
        RepositoryHealth::None => {
            println!("  repository: none yet (the first backup creates it)");
            Ok(exit::OK)
        }
        RepositoryHealth::Healthy { backups } => {
            println!("  repository: healthy, {backups} backups");
            Ok(exit::OK)
        }
        RepositoryHealth::Problems { count } => {
            println!("  repository: {count} problems; run `lifeboat check --location {name}` for the list");
            Ok(exit::DAMAGE)
        }
    }
}

pub fn add(ctx: &Context, name: &str, kind: &str, path: Option<String>, set: &[String], default: bool) -> Result<i32> {
    let mut keys = vec![("type".to_string(), kind.to_string())];
    if let Some(p) = path {
        keys.push(("path".into(), p));
    }
    for kv in set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--set {kv:?}: give KEY=VALUE, for example --set host=nas.local"))?;
        keys.push((k.trim().to_string(), v.to_string()));
    }
    let file = &ctx.config().target_file;
    config_edit::add_location(file, name, &keys, default)?;
    println!("Added location {name} to {}. Check it with `lifeboat locations check {name}`.", file.display());
    Ok(exit::OK)
}

pub fn remove(ctx: &Context, name: &str) -> Result<i32> {
    let file = &ctx.config().target_file;
    config_edit::remove_location(file, name)?;
    println!("Removed location {name} from {}; the backups in it were not touched.", file.display());
    Ok(exit::OK)
}
