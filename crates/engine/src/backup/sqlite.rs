//! `sqlite` units: a consistent copy of a live database through SQLite's online backup API,
//! taken while the application keeps writing, is what gets backed up.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// How long to wait for a writer holding the database before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Copies the database at `db` into a new database file at `into`. The copy is one read
/// transaction of the source (all pages in one step), so it is a state the application
/// committed, never a mix; writers in WAL mode are not blocked meanwhile.
pub(crate) fn copy(db: &Path, into: &Path) -> Result<(), String> {
    let src = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| format!("cannot open the database: {e}"))?;
    src.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
    let mut dst = Connection::open(into).map_err(|e| format!("cannot create the copy {}: {e}", into.display()))?;
    {
        let backup = Backup::new(&src, &mut dst).map_err(|e| format!("cannot start the copy: {e}"))?;
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match backup.step(-1).map_err(|e| format!("copy failed: {e}"))? {
                StepResult::Done => break,
                StepResult::More => continue,
                // The busy handler already waited; a writer holds the database for longer.
                StepResult::Busy | StepResult::Locked if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => return Err("the database stayed locked by a writer for a minute".into()),
            }
        }
    }
    // A standalone file: no journal or WAL left beside the copy.
    dst.pragma_update(None, "journal_mode", "DELETE").map_err(|e| e.to_string())?;
    Ok(())
}
