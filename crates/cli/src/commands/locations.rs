use std::io::IsTerminal;

use anyhow::Result;
use lifeboat_engine::app::{LikeState, Likeness, RepositoryHealth};
use lifeboat_engine::config_edit;

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::format;
use crate::output::{out, outln};

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
    out!("{}", format::table(&["NAME", "KIND", "WHERE", "REACHABLE", "FREE", "BACKUPS", "SIZE"], &table))?;
    for r in &rows {
        if let Some(p) = &r.problem {
            outln!("{}: {p}", r.name)?;
        }
    }
    outln!("* the default location")?;
    Ok(exit::OK)
}

/// Records the server's host key when its fingerprint is the one given.
fn trust(ctx: &Context, name: &str, fingerprint: &str) -> Result<()> {
    ctx.location(Some(name))?.trust_host_key(fingerprint)?;
    outln!("Trusted the host key {} of location {name}'s server.", fingerprint.trim())?;
    Ok(())
}

pub fn check(ctx: &Context, name: &str, trust_host_key: Option<&str>) -> Result<i32> {
    if let Some(fingerprint) = trust_host_key {
        trust(ctx, name, fingerprint)?;
    }
    let c = match ctx.check_location(name) {
        Ok(c) => c,
        Err(e) => {
            // A server not known yet: on a terminal, its key is offered to be trusted.
            let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
            let Some(host) = lifeboat_engine::unknown_host(&e).filter(|_| interactive) else { return Err(e.into()) };
            eprintln!("The server {} of location {name} is not known yet.", host.server);
            eprintln!("Its host key's fingerprint is {}.", host.fingerprint);
            eprintln!("Compare it with the server's own (`ssh-keygen -lf` of its public host key, on the server).");
            if !super::backups::ask("Trust this key? [y/N] ")? {
                return Err(e.into());
            }
            trust(ctx, name, &host.fingerprint)?;
            ctx.check_location(name)?
        }
    };
    outln!("{}: {} ({})", c.name, c.place, c.kind)?;
    outln!("  reachable: yes")?;
    outln!("  writable: yes")?;
    if let Some(free) = c.free {
        outln!("  free: {}", format::bytes(free))?;
    }
    match &c.like {
        Some(LikeState::Shared { other }) => outln!("  like {other}: same blob ids and chunking")?,
        Some(LikeState::OtherNotMade { other }) => {
            outln!("  like {other}: {other} holds no repository yet; the one made there will be made like this one")?
        }
        Some(LikeState::Differs { other }) => outln!(
            "  like {other}: NOT shared — this repository was made with its own blob ids and chunking, which an \
             existing repository cannot change (copies to and from {other} send all data again)"
        )?,
        None => {}
    }
    match c.repository {
        RepositoryHealth::None => {
            outln!("  repository: none yet (the first backup creates it)")?;
            Ok(exit::OK)
        }
        RepositoryHealth::Healthy { backups } => {
            outln!("  repository: healthy, {}", crate::format::count(backups, "backup", "backups"))?;
            Ok(exit::OK)
        }
        RepositoryHealth::Problems { count } => {
            outln!(
                "  repository: {}; run `lifeboat check --location {name}` for the list",
                crate::format::count(count, "problem", "problems")
            )?;
            Ok(exit::DAMAGE)
        }
    }
}

#[allow(clippy::too_many_arguments)] // one per option of `locations add`
pub fn add(
    ctx: &Context,
    name: &str,
    kind: &str,
    path: Option<String>,
    set: &[String],
    default: bool,
    like: Option<String>,
    trust_host_key: Option<&str>,
) -> Result<i32> {
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
    if let Some(other) = &like {
        keys.push(("like".into(), other.clone()));
    }
    let file = &ctx.config().target_file;
    // A repository already there cannot take another's ids and chunking: refused before
    // anything is written.
    let likeness = match &like {
        Some(_) => {
            let preview = config_edit::preview_add_location(file, name, &keys, default)?;
            let lc = preview.location.get(name).ok_or_else(|| anyhow::anyhow!("location {name} was not added"))?;
            Some(ctx.check_like(name, lc)?)
        }
        None => None,
    };
    config_edit::add_location(file, name, &keys, default)?;
    if let Some(fingerprint) = trust_host_key {
        // Nothing is kept when the key is not the one given.
        let trusted =
            lifeboat_engine::LoadedConfig::load(Some(file), ctx.dirs()).map_err(anyhow::Error::from).and_then(|now| {
                let app = lifeboat_engine::Lifeboat::new(
                    ctx.dirs().clone(),
                    now,
                    lifeboat_engine::credentials::Credentials { password_file: None, prompt: None },
                );
                Ok(app.location(Some(name))?.trust_host_key(fingerprint)?)
            });
        if let Err(e) = trusted {
            let _ = config_edit::remove_location(file, name);
            return Err(e);
        }
        outln!("Trusted the host key {} of location {name}'s server.", fingerprint.trim())?;
    }
    outln!("Added location {name} to {}. Check it with `lifeboat locations check {name}`.", file.display())?;
    if let (Some(other), Some(likeness)) = (&like, likeness) {
        match likeness {
            Likeness::WhenMade => outln!(
                "Its repository, when made, takes the blob ids and chunking of {other}'s: copies between them send \
                 only what is missing."
            )?,
            Likeness::Already => outln!("Its repository already has the blob ids and chunking of {other}'s.")?,
            Likeness::OtherMadeLikeThis => outln!(
                "{other} holds no repository yet: the one made there takes the blob ids and chunking of {name}'s."
            )?,
            Likeness::NotAsked => {}
        }
    }
    // Say where backups go now, and that earlier ones stay in view where they are.
    let now = lifeboat_engine::LoadedConfig::load(Some(file), ctx.dirs())?;
    let after = lifeboat_engine::Lifeboat::new(
        ctx.dirs().clone(),
        now,
        lifeboat_engine::credentials::Credentials { password_file: None, prompt: None },
    );
    let default_now = after.default_location_name();
    if default_now == name {
        outln!("New backups go to {name}, the default location now.")?;
    } else {
        outln!(
            "New backups still go to {default_now}, the default location; `lifeboat backups new --location {name}` \
             backs up to {name}, and `lifeboat locations add … --default` makes a location the default."
        )?;
    }
    let others: Vec<&str> = after.locations().iter().map(|l| l.name.as_str()).filter(|l| *l != name).collect();
    if !others.is_empty() {
        outln!("Backups in {} stay listed and restorable.", others.join(", "))?;
    }
    Ok(exit::OK)
}

pub fn remove(ctx: &Context, name: &str) -> Result<i32> {
    let file = &ctx.config().target_file;
    config_edit::remove_location(file, name)?;
    outln!("Removed location {name} from {}; the backups in it were not touched.", file.display())?;
    Ok(exit::OK)
}
