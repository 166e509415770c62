//! Exit codes, mapped from the engine's one classification of errors (`ErrorKind`; the table
//! is in docs/CONFIG.md, "Errors"), and the words that tell a person which command helps.

use lifeboat_engine::{ErrorKind, Remedy};

pub const OK: i32 = 0;
pub const FAILED: i32 = 1;
pub const USAGE: i32 = 2;
pub const WARNINGS: i32 = 3;
pub const DAMAGE: i32 = 4;
pub const PASSWORD: i32 = 5;
pub const CONFLICT: i32 = 6;
pub const UNAVAILABLE: i32 = 7;
pub const INTERRUPTED: i32 = 130;

/// The one exit code of each kind of error.
pub fn code(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::NotFound | ErrorKind::BadInput => USAGE,
        ErrorKind::WrongKey => PASSWORD,
        ErrorKind::LocationUnavailable => UNAVAILABLE,
        ErrorKind::Damaged => DAMAGE,
        ErrorKind::Conflict => CONFLICT,
        ErrorKind::Interrupted => INTERRUPTED,
        ErrorKind::Internal => FAILED,
    }
}

/// A remedy as the command line says it: the end of the error's sentence.
pub fn remedy(r: Remedy) -> &'static str {
    match r {
        Remedy::CreateRepository => ": run `lifeboat backups new` to create one",
        Remedy::Check => "; run `lifeboat check`",
        Remedy::CheckData => "; run `lifeboat check --read-data`",
        Remedy::Repair => "; run `lifeboat check --repair`",
        Remedy::RetryPassword => ": try again, or use the recovery key from your emergency kit",
        Remedy::ThenRepair => ", then run `lifeboat check --repair`",
        Remedy::ThenCheck => ", then run `lifeboat check`",
        Remedy::Unlock => ", or if it died, remove the stale lock with `lifeboat unlock`",
        Remedy::ListBackups => ": see `lifeboat backups list`",
        Remedy::ListKeys => ": see `lifeboat key list`",
        Remedy::ListUnits => " (see `lifeboat units list`)",
        Remedy::GivePassword => ": give --password-file FILE or set LIFEBOAT_PASSWORD",
        Remedy::GiveRepositoryPassword => {
            ": give --password-file FILE or set LIFEBOAT_PASSWORD; for schedules and hooks, keep a key on this \
             device with `lifeboat key add --device` (or set repository_password_file in the location)"
        }
        Remedy::RestoreElsewhere => ": restore with --target DIR to get what can be read",
        Remedy::RestoreElsewhereOrUnsafe => ": restore with --target DIR, or with --no-safety-backup if you are sure",
        Remedy::NameLocation => ": see `lifeboat backups list`, or name it with --location",
        Remedy::ListFiles => ": see what it holds with `lifeboat backups ls`",
        Remedy::ResumeOrUndo => {
            ": finish it with `lifeboat backups restore --resume`, or put back everything it changed with \
             `lifeboat backups restore --undo`"
        }
        Remedy::Resume => ": finish it with `lifeboat backups restore --resume`",
    }
}

/// The exit code and the one-line message for an error.
pub fn describe(e: &anyhow::Error) -> (i32, String) {
    let (kind, fix) = lifeboat_engine::classify(e.as_ref());
    let mut msg = one_line(e);
    if let Some(r) = fix {
        msg.push_str(remedy(r));
    }
    if let Some(host) = lifeboat_engine::unknown_host(e.as_ref()) {
        msg.push_str(&trust_hint(&host));
    }
    (code(kind), msg)
}

/// How to trust an unknown server's key: the end of the error's sentence.
pub fn trust_hint(host: &lifeboat_engine::UnknownHost) -> String {
    format!(" with `lifeboat locations check {} --trust-host-key {}`", host.location, host.fingerprint)
}

/// An engine error as one sentence, ending with what helps.
pub fn sentence(e: &lifeboat_engine::EngineError) -> String {
    let mut msg = e.to_string().replace('\n', " ");
    if let Some(r) = e.remedy() {
        msg.push_str(remedy(r));
    }
    if let Some(host) = lifeboat_engine::unknown_host(e) {
        msg.push_str(&trust_hint(&host));
    }
    msg
}

fn one_line(e: &anyhow::Error) -> String {
    // Our errors already say what went wrong; a source chain adds the system's reason.
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    let text = parts.join(": ");
    // A configuration error points at the place in the file (the line, and a caret under the
    // mistake): that picture only reads on lines of its own.
    let points_into_file = e.chain().any(|c| {
        matches!(c.downcast_ref::<lifeboat_engine::EngineError>(), Some(lifeboat_engine::EngineError::Config { .. }))
    });
    if points_into_file && text.contains('|') {
        return text.trim_end().to_string();
    }
    text.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exit codes here and the daemon's HTTP statuses are the ones docs/CONFIG.md
    /// promises, kind by kind: one table for both front ends.
    #[test]
    fn every_kind_has_the_documented_exit_code_and_status() {
        let doc = include_str!("../../../docs/CONFIG.md");
        for kind in ErrorKind::ALL {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", kind.as_str())))
                .unwrap_or_else(|| panic!("docs/CONFIG.md has no row for {}", kind.as_str()));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(cells[2], code(kind).to_string(), "exit code of {}", kind.as_str());
            let status = lifeboat_daemon::http_status(kind).as_u16();
            assert_eq!(cells[3], status.to_string(), "HTTP status of {}", kind.as_str());
        }
    }
}
