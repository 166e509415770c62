//! `hooks install|remove`: the APT hook, a backup before APT changes packages.
//!
//! APT runs its hooks as root, in its own environment (HOME=/root, a bare PATH), whoever
//! installed them. So the hook records, when it is installed, whose backup it makes — the
//! user (the one who ran sudo, or `--user`), their home, configuration file and folders (the
//! keys and the device id are in the configuration folder) — and runs Lifeboat as that user,
//! with exactly that environment, whatever APT's is. It runs `backups new --unattended`: no
//! repository or key is made, and a unit that stores nothing it had fails the backup with one
//! line on APT's output. A failed backup does not stop the upgrade (`|| true`): refusing
//! security updates because a backup failed would leave the device worse off.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use lifeboat_engine::credentials::{Credentials, UnattendedOpen};
use lifeboat_engine::{Dirs, Lifeboat, LoadedConfig, Unit};

use crate::context::Context;
use crate::exit;
use crate::output::outln;

const APT_HOOK: &str = "/etc/apt/apt.conf.d/80lifeboat";

/// The PATH the hook gives Lifeboat (a command unit's programs are found in it).
const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn hook_file() -> PathBuf {
    std::env::var_os("LIFEBOAT_APT_HOOK").map(PathBuf::from).unwrap_or_else(|| APT_HOOK.into())
}

/// Whose backup the hook makes.
struct Owner {
    name: String,
    uid: u32,
    who: nix::unistd::User,
    /// Their Lifeboat, as the hook will run it: their folders and configuration.
    app: Lifeboat,
}

/// The user the hook serves: `--user`, else the one who ran sudo, else the one installing.
fn owner(ctx: &Context, config: Option<&Path>, user: Option<&str>) -> Result<Owner> {
    let me = nix::unistd::geteuid();
    let sudo = std::env::var("SUDO_USER").ok().filter(|u| !u.is_empty() && me.is_root());
    let wanted = user.map(str::to_string).or(sudo);
    let who = match &wanted {
        Some(n) => nix::unistd::User::from_name(n)
            .with_context(|| format!("looking up user {n}"))?
            .ok_or_else(|| anyhow::anyhow!("no user named {n} on this device: give --user NAME"))?,
        None => nix::unistd::User::from_uid(me)
            .context("looking up the user running lifeboat")?
            .ok_or_else(|| anyhow::anyhow!("the user running lifeboat (uid {me}) has no name: give --user NAME"))?,
    };
    // The one installing keeps their folders as their environment gives them; anyone else's
    // are their defaults, from their home (sudo's environment is not theirs).
    let dirs = if who.uid == me { ctx.dirs().clone() } else { Dirs::of_user(who.dir.clone(), who.uid.is_root()) };
    // Read as they read it: their configuration is theirs to name files in.
    let loaded = as_user(&who, || Ok(LoadedConfig::load(config, &dirs)?)).with_context(|| {
        format!("{} cannot read the configuration: the hook would run with none; give --config FILE", who.name)
    })?;
    // Checked without the metadata cache: as root, it would leave files of root's in their home.
    let app = Lifeboat::new(dirs, loaded, Credentials { password_file: None, prompt: None }).without_cache();
    Ok(Owner { name: who.name.clone(), uid: who.uid.as_raw(), who, app })
}

/// Runs `f` with the effective user, group and groups of `who` when root installs a hook for
/// another user: their configuration names what the checks read (a location's
/// `password_file`, a unit's paths) and where they connect (its server), and root's
/// permissions are not theirs to use — a `password_file` of root's would go to their server.
fn as_user<T>(who: &nix::unistd::User, f: impl FnOnce() -> Result<T>) -> Result<T> {
    use nix::unistd::{getegid, geteuid, getgrouplist, getgroups, setegid, seteuid, setgroups};
    let me = geteuid();
    if !me.is_root() || who.uid == me {
        return f();
    }
    let name = std::ffi::CString::new(who.name.as_str())?;
    let theirs = getgrouplist(&name, who.gid).with_context(|| format!("looking up the groups of {}", who.name))?;
    let (groups, egid) = (getgroups().context("looking up root's groups")?, getegid());
    setgroups(&theirs)
        .and_then(|()| setegid(who.gid))
        .and_then(|()| seteuid(who.uid))
        .with_context(|| format!("checking as {}", who.name))?;
    let result = f();
    if let Err(e) = seteuid(me).and_then(|()| setegid(egid)).and_then(|()| setgroups(&groups)) {
        // Nothing more is done as someone else.
        eprintln!("lifeboat: cannot become root again after checking as {}: {e}", who.name);
        std::process::exit(exit::FAILED);
    }
    result
}

/// `word` as one shell word inside APT's double-quoted string: single-quoted when it needs
/// quoting. Quotes and backslashes cannot be written there at all.
fn sh_word(word: &str) -> Result<String> {
    if word.chars().any(|c| matches!(c, '\'' | '"' | '\\') || c.is_control()) {
        bail!("{word:?} cannot be written into an APT hook (it holds a quote, a backslash or a control character)");
    }
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c)) {
        Ok(word.to_string())
    } else {
        Ok(format!("'{word}'"))
    }
}

/// `text` as APT reads it back from inside its double quotes: APT decodes `%XX` there (`%27`
/// is `'`, which would close the shell's quoting), so each `%` is written `%25`.
fn apt_value(text: &str) -> String {
    text.replace('%', "%25")
}

fn sh_path(p: &Path) -> Result<String> {
    sh_word(p.to_str().ok_or_else(|| anyhow::anyhow!("{} is not UTF-8: it cannot go in an APT hook", p.display()))?)
}

/// A program of util-linux or coreutils, by its full path: APT's PATH is not ours to trust.
fn program(name: &str) -> Result<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("{name} is not installed: the APT hook needs it to run as the user it serves"))
}

/// `path` as the hook will name it (symlinks resolved), refused when anyone but its owner and
/// root can change what it is: APT runs the hook as root, and the hook runs what it names as
/// its owner — a program, a configuration (whose command units and hooks are shell commands)
/// or a folder another user could replace would let them run their own commands as the owner
/// (as root, for a hook of root's). A missing path is judged by the folder it would be made in.
fn trusted(path: &Path, owner: &Owner, what: &str) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let real = match path.canonicalize() {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e).with_context(|| format!("resolving {}", path.display())),
    };
    let gid = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(owner.uid)).ok().flatten().map(|u| u.gid.as_raw());
    let mut child_owner_trusted = true;
    for p in real.ancestors() {
        let Ok(m) = std::fs::metadata(p) else {
            // Not there yet: whoever can make it decides what it holds.
            child_owner_trusted = false;
            continue;
        };
        let mode = m.mode();
        let sticky_dir = m.is_dir() && mode & 0o1000 != 0 && child_owner_trusted && p != real;
        let ours = m.uid() == 0 || m.uid() == owner.uid;
        let group_ok = mode & 0o020 == 0 || sticky_dir || m.gid() == 0 || (owner.uid != 0 && Some(m.gid()) == gid);
        let others_ok = mode & 0o002 == 0 || sticky_dir;
        if !(ours && group_ok && others_ok) {
            let whose = if owner.uid == 0 { "root".to_string() } else { format!("{} and root", owner.name) };
            bail!(
                "{what} {} can be changed by someone other than {whose} ({} is owned by uid {}, mode {:o}): the \
                 hook runs it as {} before every upgrade; keep it where only {whose} can write",
                real.display(),
                p.display(),
                m.uid(),
                mode & 0o7777,
                owner.name
            );
        }
        child_owner_trusted = ours;
    }
    Ok(real)
}

/// The command the hook runs: Lifeboat as the owner, in exactly their environment.
fn hook_command(
    lifeboat: &Path,
    config: Option<&Path>,
    owner: &Owner,
    units: &[String],
    location: Option<&str>,
) -> Result<String> {
    let mut words = Vec::new();
    if owner.uid != 0 {
        words.extend([sh_path(&program("runuser")?)?, "-u".into(), sh_word(&owner.name)?, "--".into()]);
    }
    words.extend([sh_path(&program("env")?)?, "-i".into()]);
    for (var, value) in owner.app.dirs().environment() {
        words.push(sh_word(&format!("{var}={}", value.to_str().unwrap_or_default()))?);
    }
    words.push(format!("PATH={HOOK_PATH}"));
    words.extend([sh_path(lifeboat)?, "--quiet".into()]);
    if let Some(c) = config {
        words.extend(["--config".into(), sh_path(c)?]);
    }
    words.extend(["backups", "new", "--unattended", "--name", "'Before package upgrade'"].map(String::from));
    for u in units {
        words.extend(["--unit".into(), sh_word(u)?]);
    }
    if let Some(l) = location {
        words.extend(["--location".into(), sh_word(l)?]);
    }
    Ok(words.join(" "))
}

fn hook_text(
    lifeboat: &Path,
    config_file: Option<&Path>,
    owner: &Owner,
    units: &[String],
    location: Option<&str>,
) -> Result<String> {
    let dirs = owner.app.dirs();
    let config = match config_file {
        Some(c) => c.display().to_string(),
        None => format!("none (the built-in defaults; {} once made)", dirs.config_file().display()),
    };
    Ok(format!(
        "// Installed by `lifeboat hooks install apt`; remove with `lifeboat hooks remove apt`.\n\
         // A backup of {user}'s (uid {uid}) as {user}: home {home}, configuration {config},\n\
         // keys and device id in {keys}. A failed backup prints `lifeboat: … FAILED: why`\n\
         // and does not stop the upgrade.\n\
         DPkg::Pre-Invoke {{ \"{run}\"; }};\n",
        user = owner.name,
        uid = owner.uid,
        home = dirs.home.display(),
        keys = dirs.config.display(),
        run = apt_value(&format!(
            "if [ -x {} ]; then {} || true; fi",
            sh_path(lifeboat)?,
            hook_command(lifeboat, config_file, owner, units, location)?
        )),
    ))
}

pub fn install(
    ctx: &Context,
    config: Option<&Path>,
    hook: &str,
    units: &[String],
    location: Option<&str>,
    user: Option<&str>,
) -> Result<i32> {
    if hook != "apt" {
        bail!("no hook named {hook:?}: the hooks are apt");
    }
    let owner = owner(ctx, config, user)?;
    let app = &owner.app;
    let chosen = app.select_units(units)?;
    let loc = app.location(location)?;
    // Said now, not at the first upgrade, when nobody reads it; checked as the owner.
    let warnings = as_user(&owner.who, || Ok(warnings(&owner, &chosen, units, location, loc)))?;
    let bin = std::env::current_exe().context("finding this program's path")?;
    // What the hook runs, and the folders it runs it in, only its owner and root can change.
    let bin = trusted(&bin, &owner, "this program")?;
    let config_file = app.config().file.as_deref().map(|c| trusted(c, &owner, "the configuration")).transpose()?;
    for (_, dir) in app.dirs().environment() {
        trusted(&dir, &owner, "the folder")?;
    }
    trusted(&app.dirs().config, &owner, "the configuration folder")?;
    let text = hook_text(&bin, config_file.as_deref(), &owner, units, location)?;
    let dest = hook_file();
    write_hook(&dest, &text)
        .with_context(|| format!("writing {} (installing an APT hook needs root)", dest.display()))?;
    let what = match units {
        [] => "every unit".to_string(),
        [one] => format!("unit {one}"),
        _ => format!("units {}", units.join(", ")),
    };
    outln!(
        "Installed {}: before APT changes packages, {what} of {} (home {}) backed up to location {}, as {}.",
        dest.display(),
        owner.name,
        app.dirs().home.display(),
        loc.name,
        owner.name
    )?;
    for text in &warnings {
        eprintln!("warning: {text}");
    }
    Ok(if warnings.is_empty() { exit::OK } else { exit::WARNINGS })
}

/// Writes the hook file whole, readable by all and writable by its owner alone (0644, whatever
/// the umask or the mode of a file already there: APT runs it as root), and in one step: APT
/// never reads half a hook, which it would refuse with every command.
fn write_hook(dest: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt;
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".lifeboat-hook-").tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

/// What the install warns about: a hook that cannot open the backups, a unit it will not
/// back up whole, a configuration its owner cannot read.
fn warnings(
    owner: &Owner,
    chosen: &[Unit],
    units: &[String],
    location: Option<&str>,
    loc: &lifeboat_engine::Location,
) -> Vec<String> {
    let app = &owner.app;
    let mut said = Vec::new();
    let mut warn = |text: String| said.push(text);
    let by_hand = if owner.uid == nix::unistd::geteuid().as_raw() {
        format!("`lifeboat backups new --location {}`", loc.name)
    } else {
        format!("`sudo -u {} lifeboat backups new --location {}`", owner.name, loc.name)
    };
    match app.opens_unattended(location) {
        Ok(UnattendedOpen::Opens) => {}
        Ok(UnattendedOpen::NoRepository) => warn(format!(
            "there is no repository in {} yet, and the hook makes none (nobody would see its recovery key): \
             make the first backup once by hand, {by_hand}; until then each upgrade prints that its backup FAILED.",
            loc.describe()
        )),
        Ok(UnattendedOpen::NeedsPassword) => warn(format!(
            "the hook cannot open the backups in {} on its own (they need a password, and APT gives none): run \
             `lifeboat key add --device --location {}` once as {}, or set repository_password_file in the location; \
             until then each upgrade prints that its backup FAILED.",
            loc.describe(),
            loc.name,
            owner.name
        )),
        Err(e) => warn(format!("could not check that the hook can open the backups: {}", exit::sentence(&e))),
    }
    for text in unit_warnings(owner, chosen, !units.is_empty()) {
        warn(text);
    }
    said
}

/// What the hook's backups of these units will not hold, told at install: a unit none of
/// whose paths exist for the owner (each upgrade's backup fails), and, for a user other than
/// root, paths they cannot read. The hook backs up as its owner, with their permissions: files
/// only root can read (a system-wide Home Assistant's /usr/share/hassio) need a hook of root's.
fn unit_warnings(owner: &Owner, units: &[Unit], named: bool) -> Vec<String> {
    let mut said = Vec::new();
    for u in units.iter().filter(|u| u.commands.is_none() && !u.paths.is_empty()) {
        let existing: Vec<&PathBuf> = u.paths.iter().map(|(_, p)| p).filter(|p| p.symlink_metadata().is_ok()).collect();
        if existing.is_empty() && (named || !u.optional) {
            let paths: Vec<String> = u.paths.iter().map(|(_, p)| p.display().to_string()).collect();
            said.push(format!(
                "unit {}: none of its paths exist for {} ({}): each upgrade prints that its backup FAILED until one \
                 does.",
                u.name,
                owner.name,
                paths.join(", ")
            ));
            continue;
        }
        if owner.uid == 0 {
            continue;
        }
        for p in existing.into_iter().filter(|p| !readable(p)) {
            said.push(format!(
                "unit {}: {} cannot read {}, and the hook backs up as {}: it is left out of the hook's backups (a \
                 warning each time); to back it up, install the hook for root, `lifeboat hooks install apt --user \
                 root --config FILE`, with a configuration of root's that names it.",
                u.name,
                owner.name,
                p.display(),
                owner.name
            ));
        }
    }
    said
}

/// Whether the owner can read `path` (and list it, a folder): checks run as them (see
/// [`as_user`]), so the kernel answers for the effective user.
fn readable(path: &Path) -> bool {
    use nix::unistd::AccessFlags;
    let wanted = if path.is_dir() { AccessFlags::R_OK | AccessFlags::X_OK } else { AccessFlags::R_OK };
    nix::unistd::faccessat(None, path, wanted, nix::fcntl::AtFlags::AT_EACCESS).is_ok()
}

pub fn remove(hook: &str) -> Result<i32> {
    if hook != "apt" {
        bail!("no hook named {hook:?}: the hooks are apt");
    }
    let dest = hook_file();
    match std::fs::remove_file(&dest) {
        Ok(()) => outln!("Removed {}.", dest.display())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => outln!("No APT hook was installed.")?,
        Err(e) => return Err(e).with_context(|| format!("removing {}", dest.display())),
    }
    Ok(exit::OK)
}
