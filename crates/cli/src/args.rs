//! The command line (DESIGN.md's contract).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lifeboat",
    version,
    about = "Back up and restore a Linux device: encrypted, deduplicated, incremental."
)]
pub struct Cli {
    /// Configuration file (default: $LIFEBOAT_CONFIG, else ~/.config/lifeboat/lifeboat.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Read the repository password from this file (else $LIFEBOAT_PASSWORD, a device key, or a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Read every backup location directly: neither use nor fill this device's metadata cache.
    #[arg(long, global = true)]
    pub no_cache: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Make, list, inspect, restore and remove backups.
    #[command(subcommand)]
    Backups(BackupsCommand),
    /// The units of the configuration.
    #[command(subcommand)]
    Units(UnitsCommand),
    /// Where backups are kept: list, check, add, remove.
    #[command(subcommand)]
    Locations(LocationsCommand),
    /// Show a location's backups as read-only folders at MOUNTPOINT (MOUNTPOINT/SLUG/… at the
    /// paths of the device that made each, MOUNTPOINT/latest the newest) until Ctrl-C,
    /// SIGTERM or `fusermount3 -u MOUNTPOINT`.
    Mount {
        mountpoint: PathBuf,
        #[arg(long)]
        location: Option<String>,
    },
    /// How much each unit holds and how much of it a backup would add.
    Estimate {
        #[arg(long = "unit", value_name = "UNIT")]
        units: Vec<String>,
        #[arg(long)]
        location: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Verify the repository; with --read-data, every stored byte.
    Check {
        #[arg(long)]
        read_data: bool,
        /// Rebuild the index from the packs (dropping damaged data, so the next backup stores
        /// it again), remove backups and key slots that cannot be read, then check again.
        #[arg(long)]
        repair: bool,
        #[arg(long)]
        location: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Reclaim the space of removed backups.
    Prune {
        #[arg(long)]
        location: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run the daemon: scheduled backups, retention, events, the HTTP API and the web page.
    Serve {
        /// Address and port to listen on (default: [daemon] listen, else 127.0.0.1:8417).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<String>,
    },
    /// Print the token that the HTTP API asks for (made on first use).
    Token,
    /// Set the password that signs in to the web page (the token always works too).
    Passwd {
        /// Read the new password from the first line of FILE instead of asking twice.
        #[arg(long, value_name = "FILE")]
        from_file: Option<PathBuf>,
        /// Remove the password: only the token signs in.
        #[arg(long, conflicts_with = "from_file")]
        remove: bool,
    },
    /// The history of what the daemon did: backups, skips and why, restores, prunes, warnings.
    Events {
        /// How many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Install or remove system hooks: `apt` makes a backup before packages are upgraded.
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Show the log of a run.
    Logs {
        /// The backup's slug (default: the last run).
        slug: Option<String>,
        #[arg(long, conflicts_with = "slug")]
        last: bool,
    },
    /// Manage the keys that open the repository.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Remove locks left by Lifeboat processes that died.
    Unlock {
        #[arg(long)]
        location: Option<String>,
    },
}

#[derive(Args, Clone)]
pub struct LocationArg {
    /// The location (default: the configured default location).
    #[arg(long)]
    pub location: Option<String>,
}

#[derive(Subcommand)]
pub enum BackupsCommand {
    /// Make a backup (all units unless --unit is given).
    New {
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "unit", value_name = "UNIT")]
        units: Vec<String>,
        #[command(flatten)]
        location: LocationArg,
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Print the new backup as a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List backups (of every location unless --location is given).
    List {
        #[command(flatten)]
        location: LocationArg,
        /// Only backups made on this host.
        #[arg(long)]
        host: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Copy a backup to another location, sending only what that location lacks.
    Copy {
        slug: String,
        /// The location to copy to.
        #[arg(long, value_name = "LOCATION")]
        to: String,
        /// The location holding the backup (default: the first that has it).
        #[command(flatten)]
        location: LocationArg,
        #[arg(long)]
        json: bool,
    },
    /// Show one backup.
    Info {
        slug: String,
        #[command(flatten)]
        location: LocationArg,
        #[arg(long)]
        json: bool,
    },
    /// Write a backup as one file in open formats (tar, zstd, age): for keeping anywhere,
    /// moving to a new device, or reading without Lifeboat.
    Export {
        slug: String,
        /// The file to write; - writes to standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Encrypt the file with a password even if the backup is not password protected.
        #[arg(long)]
        encrypt: bool,
        #[command(flatten)]
        location: LocationArg,
    },
    /// Add a backup file's backup to a location (only what it lacks is stored).
    Import {
        /// The backup file; - reads standard input.
        file: PathBuf,
        #[command(flatten)]
        location: LocationArg,
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup, in place or under --target.
    Restore {
        /// The backup (not needed with --from-file).
        #[arg(required_unless_present = "from_file")]
        slug: Option<String>,
        /// Restore from a backup file instead, with no configuration or repository needed
        /// (- reads standard input).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["no_safety_backup"])]
        from_file: Option<PathBuf>,
        /// With --from-file: also restore the Lifeboat configuration a full backup file
        /// carries (secrets are never in it; the current file is kept as .before-restore).
        #[arg(long, requires = "from_file")]
        with_config: bool,
        /// With --from-file, as root: create the device nodes the file holds.
        #[arg(long, requires = "from_file")]
        devices: bool,
        #[arg(long = "unit", value_name = "UNIT")]
        units: Vec<String>,
        /// Restore under this folder: /home/u/a lands at DIR/home/u/a.
        #[arg(long, value_name = "DIR")]
        target: Option<PathBuf>,
        /// List what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// merge: restored files win, others stay; replace: restored folders become exactly
        /// what the backup holds.
        #[arg(long, value_enum, default_value = "merge")]
        mode: Mode,
        /// Put what was under OLD under NEW instead (also absolute symlink targets). The
        /// backup's home always maps to yours.
        #[arg(long = "map-path", value_name = "OLD=NEW", value_parser = parse_map)]
        map_paths: Vec<(PathBuf, PathBuf)>,
        /// Skip the safety backup of what an in-place restore overwrites.
        #[arg(long)]
        no_safety_backup: bool,
        /// Only this file or folder of the backup (repeatable; globs allowed, and a pattern
        /// without / matches names). In place, through the same plan, dry run and safety
        /// backup; what else is in the folders along it stays.
        #[arg(long = "path", value_name = "PATH", conflicts_with = "from_file")]
        paths: Vec<String>,
        #[command(flatten)]
        location: LocationArg,
        #[arg(long)]
        json: bool,
    },
    /// List what a backup holds: one folder (the unit roots with no PATH), or all below it.
    /// Paths are as on the device that made it: ~/notes, /etc/hosts.
    Ls {
        /// A slug, a unique prefix of one, a backup's name, or latest.
        slug: String,
        path: Option<String>,
        #[arg(short, long)]
        recursive: bool,
        /// Mode, size, date and unit of each entry.
        #[arg(short, long)]
        long: bool,
        #[command(flatten)]
        location: LocationArg,
        #[arg(long)]
        json: bool,
    },
    /// Search every backup for files: each match with its versions and the backups holding
    /// each, newest first. A pattern without / matches names ('*.jpg'), else whole paths
    /// ('~/photos/**/*.jpg').
    Find {
        #[arg(required = true, value_name = "PATTERN")]
        patterns: Vec<String>,
        #[arg(long)]
        unit: Option<String>,
        #[command(flatten)]
        location: LocationArg,
        #[arg(long)]
        json: bool,
    },
    /// What changed from backup A to backup B, or to this device as it is now (what a
    /// restore of A would change).
    Diff {
        a: String,
        b: Option<String>,
        #[arg(long)]
        unit: Option<String>,
        #[command(flatten)]
        location: LocationArg,
        #[arg(long)]
        json: bool,
    },
    /// Write one file of a backup to standard output (a folder as a tar stream).
    Dump {
        slug: String,
        path: String,
        #[command(flatten)]
        location: LocationArg,
    },
    /// Remove a backup (its space is reclaimed by `lifeboat prune`).
    Remove {
        slug: String,
        #[command(flatten)]
        location: LocationArg,
    },
}

#[derive(Subcommand)]
pub enum HooksCommand {
    /// Install a hook.
    Install {
        /// `apt`: a backup of the chosen units before APT changes packages.
        hook: String,
        /// Units to back up (none: all).
        #[arg(long = "unit", value_name = "UNIT")]
        units: Vec<String>,
        #[arg(long)]
        location: Option<String>,
    },
    /// Remove a hook.
    Remove { hook: String },
}

#[derive(Subcommand)]
pub enum UnitsCommand {
    /// List the units.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a ready-made set of units to the configuration: phone, home-automation, desktop.
    Use { profile: String },
}

#[derive(Subcommand)]
pub enum LocationsCommand {
    /// List the locations: kind, whether reachable, free space, backups, size.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Check that a location is reachable and writable and its repository healthy.
    Check { name: String },
    /// Add a location to the configuration.
    Add {
        name: String,
        /// local, removable, sftp, s3, webdav, smb, dropbox, onedrive, gdrive.
        #[arg(long = "type", value_name = "KIND")]
        kind: String,
        #[arg(long)]
        path: Option<String>,
        /// Any other key of the kind (docs/CONFIG.md), e.g. --set host=nas.local.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Make it the default location.
        #[arg(long)]
        default: bool,
    },
    /// Remove a location from the configuration (its backups stay where they are).
    Remove { name: String },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// List key slots.
    List {
        #[command(flatten)]
        location: LocationArg,
        #[arg(long)]
        json: bool,
    },
    /// Add a password (asked for, or read from --new-password-file).
    Add {
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        location: LocationArg,
    },
    /// Remove a key slot by id (or a unique prefix of it).
    Remove {
        id: String,
        #[command(flatten)]
        location: LocationArg,
    },
    /// Print the recovery key: the emergency kit that opens the repository without a password.
    Recovery {
        #[command(flatten)]
        location: LocationArg,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    Merge,
    Replace,
}

fn parse_map(s: &str) -> Result<(PathBuf, PathBuf), String> {
    let (old, new) = s.split_once('=').ok_or("give OLD=NEW")?;
    if !old.starts_with('/') || !new.starts_with('/') {
        return Err("both paths must be absolute".into());
    }
    Ok((PathBuf::from(old.trim_end_matches('/')), PathBuf::from(new.trim_end_matches('/'))))
}
