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
    /// Read the repository password from this file (tried after the location's own
    /// repository_password and device key; else $LIFEBOAT_PASSWORD, else a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Show what happens underneath: each step, and the details of a failure at a location
    /// (its requests and the libraries' own errors). Without it, warnings are one plain line.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// Read every backup location directly: neither use nor fill this device's metadata cache.
    #[arg(long, global = true)]
    pub no_cache: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The exit codes, shown under every command's `--help` (docs/CONFIG.md has the table).
pub const EXIT_CODES: &str = "Exit codes: 0 done; 1 failed (the message says why); 2 bad input or not found; \
3 done with warnings; 4 damage found; 5 no key opens the repository; 6 busy or in conflict (a lock, no room); \
7 the location cannot be used now; 130 interrupted.";

/// What every command's SLUG may be.
const SLUG_HELP: &str = "The backup: a slug, a unique prefix of one, a backup's name, or latest";

/// The command line, with the exit codes under every command's `--help`.
pub fn command() -> clap::Command {
    fn with_codes(cmd: clap::Command) -> clap::Command {
        cmd.after_help(EXIT_CODES).mut_subcommands(with_codes)
    }
    with_codes(<Cli as clap::CommandFactory>::command())
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
    /// Set up this device from a backup: the units, schedules and locations of the device
    /// that made it are added to this device's configuration (never its secrets, which are
    /// asked for again on a terminal; nothing that runs commands).
    Setup {
        /// The backup: a slug, a unique prefix, a name or latest (in a location), or a backup
        /// file (.tar).
        #[arg(long, value_name = "SLUG|FILE")]
        from_backup: String,
        /// The location that holds the backup (default: wherever it is).
        #[arg(long)]
        location: Option<String>,
        /// Only show what would be added.
        #[arg(long)]
        dry_run: bool,
        /// Print what was offered (and added) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The schedules of the configuration: list them, or run one now as the daemon does.
    #[command(subcommand)]
    Schedules(SchedulesCommand),
    /// Show a location's backups as read-only folders at MOUNTPOINT (MOUNTPOINT/SLUG/… at the
    /// paths of the device that made each, MOUNTPOINT/latest the newest) until Ctrl-C,
    /// SIGTERM or `fusermount3 -u MOUNTPOINT`.
    Mount {
        /// An empty folder to show the backups in.
        mountpoint: PathBuf,
        /// The location whose backups to show (default: the default location).
        #[arg(long)]
        location: Option<String>,
        /// Only the backups of the device of this name, MOUNTPOINT/latest its newest
        /// (default: every device's backups, MOUNTPOINT/latest this device's newest).
        #[arg(long, value_name = "NAME", conflicts_with = "all_devices")]
        device: Option<String>,
        /// Every device's backups, MOUNTPOINT/latest the newest of any device.
        #[arg(long)]
        all_devices: bool,
    },
    /// How much each unit holds and how much of it a backup would add.
    Estimate {
        /// Only this unit (repeatable; default: every unit).
        #[arg(long = "unit", value_name = "UNIT")]
        units: Vec<String>,
        /// Count as new what this location does not hold yet (default: the default location).
        #[arg(long)]
        location: Option<String>,
        /// Print the estimate as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify the repository; with --read-data, every stored byte.
    Check {
        /// Also read and verify every stored byte (slower: reads the whole repository).
        #[arg(long)]
        read_data: bool,
        /// Rebuild the index from the packs (dropping damaged data, so the next backup stores
        /// it again), remove backups and key slots that cannot be read, then check again.
        #[arg(long)]
        repair: bool,
        /// The location to check (default: the default location).
        #[arg(long)]
        location: Option<String>,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Reclaim the space of removed backups.
    Prune {
        /// The location to prune (default: the default location).
        #[arg(long)]
        location: Option<String>,
        /// Print what was reclaimed as JSON.
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
        /// Print the events as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install or remove system hooks: `apt` makes a backup before packages are upgraded.
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Show the log of a run.
    Logs {
        /// The backup whose log to show (the log of the run that made it; default: the last run).
        slug: Option<String>,
        /// The log of the last run, whatever it was (the default without SLUG).
        #[arg(long, conflicts_with_all = ["slug", "list"])]
        last: bool,
        /// List the logs kept on this device, newest first: date, operation, backup, size.
        #[arg(long, conflicts_with = "slug")]
        list: bool,
        /// With SLUG: the log of the restore of that backup instead of the backup's own.
        #[arg(long, requires = "slug")]
        restore: bool,
        /// With --list: print the list as JSON.
        #[arg(long, requires = "list")]
        json: bool,
    },
    /// Manage the keys that open the repository.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Remove locks left by Lifeboat processes that died.
    Unlock {
        /// The location whose stale locks to remove (default: the default location).
        #[arg(long)]
        location: Option<String>,
    },
    /// Print the Tab-completion script for a shell: `lifeboat completions bash >
    /// ~/.local/share/bash-completion/completions/lifeboat` (the package installs all three).
    Completions {
        /// The shell to complete for.
        shell: CompletionShell,
    },
    /// Write the manual pages (lifeboat.1 and one per command, lifeboat-backups-restore.1 …)
    /// into FOLDER; the package is built with them.
    #[command(hide = true)]
    ManPages {
        /// The folder to write them into (made when missing).
        folder: PathBuf,
    },
}

/// The shells `lifeboat completions` writes for.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args, Clone)]
pub struct LocationArg {
    /// The location (default: wherever the backup is; for new backups, the default location).
    #[arg(long)]
    pub location: Option<String>,
}

/// Where a backup named on the command line is looked for, and among whose backups.
#[derive(Args, Clone)]
pub struct WhichArgs {
    /// The location (default: wherever the backup is; a command that changes something asks
    /// for this when the backup is in several).
    #[arg(long)]
    pub location: Option<String>,
    /// Among the backups of the device of this name (default: `latest` is this device's
    /// newest; a slug may be any device's).
    #[arg(long, value_name = "NAME", conflicts_with = "all_devices")]
    pub device: Option<String>,
    /// Among every device's backups: `latest` is the newest of any device.
    #[arg(long)]
    pub all_devices: bool,
}

impl WhichArgs {
    /// How the engine is to look for the backup; `acting`: the command changes something.
    pub fn pick(&self, acting: bool) -> lifeboat_engine::app::Pick {
        lifeboat_engine::app::Pick {
            location: self.location.clone(),
            except: None,
            devices: devices(self.device.as_deref(), self.all_devices),
            acting,
        }
    }
}

/// `--device NAME` and `--all-devices`, when either is given.
pub fn devices(device: Option<&str>, all: bool) -> Option<lifeboat_engine::Devices> {
    (device.is_some() || all).then(|| lifeboat_engine::Devices::from_args(device, all))
}

#[derive(Subcommand)]
pub enum BackupsCommand {
    /// Make a backup (all units unless --unit is given).
    New {
        /// A name to find the backup by (default: the date and the units).
        #[arg(long)]
        name: Option<String>,
        /// Only this unit (repeatable): a partial backup. Default: every unit, a full backup.
        #[arg(long = "unit", value_name = "UNIT")]
        units: Vec<String>,
        /// The location to back up to (default: the default location).
        #[arg(long)]
        location: Option<String>,
        /// A label to find the backup by later (repeatable): `backups list --tag TAG`.
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Print the new backup as a JSON object.
        #[arg(long)]
        json: bool,
        /// Nobody is there (hooks, timers, cron): asks nothing, makes no repository where
        /// there is none (nor a key), and fails (exit 1, one line "… FAILED: why") when a unit
        /// stores no files while its previous backup held some, or when none of a named or
        /// non-optional unit's paths exist.
        #[arg(long)]
        unattended: bool,
    },
    /// List backups (of every location unless --location is given).
    List {
        /// Only the backups of this location (default: every location).
        #[arg(long)]
        location: Option<String>,
        /// Only backups made on this host.
        #[arg(long)]
        host: Option<String>,
        /// Only the backups of the device of this name (default: every device's).
        #[arg(long, value_name = "NAME", conflicts_with = "all_devices")]
        device: Option<String>,
        /// Every device's backups (the default, said outright).
        #[arg(long)]
        all_devices: bool,
        /// Only backups with this tag (repeatable: all of them).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Print the backups as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Keep a backup: retention and `backups forget` never remove a pinned backup.
    Pin {
        #[arg(help = SLUG_HELP)]
        slug: String,
        #[command(flatten)]
        location: WhichArgs,
    },
    /// Let retention and `backups forget` remove a backup again.
    Unpin {
        #[arg(help = SLUG_HELP)]
        slug: String,
        #[command(flatten)]
        location: WhichArgs,
    },
    /// Remove the backups that the --keep rules do not keep (pinned ones always stay), then
    /// reclaim their space. The rules are those of a schedule's retention (docs/CONFIG.md).
    Forget {
        #[command(flatten)]
        keep: KeepArgs,
        /// Only backups with this tag (repeatable); others are neither counted nor removed.
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// List what would be removed and kept; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not reclaim the space now (a later `lifeboat prune` does).
        #[arg(long)]
        no_prune: bool,
        /// Count and remove the backups of the device of this name (default: this device's
        /// only; another device's backups are its own retention's).
        #[arg(long, value_name = "NAME", conflicts_with = "all_devices")]
        device: Option<String>,
        /// Count and remove every device's backups together.
        #[arg(long)]
        all_devices: bool,
        /// The location (default: the default location).
        #[arg(long)]
        location: Option<String>,
        /// Print what was (or would be) removed and kept as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy a backup to another location, sending only what that location lacks.
    Copy {
        #[arg(help = SLUG_HELP)]
        slug: String,
        /// The location to copy to.
        #[arg(long, value_name = "LOCATION")]
        to: String,
        #[command(flatten)]
        location: LocationArg,
        /// Print the copied backup as a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show one backup.
    Info {
        #[arg(help = SLUG_HELP)]
        slug: String,
        #[command(flatten)]
        location: WhichArgs,
        /// Print the backup as a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write a backup as one file in open formats (tar, zstd, age): for keeping anywhere,
    /// moving to a new device, or reading without Lifeboat.
    Export {
        #[arg(help = SLUG_HELP)]
        slug: String,
        /// The file to write; - writes to standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Encrypt the file with a password even if the backup is not password protected (the
        /// password is asked for, or taken from --password-file or LIFEBOAT_PASSWORD). Without
        /// this or --no-encryption, the file of a backup that is not password protected is
        /// encrypted with a password asked for on a terminal, and refused elsewhere.
        #[arg(long, conflicts_with = "no_encryption")]
        encrypt: bool,
        /// Write the file of a backup that is not password protected unencrypted: anyone who
        /// gets the file can read what the backup holds.
        #[arg(long)]
        no_encryption: bool,
        #[command(flatten)]
        location: WhichArgs,
    },
    /// Add a backup file's backup to a location (only what it lacks is stored).
    Import {
        /// The backup file; - reads standard input.
        file: PathBuf,
        /// The location to add it to (default: the default location).
        #[arg(long)]
        location: Option<String>,
        /// Print the imported backup as a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup, in place or under --target.
    Restore {
        /// The backup: a slug, a unique prefix of one, a backup's name, or latest (not needed
        /// with --from-file).
        #[arg(required_unless_present_any = ["from_file", "resume", "undo"])]
        slug: Option<String>,
        /// Finish the restore that was interrupted while putting files in place (it runs
        /// again, with what it was asked).
        #[arg(long, conflicts_with_all = ["slug", "from_file", "undo", "dry_run"])]
        resume: bool,
        /// Put back everything the interrupted restore changed, from its safety backup.
        #[arg(long, conflicts_with_all = ["slug", "from_file", "dry_run"])]
        undo: bool,
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
        /// Only this unit (repeatable; default: every unit of the backup).
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
        /// Restore in place a backup another device made, whose name this is: its files
        /// replace this device's (asked on a terminal; refused without it otherwise).
        #[arg(long, value_name = "NAME")]
        from_device: Option<String>,
        /// Take a file whose size and date match the backup's as unchanged, without reading
        /// it to compare its content (faster; a file damaged with its date intact stays so).
        #[arg(long)]
        trust_dates: bool,
        /// Restore a database in place even while another process has it open for writing
        /// (what that process writes afterwards may be lost).
        #[arg(long)]
        force: bool,
        /// Only this file or folder of the backup (repeatable; globs allowed, and a pattern
        /// without / matches names). In place, through the same plan, dry run and safety
        /// backup; what else is in the folders along it stays.
        #[arg(long = "path", value_name = "PATH", conflicts_with = "from_file")]
        paths: Vec<String>,
        #[command(flatten)]
        location: WhichArgs,
        /// Print the plan or what was restored as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List what a backup holds: one folder (the unit roots with no PATH), or all below it.
    /// Paths are as on the device that made it: ~/notes, /etc/hosts.
    Ls {
        #[arg(help = SLUG_HELP)]
        slug: String,
        /// The folder to list, as on the device: ~/notes, /etc (default: the unit roots).
        path: Option<String>,
        /// Everything below the folder, not only what is in it.
        #[arg(short, long)]
        recursive: bool,
        /// Mode, size, date and unit of each entry.
        #[arg(short, long)]
        long: bool,
        #[command(flatten)]
        location: WhichArgs,
        /// Print the entries as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Search every backup for files: each match with its versions and the backups holding
    /// each, newest first. A pattern without / matches names ('*.jpg'), else whole paths
    /// ('~/photos/**/*.jpg').
    Find {
        /// A name ('*.jpg') or a path pattern ('~/photos/**/*.jpg'); several: any of them.
        #[arg(required = true, value_name = "PATTERN")]
        patterns: Vec<String>,
        /// Only in this unit.
        #[arg(long)]
        unit: Option<String>,
        /// Only the backups of this location (default: every location).
        #[arg(long)]
        location: Option<String>,
        /// Only the backups of the device of this name (default: every device's).
        #[arg(long, value_name = "NAME", conflicts_with = "all_devices")]
        device: Option<String>,
        /// Every device's backups (the default, said outright).
        #[arg(long)]
        all_devices: bool,
        /// Print the matches as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// What changed from backup A to backup B, or to this device as it is now (what a
    /// restore of A would change).
    Diff {
        /// The older backup: a slug, a unique prefix of one, a backup's name, or latest.
        a: String,
        /// The newer backup (default: this device as it is now).
        b: Option<String>,
        /// Only this unit.
        #[arg(long)]
        unit: Option<String>,
        /// Against the device: read every file whose size and date match the backup's and
        /// compare its content too (finds damage that kept its date; reads nothing from the
        /// location).
        #[arg(long, conflicts_with = "b")]
        by_content: bool,
        #[command(flatten)]
        location: WhichArgs,
        /// Print the changes as a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write one file of a backup to standard output (a folder as a tar stream).
    Dump {
        #[arg(help = SLUG_HELP)]
        slug: String,
        /// The file or folder, as on the device: ~/notes/todo.txt.
        path: String,
        #[command(flatten)]
        location: WhichArgs,
    },
    /// Remove a backup (its space is reclaimed by `lifeboat prune`).
    Remove {
        #[arg(help = SLUG_HELP)]
        slug: String,
        #[command(flatten)]
        location: WhichArgs,
    },
}

/// The rules of `backups forget`, those of a schedule's retention.
#[derive(Args, Clone, Default)]
pub struct KeepArgs {
    /// Keep the N newest backups.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep every backup made in the last DAYS days.
    #[arg(long, value_name = "DAYS")]
    pub keep_within: Option<u32>,
    /// Keep the newest backup of each of the N newest days that have one.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the N newest weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the N newest months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
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
        /// The location to back up to (default: the default location).
        #[arg(long)]
        location: Option<String>,
        /// Whose backup the hook makes: it runs as this user, with their home, configuration
        /// and keys (default: the user who ran sudo, $SUDO_USER, else the one installing).
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
    /// Remove a hook.
    Remove {
        /// The hook to remove: `apt`.
        hook: String,
    },
}

#[derive(Subcommand)]
pub enum UnitsCommand {
    /// List the units.
    List {
        /// Print the units as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Add a ready-made set of units to the configuration: phone, home-automation, desktop.
    Use {
        /// phone, home-automation or desktop.
        profile: String,
    },
}

#[derive(Subcommand)]
pub enum SchedulesCommand {
    /// List the schedules: when each runs, where to, its last run and how it went, its next.
    List {
        /// Print the schedules as a JSON array (as `GET /api/schedules`).
        #[arg(long)]
        json: bool,
    },
    /// Run a schedule now as the daemon would: its conditions at each location, its backup,
    /// its retention, its events. Waits for the backups.
    Run {
        /// The schedule's name.
        name: String,
        /// Print what happened at each location as a JSON array.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum LocationsCommand {
    /// List the locations: kind, whether reachable, free space, backups, size.
    List {
        /// Print the locations as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Check that a location is reachable and writable and its repository healthy.
    Check {
        /// The location's name (see `lifeboat locations list`).
        name: String,
        /// Trust the SFTP server's host key if its fingerprint is this one (as
        /// `ssh-keygen -lf` of the server's public host key prints it): it is recorded in the
        /// location's known_hosts file. On a terminal, an unknown server's key is offered.
        #[arg(long, value_name = "SHA256:…")]
        trust_host_key: Option<String>,
    },
    /// Add a location to the configuration.
    Add {
        /// A name for it: letters, digits, '-' and '_'.
        name: String,
        /// local, removable, sftp, s3, webdav, smb, dropbox, onedrive, gdrive.
        #[arg(long = "type", value_name = "KIND")]
        kind: String,
        /// The folder (local, removable, smb), the path on the server (sftp, webdav, cloud
        /// drives) or the prefix in the bucket (s3).
        #[arg(long)]
        path: Option<String>,
        /// Any other key of the kind (docs/CONFIG.md), e.g. --set host=nas.local (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Make it the default location.
        #[arg(long)]
        default: bool,
        /// Make its repository, when it is created, with the blob ids and chunking of
        /// location OTHER's (same owner): copies between the two send only what is missing,
        /// and their backups compare by content id.
        #[arg(long, value_name = "OTHER")]
        like: Option<String>,
        /// Trust the SFTP server's host key if its fingerprint is this one (as
        /// `ssh-keygen -lf` of the server's public host key prints it): it is recorded in the
        /// location's known_hosts file, and the location is not added otherwise.
        #[arg(long, value_name = "SHA256:…")]
        trust_host_key: Option<String>,
    },
    /// Remove a location from the configuration (its backups stay where they are).
    Remove {
        /// The location's name.
        name: String,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// List key slots.
    List {
        /// The location (default: the default location).
        #[arg(long)]
        location: Option<String>,
        /// Print the key slots as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Add a password (asked for, or read from --new-password-file), or with --device a key
    /// kept on this device, so that scheduled backups and hooks open the repository unattended.
    Add {
        /// Read the new password from the first line of FILE instead of asking twice.
        #[arg(long, value_name = "FILE", conflicts_with = "device")]
        new_password_file: Option<PathBuf>,
        /// A random key saved on this device (readable by this user only) instead of a password.
        #[arg(long)]
        device: bool,
        /// A note shown by `key list`: whose key it is, or where it is kept.
        #[arg(long, default_value = "")]
        label: String,
        /// The location (default: the default location).
        #[arg(long)]
        location: Option<String>,
    },
    /// Remove a key slot by id (or a unique prefix of it).
    Remove {
        /// The key slot's id, or a unique prefix of it (see `lifeboat key list`).
        id: String,
        /// The location (default: the default location).
        #[arg(long)]
        location: Option<String>,
    },
    /// Print the recovery key: the emergency kit that opens the repository without a password.
    Recovery {
        /// The location (default: the default location).
        #[arg(long)]
        location: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    /// Restored files win; files the backup does not hold stay.
    Merge,
    /// Restored folders become exactly what the backup holds.
    Replace,
}

fn parse_map(s: &str) -> Result<(PathBuf, PathBuf), String> {
    let (old, new) = s.split_once('=').ok_or("give OLD=NEW")?;
    if !old.starts_with('/') || !new.starts_with('/') {
        return Err("both paths must be absolute".into());
    }
    Ok((PathBuf::from(old.trim_end_matches('/')), PathBuf::from(new.trim_end_matches('/'))))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command, option and argument says what it is for in `--help`.
    #[test]
    fn every_option_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() {
                missing.push(format!("{path} (the command itself)"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!(
                        "{path} {}",
                        arg.get_long().map(|l| format!("--{l}")).unwrap_or(id.to_uppercase())
                    ));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &path, missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no help text for:\n{}", missing.join("\n"));
    }
}
