//! What describes the program itself, made from the one definition of the command line so
//! that it cannot drift from it: shell completions and manual pages.

use std::path::Path;

use anyhow::{Context as _, Result};
use clap_complete::Shell;

use crate::args::{self, CompletionShell};

/// `lifeboat completions SHELL`: the script on stdout.
pub fn completions(shell: CompletionShell) -> Result<i32> {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut args::command(), "lifeboat", &mut script);
    std::io::Write::write_all(&mut std::io::stdout(), &script)?;
    Ok(0)
}

/// `lifeboat man-pages FOLDER`: lifeboat.1, and lifeboat-COMMAND[-SUBCOMMAND].1 for every
/// command that is not hidden.
pub fn man_pages(folder: &Path) -> Result<i32> {
    std::fs::create_dir_all(folder).with_context(|| format!("could not make the folder {}", folder.display()))?;
    clap_mangen::generate_to(args::command(), folder)
        .with_context(|| format!("could not write the manual pages into {}", folder.display()))?;
    let count = std::fs::read_dir(folder)
        .with_context(|| format!("could not read the folder {}", folder.display()))?
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".1")))
        .count();
    eprintln!("Wrote {} into {}.", crate::format::count(count as u64, "manual page", "manual pages"), folder.display());
    Ok(0)
}
