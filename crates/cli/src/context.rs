//! What every command needs: the user's folders, the configuration, and a way to open a
//! location's repository with the right secret.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use lifeboat_engine::credentials::{self, Credentials, Opened};
use lifeboat_engine::{location, unit, Dirs, LoadedConfig, Location, Unit};
use lifeboat_repository::Repository;

pub struct Context {
    pub dirs: Dirs,
    pub config: LoadedConfig,
    pub password_file: Option<PathBuf>,
    pub quiet: bool,
}

impl Context {
    pub fn new(config: Option<PathBuf>, password_file: Option<PathBuf>, quiet: bool) -> Result<Context> {
        let dirs = Dirs::from_env()?;
        let config = LoadedConfig::load(config.as_deref(), &dirs)?;
        Ok(Context { dirs, config, password_file, quiet })
    }

    pub fn location(&self, name: Option<&str>) -> Result<Location> {
        Ok(location::location(&self.config.config, &self.dirs, name)?)
    }

    pub fn locations(&self) -> Vec<Location> {
        location::locations(&self.config.config, &self.dirs)
    }

    /// Every unit; the folders of local locations and of Lifeboat's logs are never backed up.
    pub fn units(&self) -> Result<Vec<Unit>> {
        let mut skip: Vec<PathBuf> = self.locations().into_iter().filter_map(|l| l.path).collect();
        skip.push(self.dirs.logs.clone());
        Ok(unit::units(&self.config.config, &self.dirs, &skip)?)
    }

    fn credentials(&self) -> Credentials {
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        Credentials {
            password_file: self.password_file.clone(),
            prompt: interactive.then(|| Box::new(prompt) as Box<credentials::Prompt>),
        }
    }

    /// The password of a backup file: --password-file, else $LIFEBOAT_PASSWORD, else asked
    /// (when someone can answer). `None` when there is none.
    pub fn file_password(&self, question: &str, confirm: bool) -> Result<Option<String>> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("the password file {} cannot be read: {e}", path.display()))?;
            let pw = text.trim_end_matches(['\n', '\r']).to_string();
            if pw.is_empty() {
                anyhow::bail!("the password file {} is empty: write the password into it", path.display());
            }
            return Ok(Some(pw));
        }
        if let Ok(pw) = std::env::var("LIFEBOAT_PASSWORD") {
            if !pw.is_empty() {
                return Ok(Some(pw));
            }
        }
        Ok(self.credentials().prompt.and_then(|p| p(question, confirm)))
    }

    /// Opens the repository of a location; with `create`, makes it on first use and tells the
    /// person how to keep the key.
    pub fn open(&self, location: &Location, create: bool) -> Result<Repository> {
        let Opened { repo, created } = credentials::open(location, &self.dirs, &self.credentials(), create)?;
        if let Some(c) = created {
            eprintln!("Created a new encrypted repository in {}.", location.describe());
            match &c.device_key_file {
                Some(f) => eprintln!(
                    "No password was given, so a random key was made and saved in {} (readable only by you).",
                    f.display()
                ),
                None => eprintln!("It is opened with the password you gave."),
            }
            eprintln!("Recovery key (your emergency kit; write it down and keep it away from this device):");
            eprintln!("    {}", c.recovery_key);
            eprintln!("Show it again any time with `lifeboat key recovery`.");
        }
        Ok(repo)
    }
}

fn prompt(question: &str, confirm: bool) -> Option<String> {
    loop {
        let first = rpassword::prompt_password(question).ok()?;
        if first.is_empty() {
            return None;
        }
        if !confirm {
            return Some(first);
        }
        let again = rpassword::prompt_password("Repeat it: ").ok()?;
        if again == first {
            return Some(first);
        }
        eprintln!("The two passwords differ; try again.");
    }
}
