use anyhow::Result;
use lifeboat_engine::config_edit;
use lifeboat_engine::Location;
use lifeboat_repository::{CheckOptions, Repository};
use serde::Serialize;

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::format;

#[derive(Serialize)]
struct LocationRow {
    name: String,
    kind: &'static str,
    #[serde(rename = "where")]
    place: String,
    default: bool,
    reachable: bool,
    /// Why not, when not reachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
    free: Option<u64>,
    backups: Option<usize>,
    size: Option<u64>,
}

pub fn list(ctx: &Context, json: bool) -> Result<i32> {
    let default = lifeboat_engine::location::default_location_name(&ctx.config().config, ctx.dirs());
    let rows: Vec<LocationRow> = ctx.locations().iter().map(|l| survey(l, l.name == default)).collect();
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

/// What can be learnt of a location without its key: reachability, free space, how many
/// backups it holds and how much it stores.
fn survey(l: &Location, default: bool) -> LocationRow {
    let mut row = LocationRow {
        name: l.name.clone(),
        kind: l.kind.as_str(),
        place: l.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        default,
        reachable: false,
        problem: None,
        free: None,
        backups: None,
        size: None,
    };
    let store = match l.store() {
        Ok(s) => s,
        Err(e) => {
            row.problem = Some(e.to_string());
            return row;
        }
    };
    row.place = store.describe();
    match store.list("snapshots") {
        Ok(snaps) => {
            row.reachable = true;
            row.backups = Some(snaps.len());
            let mut size: u64 = snaps.iter().map(|o| o.size).sum();
            for prefix in ["data", "index"] {
                if let Ok(objs) = store.list(prefix) {
                    size += objs.iter().map(|o| o.size).sum::<u64>();
                }
            }
            row.size = Some(size);
        }
        Err(e) => row.problem = Some(e.to_string()),
    }
    row.free = store.free_space();
    row
}

pub fn check(ctx: &Context, name: &str) -> Result<i32> {
    let loc = ctx.location(Some(name))?;
    let store = loc.store()?;
    println!("{}: {} ({})", loc.name, store.describe(), loc.kind.as_str());
    let exists = Repository::exists(store.as_ref())?;
    println!("  reachable: yes");
    // A write and a removal under a name the repository never uses.
    let probe = format!(
        "lifeboat-write-check-{:016x}",
        std::process::id() as u64
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
    );
    store.write(&probe, b"lifeboat checks that it can write here\n")?;
    let back = store.read(&probe, None)?;
    store.remove(&probe)?;
    if back != b"lifeboat checks that it can write here\n" {
        anyhow::bail!("location {name}: what was written reads back differently: the storage is not reliable");
    }
    println!("  writable: yes");
    if let Some(free) = store.free_space() {
        println!("  free: {}", format::bytes(free));
    }
    if !exists {
        println!("  repository: none yet (the first backup creates it)");
        return Ok(exit::OK);
    }
    let repo = ctx.repository(loc, false)?;
    let report = repo.check(CheckOptions { read_data: false }, &|_| {})?;
    let (snaps, _) = repo.snapshots()?;
    if report.problems.is_empty() {
        println!("  repository: healthy, {} backups", snaps.len());
        Ok(exit::OK)
    } else {
        println!(
            "  repository: {} problems; run `lifeboat check --location {name}` for the list",
            report.problems.len()
        );
        Ok(exit::DAMAGE)
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
