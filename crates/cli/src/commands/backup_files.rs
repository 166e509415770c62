//! `backups export`, `backups import`, `backups restore --from-file`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use lifeboat_engine::app::{FileEncryption, Pick, RestoreOrder};
use lifeboat_engine::{Progress, RunLog};

use super::print_json;
use crate::context::Context;
use crate::exit;
use crate::format;
use crate::output::outln;
use crate::progress_view::ProgressView;

fn is_stdio(p: &Path) -> bool {
    p.as_os_str() == "-"
}

pub fn export(
    ctx: &Context,
    slug: &str,
    output: &Path,
    encrypt: bool,
    no_encryption: bool,
    pick: &Pick,
) -> Result<i32> {
    let found = ctx.pick_backup(slug, pick)?;
    let snap = &found.snapshot;
    let encryption = if snap.protected {
        ctx.backup_file_password("Password for the backup file: ", false)?
            .map_or(FileEncryption::NotChosen, FileEncryption::Password)
    } else if no_encryption {
        FileEncryption::Unencrypted
    } else {
        match ctx.backup_file_password(
            "This backup is not password protected. A password to encrypt its file with: ",
            true,
        )? {
            Some(p) => FileEncryption::Password(p),
            None if encrypt => {
                return Err(lifeboat_engine::EngineError::BackupFilePassword {
                    file: output.display().to_string(),
                    detail: "--encrypt needs a password".into(),
                }
                .into())
            }
            None => FileEncryption::NotChosen,
        }
    };
    let encrypted = matches!(encryption, FileEncryption::Password(_));
    let plan = ctx.plan_export(&found, encryption, "--encrypt or --no-encryption")?;
    let len = plan.len();
    let progress = Arc::new(Progress::default());
    crate::interrupt::cancel_on_signals(progress.cancel.clone());
    let view = ProgressView::start(progress.clone(), ctx.quiet || is_stdio(output));
    let result = if is_stdio(output) {
        let stdout = std::io::stdout();
        let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
        plan.write(&mut out, &progress)
    } else {
        // Written under a temporary name and renamed when complete: a file with the asked
        // name is always a whole one.
        let dir = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        remove_abandoned_exports(dir);
        let tmp = tempfile::Builder::new()
            .prefix(EXPORT_PREFIX)
            .tempfile_in(dir)
            .with_context(|| format!("creating a file in {}", dir.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file());
        let written = plan.write(&mut out, &progress);
        drop(out);
        match written {
            Ok(()) => {
                tmp.as_file().sync_all().with_context(|| format!("writing {}", output.display()))?;
                tmp.persist(output).with_context(|| format!("writing {}", output.display()))?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    };
    view.finish();
    // The file written so far was a temporary one, removed as the export ended.
    let left = if is_stdio(output) {
        "the backup file on standard output is incomplete".to_string()
    } else {
        format!("no file was written ({} was not made)", output.display())
    };
    let what = format!("export of backup {}", snap.slug);
    if let Some(code) = super::interrupted(ctx, &progress, &result, (&what, &left), Some(&found.location.name)) {
        return Ok(code);
    }
    result?;
    if !is_stdio(output) && !ctx.quiet {
        let how = if encrypted { "encrypted with a password" } else { "not encrypted" };
        outln!("Wrote backup {} to {} ({}, {how}).", snap.slug, output.display(), format::bytes(len))?;
    }
    Ok(exit::OK)
}

/// Partial exports an earlier run left when it was killed (a removed temporary file is all a
/// normal failure leaves): removed once they are a day old, which no running export is.
fn remove_abandoned_exports(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let day = std::time::Duration::from_secs(24 * 3600);
    for entry in entries.flatten() {
        let partial = entry.file_name().to_str().is_some_and(|n| n.starts_with(EXPORT_PREFIX));
        let old = entry
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        if partial && old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

const EXPORT_PREFIX: &str = ".lifeboat-export-";

fn open_input(file: &Path) -> Result<(Box<dyn Read>, String)> {
    if is_stdio(file) {
        return Ok((Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())), "(standard input)".into()));
    }
    let f = File::open(file).with_context(|| format!("backup file {}: cannot be opened", file.display()))?;
    Ok((Box::new(BufReader::with_capacity(1 << 20, f)), file.display().to_string()))
}

/// The password for encrypted unit files: only asked for when the file has some.
fn password_for(ctx: &Context, file: &Path, encrypted: bool) -> Result<Option<String>> {
    if !encrypted {
        return Ok(None);
    }
    match ctx.backup_file_password("Password of the backup file: ", false)? {
        Some(pw) => Ok(Some(pw)),
        None => Err(lifeboat_engine::EngineError::BackupFilePassword {
            file: file.display().to_string(),
            detail: "it is encrypted: give its password".into(),
        }
        .into()),
    }
}

/// Whether a file's units are encrypted, from its manifest (a second, short read of a
/// regular file; from standard input, a password is asked for only when one is at hand).
fn encrypted(file: &Path) -> Result<bool> {
    if is_stdio(file) {
        return Ok(std::env::var_os("LIFEBOAT_PASSWORD").is_some());
    }
    let (input, label) = open_input(file)?;
    let m = lifeboat_engine::read_manifest(input, &label)?;
    Ok(m.units.iter().any(|u| u.encrypted))
}

pub fn import(ctx: &Context, file: &Path, location: Option<&str>, json: bool) -> Result<i32> {
    let passphrase = password_for(ctx, file, encrypted(file)?)?;
    let (input, label) = open_input(file)?;
    let progress = Arc::new(Progress::default());
    crate::interrupt::cancel_on_signals(progress.cancel.clone());
    let view = ProgressView::start(progress.clone(), ctx.quiet);
    let result = ctx.import(input, &label, location, passphrase.as_deref(), &progress);
    view.finish();
    let left = "no backup was imported; what was already stored is reused by the next import";
    if let Some(code) = super::interrupted(ctx, &progress, &result, (&format!("import of {label}"), left), location) {
        return Ok(code);
    }
    let (loc, outcome) = result?;

    if json {
        let mut v = serde_json::to_value(lifeboat_engine::BackupInfo::new(&outcome.id, &outcome.snapshot, &loc.name))?;
        v["imported"] = outcome.imported.into();
        v["new_bytes"] = outcome.new_bytes.into();
        print_json(&v)?;
    } else if outcome.imported {
        outln!(
            "Imported backup {} \"{}\" into {}: {} new.",
            outcome.snapshot.slug,
            outcome.snapshot.name,
            loc.name,
            format::bytes(outcome.new_bytes)
        )?;
    } else {
        outln!("Location {} already holds backup {}.", loc.name, outcome.snapshot.slug)?;
    }
    Ok(exit::OK)
}

pub fn restore(ctx: &Context, file: &Path, order: RestoreOrder, with_config: bool, json: bool) -> Result<i32> {
    let passphrase = password_for(ctx, file, encrypted(file)?)?;
    let order = RestoreOrder { target: super::backups::absolute(order.target)?, ..order };
    let dry_run = order.dry_run;
    let (input, label) = open_input(file)?;
    let progress = Arc::new(Progress::default());
    crate::interrupt::cancel_on_signals(progress.cancel.clone());
    let view = ProgressView::start(progress.clone(), ctx.quiet || dry_run);
    let printer = view.printer();
    let result = ctx.restore_file(input, &label, order, passphrase, &progress, |name| {
        RunLog::create(&ctx.dirs().logs, "restore", name, Some(printer))
    });
    view.finish();
    let what = format!("restore from {label}");
    if let Some(code) = super::interrupted(ctx, &progress, &result, (&what, super::backups::RESTORE_INTERRUPTED), None)
    {
        return Ok(code);
    }
    let (manifest, report) = result?;
    if dry_run {
        if json {
            print_json(&report)?;
        } else {
            super::backups::print_plan(&report)?;
        }
        return Ok(exit::OK);
    }
    // The file's configuration is the sender's: taken as `setup --from-backup FILE` takes it
    // (checked with the normal parser, nothing that runs commands or opens the daemon,
    // secrets asked for again), merged into this device's file.
    let mut config_taken = None;
    if with_config {
        match ctx.setup_offer_from_file(file) {
            Ok(offer) => config_taken = Some((ctx.apply_setup(&offer, &Default::default())?, offer.left_out)),
            Err(lifeboat_engine::EngineError::NoConfiguration { .. }) => {
                eprintln!("lifeboat: this backup file carries no configuration (only full backups do).")
            }
            Err(e) => return Err(e.into()),
        }
    }
    if json {
        print_json(&report)?;
    } else {
        super::backups::print_restored(&report, &format!("backup {} in {label}", manifest.backup.slug))?;
        if let Some((applied, left_out)) = config_taken {
            super::setup::say_applied(&applied, &ctx.config().target_file)?;
            for l in &left_out {
                outln!("Left out: {l}.")?;
            }
        }
    }
    Ok(super::backups::restored_code(&report))
}
