//! What every command needs: the application layer, made from the user's folders, the
//! configuration and where secrets come from (the password file, the environment, a prompt
//! when someone can answer).

use std::io::IsTerminal;
use std::ops::Deref;
use std::path::PathBuf;

use anyhow::Result;
use lifeboat_engine::credentials::{self, Credentials};
use lifeboat_engine::Lifeboat;

pub struct Context {
    app: Lifeboat,
    pub quiet: bool,
}

impl Deref for Context {
    type Target = Lifeboat;
    fn deref(&self) -> &Lifeboat {
        &self.app
    }
}

impl Context {
    pub fn new(
        config: Option<PathBuf>,
        password_file: Option<PathBuf>,
        quiet: bool,
        no_cache: bool,
        unattended: bool,
    ) -> Result<Context> {
        let interactive = !unattended && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        let credentials =
            Credentials { password_file, prompt: interactive.then(|| Box::new(prompt) as Box<credentials::Prompt>) };
        let app = Lifeboat::load(config.as_deref(), credentials)?.on_created(Box::new(|location, c| {
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
        }));
        let app = if no_cache { app.without_cache() } else { app };
        Ok(Context { app, quiet })
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
