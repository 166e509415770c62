use anyhow::Result;
use lifeboat_engine::{runlog, EngineError};

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::format;
use crate::output::{out, outln};

/// `logs [SLUG] [--restore]`: a run's log; `logs` alone, the last run's.
pub fn show(ctx: &Context, slug: Option<&str>, restore: bool) -> Result<i32> {
    let dir = &ctx.dirs().logs;
    let operation = if restore { "restore" } else { "backup" };
    let Some(path) = runlog::find(dir, slug, operation) else {
        let what = match slug {
            Some(s) if restore => format!("of a restore of backup {s}"),
            Some(s) => format!("of backup {s}"),
            None => "yet".to_string(),
        };
        return Err(EngineError::NoLog { what, dir: dir.clone() }.into());
    };
    let text = std::fs::read_to_string(&path)?;
    eprintln!("{}", path.display());
    out!("{text}")?;
    Ok(exit::OK)
}

/// `logs --list`: every log kept on this device, newest first.
pub fn list(ctx: &Context, json: bool) -> Result<i32> {
    let logs = runlog::list(&ctx.dirs().logs);
    if json {
        print_json(&logs)?;
    } else if logs.is_empty() {
        outln!("No logs yet in {}.", ctx.dirs().logs.display())?;
    } else {
        let rows: Vec<Vec<String>> = logs
            .iter()
            .map(|l| {
                let when = jiff::civil::DateTime::strptime("%Y%m%d-%H%M%S", &l.started)
                    .map(|d| d.strftime("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|_| l.started.clone());
                vec![when, l.operation.clone(), l.slug.clone(), format::bytes(l.size)]
            })
            .collect();
        out!("{}", format::table(&["STARTED", "OPERATION", "BACKUP", "SIZE"], &rows))?;
    }
    Ok(exit::OK)
}
