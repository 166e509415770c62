mod backup_files;
mod backups;
mod browse;
mod daemon;
mod documentation;
mod hooks;
mod key;
mod locations;
mod logs;
mod maintenance;
mod schedules;
mod setup;
mod units;

use anyhow::Result;
use lifeboat_engine::{Devices, RestoreMode};

use crate::args::{
    BackupsCommand, Cli, Command, HooksCommand, KeyCommand, LocationsCommand, SchedulesCommand, UnitsCommand,
};
use crate::context::Context;
use crate::output::outln;

pub fn run(cli: Cli) -> Result<i32> {
    // These describe the program itself: no configuration is read.
    match cli.command {
        Command::Completions { shell } => return documentation::completions(shell),
        Command::ManPages { folder } => return documentation::man_pages(&folder),
        _ => {}
    }
    let cli_config = cli.config.clone();
    // An unattended run asks nothing, even where APT (or cron) leaves it a terminal.
    let unattended = matches!(cli.command, Command::Backups(BackupsCommand::New { unattended: true, .. }));
    let ctx = Context::new(cli.config, cli.password_file, cli.quiet, cli.no_cache, unattended)?;
    // A restore stopped midway left a mix of old and restored files: every command says so
    // until it is finished or undone (a restore refuses to start instead).
    if !matches!(cli.command, Command::Backups(BackupsCommand::Restore { .. })) {
        if let Some(e) = ctx.interrupted_restore() {
            eprintln!("note: {}", crate::exit::describe(&anyhow::Error::new(e)).1);
        }
    }
    match cli.command {
        Command::Backups(b) => match b {
            BackupsCommand::New { name, units, location, tags, json, unattended } => {
                backups::new(&ctx, name, units, location.as_deref(), tags, json, unattended)
            }
            BackupsCommand::List { location, host, device, all_devices, tags, json } => {
                let devices = crate::args::devices(device.as_deref(), all_devices).unwrap_or(Devices::All);
                backups::list(&ctx, location.as_deref(), host.as_deref(), &devices, &tags, json)
            }
            BackupsCommand::Pin { slug, location } => backups::pin(&ctx, &slug, &location.pick(true), true),
            BackupsCommand::Unpin { slug, location } => backups::pin(&ctx, &slug, &location.pick(true), false),
            BackupsCommand::Forget { keep, tags, dry_run, no_prune, device, all_devices, location, json } => {
                let policy = lifeboat_engine::RetentionPolicy {
                    keep_last: keep.keep_last,
                    keep_within: keep.keep_within,
                    keep_daily: keep.keep_daily,
                    keep_weekly: keep.keep_weekly,
                    keep_monthly: keep.keep_monthly,
                };
                let devices = crate::args::devices(device.as_deref(), all_devices).unwrap_or_default();
                let order = lifeboat_engine::app::ForgetOrder { policy, tags, dry_run, prune: !no_prune, devices };
                backups::forget(&ctx, order, location.as_deref(), json)
            }
            BackupsCommand::Copy { slug, to, location, json } => {
                backups::copy(&ctx, &slug, location.location.as_deref(), &to, json)
            }
            BackupsCommand::Info { slug, location, json } => backups::info(&ctx, &slug, &location.pick(false), json),
            BackupsCommand::Export { slug, output, encrypt, no_encryption, location } => {
                backup_files::export(&ctx, &slug, &output, encrypt, no_encryption, &location.pick(true))
            }
            BackupsCommand::Import { file, location, json } => {
                backup_files::import(&ctx, &file, location.as_deref(), json)
            }
            BackupsCommand::Restore { resume: true, location, json, .. } => {
                // The interrupted restore was decided already: whoever's backup it was, it
                // runs again as it was asked.
                let (slug, mut order) = ctx.take_interrupted_restore(false)?;
                let found = ctx.pick_backup(&slug, &location.pick(true))?;
                order.from_device = Some(found.device);
                backups::restore(&ctx, &slug, order, &location.pick(true), json)
            }
            BackupsCommand::Restore { undo: true, location, json, .. } => {
                let (slug, order) = ctx.take_interrupted_restore(true)?;
                backups::restore(&ctx, &slug, order, &location.pick(true), json)
            }
            BackupsCommand::Restore {
                slug,
                from_file,
                with_config,
                devices,
                units,
                target,
                dry_run,
                mode,
                map_paths,
                no_safety_backup,
                trust_dates,
                paths,
                from_device,
                force,
                location,
                json,
                ..
            } => {
                let order = lifeboat_engine::app::RestoreOrder {
                    units,
                    target,
                    dry_run,
                    mode: match mode {
                        crate::args::Mode::Merge => RestoreMode::Merge,
                        crate::args::Mode::Replace => RestoreMode::Replace,
                    },
                    map_paths,
                    home: None,
                    // A backup file restores onto a new device: there is nothing of it to keep.
                    safety_backup: from_file.is_none() && !no_safety_backup,
                    devices,
                    paths,
                    trust_dates,
                    from_device,
                    force,
                };
                match from_file {
                    Some(file) => backup_files::restore(&ctx, &file, order, with_config, json),
                    None => backups::restore(&ctx, &slug.unwrap_or_default(), order, &location.pick(true), json),
                }
            }
            BackupsCommand::Ls { slug, path, recursive, long, location, json } => {
                browse::ls(&ctx, &slug, path.as_deref(), recursive, long, &location.pick(false), json)
            }
            BackupsCommand::Find { patterns, unit, location, device, all_devices, json } => {
                let devices = crate::args::devices(device.as_deref(), all_devices).unwrap_or(Devices::All);
                browse::find(&ctx, &patterns, unit.as_deref(), location.as_deref(), &devices, json)
            }
            BackupsCommand::Diff { a, b, unit, by_content, location, json } => {
                browse::diff(&ctx, &a, b.as_deref(), unit.as_deref(), by_content, &location.pick(false), json)
            }
            BackupsCommand::Dump { slug, path, location } => browse::dump(&ctx, &slug, &path, &location.pick(false)),
            BackupsCommand::Remove { slug, location } => backups::remove(&ctx, &slug, &location.pick(true)),
        },
        Command::Units(UnitsCommand::List { json }) => units::list(&ctx, json),
        Command::Setup { from_backup, location, dry_run, json } => {
            setup::from_backup(&ctx, &from_backup, location.as_deref(), dry_run, json)
        }
        Command::Locations(l) => match l {
            LocationsCommand::List { json } => locations::list(&ctx, json),
            LocationsCommand::Check { name, trust_host_key } => {
                locations::check(&ctx, &name, trust_host_key.as_deref())
            }
            LocationsCommand::Add { name, kind, path, set, default, like, trust_host_key } => {
                locations::add(&ctx, &name, &kind, path, &set, default, like, trust_host_key.as_deref())
            }
            LocationsCommand::Remove { name } => locations::remove(&ctx, &name),
        },
        Command::Units(UnitsCommand::Use { profile }) => units::use_profile(&ctx, &profile),
        Command::Estimate { units, location, json } => maintenance::estimate(&ctx, units, location.as_deref(), json),
        Command::Check { read_data, repair, location, json } => {
            maintenance::check(&ctx, read_data, repair, location.as_deref(), json)
        }
        Command::Mount { mountpoint, location, device, all_devices } => {
            let devices = crate::args::devices(device.as_deref(), all_devices);
            browse::mount(&ctx, &mountpoint, location.as_deref(), devices.as_ref())
        }
        Command::Prune { location, json } => maintenance::prune(&ctx, location.as_deref(), json),
        Command::Unlock { location } => maintenance::unlock(&ctx, location.as_deref()),
        Command::Serve { listen } => daemon::serve(&ctx, cli_config, listen),
        Command::Token => daemon::token(&ctx),
        Command::Passwd { from_file, remove } => daemon::passwd(&ctx, from_file, remove),
        Command::Events { limit, json } => daemon::events(&ctx, limit, json),
        Command::Schedules(SchedulesCommand::List { json }) => schedules::list(&ctx, cli_config, json),
        Command::Schedules(SchedulesCommand::Run { name, json }) => schedules::run(&ctx, cli_config, &name, json),
        Command::Hooks(HooksCommand::Install { hook, units, location, user }) => {
            hooks::install(&ctx, cli_config.as_deref(), &hook, &units, location.as_deref(), user.as_deref())
        }
        Command::Hooks(HooksCommand::Remove { hook }) => hooks::remove(&hook),
        Command::Logs { list: true, json, .. } => logs::list(&ctx, json),
        Command::Logs { slug, restore, .. } => logs::show(&ctx, slug.as_deref(), restore),
        Command::Key(k) => match k {
            KeyCommand::List { location, json } => key::list(&ctx, location.as_deref(), json),
            KeyCommand::Add { new_password_file, device: false, label, location } => {
                key::add(&ctx, new_password_file, &label, location.as_deref())
            }
            KeyCommand::Add { device: true, label, location, .. } => key::add_device(&ctx, &label, location.as_deref()),
            KeyCommand::Remove { id, location } => key::remove(&ctx, &id, location.as_deref()),
            KeyCommand::Recovery { location } => key::recovery(&ctx, location.as_deref()),
        },
        Command::Completions { .. } | Command::ManPages { .. } => unreachable!("answered before the context is made"),
    }
}

pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

/// A command a signal stopped (Ctrl-C, SIGTERM; see crate::interrupt): one line saying what it
/// left, its event (`job_cancelled`), exit 130. `Ok(None)` when `result` was not interrupted.
fn interrupted<T>(
    ctx: &Context,
    progress: &lifeboat_engine::Progress,
    result: &lifeboat_engine::EngineResult<T>,
    (what, left): (&str, &str),
    location: Option<&str>,
) -> Option<i32> {
    let Err(e) = result else { return None };
    if !progress.is_cancelled() && e.kind() != lifeboat_engine::ErrorKind::Interrupted {
        return None;
    }
    eprintln!("lifeboat: interrupted: {left}");
    let about = lifeboat_daemon::events::About { location: location.map(str::to_string), ..Default::default() };
    daemon::record_event(
        ctx,
        lifeboat_daemon::events::kind::CANCELLED,
        "error",
        &format!("{what} was interrupted"),
        &about,
    );
    Some(crate::exit::INTERRUPTED)
}
