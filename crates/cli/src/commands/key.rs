use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::format;
use crate::output::{out, outln};

pub fn list(ctx: &Context, location: Option<&str>, json: bool) -> Result<i32> {
    let keys = ctx.keys(location)?;
    if json {
        print_json(&keys)?;
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                format!("{}{}", if k.current { "*" } else { " " }, &k.id[..8]),
                format!("{:?}", k.kind).to_lowercase(),
                k.label.clone(),
                format!("{}@{}", k.user, k.host),
                format::local_time(&k.created),
            ]
        })
        .collect();
    out!("{}", format::table(&[" ID", "KIND", "LABEL", "MADE BY", "CREATED"], &rows))?;
    Ok(exit::OK)
}

pub fn add(ctx: &Context, file: Option<PathBuf>, label: &str, location: Option<&str>) -> Result<i32> {
    let pw = new_password(file)?;
    let k = ctx.add_key(location, &pw, label)?;
    outln!("Added key {}.", &k.id[..8])?;
    Ok(exit::OK)
}

/// `key add --device`: a key kept on this device, for schedules and hooks.
pub fn add_device(ctx: &Context, label: &str, location: Option<&str>) -> Result<i32> {
    let (k, file) = ctx.add_device_key(location, label)?;
    outln!(
        "Added device key {}, saved in {} (readable by you only): schedules and hooks on this device now open \
         the backups without a password.",
        &k.id[..8],
        file.display()
    )?;
    Ok(exit::OK)
}

pub fn remove(ctx: &Context, id: &str, location: Option<&str>) -> Result<i32> {
    let k = ctx.remove_key(location, id)?;
    outln!("Removed key {} ({:?}).", &k.id[..8], k.kind)?;
    Ok(exit::OK)
}

pub fn recovery(ctx: &Context, location: Option<&str>) -> Result<i32> {
    let (loc, rk) = ctx.recovery_key(location)?;
    outln!("{rk}")?;
    eprintln!(
        "This recovery key opens the backups in {} without any password. Keep it off this device, \
         e.g. printed or in a password manager: `lifeboat --password-file FILE …` accepts it.",
        loc.describe()
    );
    Ok(exit::OK)
}

/// A new password: the first line of `file`, or typed twice at the prompt.
pub fn new_password(file: Option<PathBuf>) -> Result<String> {
    let pw = match file {
        Some(f) => {
            let t = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            t.lines().next().unwrap_or("").to_string()
        }
        None => {
            let a = rpassword::prompt_password("New password: ")?;
            let b = rpassword::prompt_password("Repeat it: ")?;
            if a != b {
                bail!("the two passwords differ: nothing was changed");
            }
            a
        }
    };
    if pw.is_empty() {
        bail!("the new password is empty: nothing was changed");
    }
    Ok(pw)
}
