//! Exit codes. 0 success; 1 failure; 2 bad usage or configuration; 3 finished with warnings;
//! 4 check found damage; 5 wrong password or no way to get one; 6 repository busy.

use lifeboat_engine::EngineError;
use lifeboat_repository::RepoError;

pub const OK: i32 = 0;
pub const FAILED: i32 = 1;
pub const USAGE: i32 = 2;
pub const WARNINGS: i32 = 3;
pub const DAMAGE: i32 = 4;
pub const PASSWORD: i32 = 5;
pub const BUSY: i32 = 6;

/// The exit code and the one-line message for an error.
pub fn describe(e: &anyhow::Error) -> (i32, String) {
    let msg = one_line(e);
    let repo_code = |r: &RepoError| match r {
        RepoError::WrongPassword(_) | RepoError::KeySlotsDamaged { .. } | RepoError::OpenBudget { .. } => PASSWORD,
        RepoError::Locked { .. } => BUSY,
        RepoError::NoSuchSnapshot(_) | RepoError::AmbiguousSnapshot(_) | RepoError::NoSuchKey(_) => USAGE,
        _ => FAILED,
    };
    let code = if let Some(engine) = e.downcast_ref::<EngineError>() {
        match engine {
            EngineError::Config { .. }
            | EngineError::UnknownUnit { .. }
            | EngineError::UnknownLocation { .. }
            | EngineError::LocationConfig { .. }
            | EngineError::UnknownProfile { .. }
            | EngineError::UnitNotInBackup { .. }
            | EngineError::BadTarget(_)
            | EngineError::BadName { .. } => USAGE,
            EngineError::NoPassword { .. } | EngineError::PasswordFile { .. } | EngineError::EmptyPassword(_) => {
                PASSWORD
            }
            EngineError::Repo(r) => repo_code(r),
            EngineError::UnsafeBackup { .. } => DAMAGE,
            _ => FAILED,
        }
    } else if let Some(r) = e.downcast_ref::<RepoError>() {
        repo_code(r)
    } else {
        FAILED
    };
    (code, msg)
}

fn one_line(e: &anyhow::Error) -> String {
    // Our errors already say what to do; a source chain adds the system's reason.
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}
