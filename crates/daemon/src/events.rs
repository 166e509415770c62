//! The event history, in an embedded SQLite database: what the daemon did and why (backups
//! completed, failed or skipped, restores, prunes, retention removals, stale locations, stuck
//! jobs). Also read by `lifeboat events` without a running daemon.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// Kinds of events, as stored (`kind` column) and shown.
pub mod kind {
    pub const BACKUP_COMPLETED: &str = "backup_completed";
    pub const BACKUP_WARNINGS: &str = "backup_completed_with_warnings";
    pub const BACKUP_FAILED: &str = "backup_failed";
    pub const BACKUP_SKIPPED: &str = "backup_skipped";
    pub const RESTORE: &str = "restore";
    pub const RESTORE_FAILED: &str = "restore_failed";
    pub const PRUNE: &str = "prune";
    pub const RETENTION: &str = "retention_removed";
    pub const STALE: &str = "stale";
    pub const STUCK: &str = "stuck";
    pub const DELETED: &str = "backup_deleted";
    pub const CANCELLED: &str = "job_cancelled";
    pub const COPY: &str = "backup_copied";
    pub const COPY_FAILED: &str = "copy_failed";
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub id: i64,
    /// RFC 3339.
    pub time: String,
    pub kind: String,
    /// `info`, `warning` or `error`.
    pub level: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<u64>,
}

/// What is known of a new event besides its kind and message.
#[derive(Debug, Clone, Default)]
pub struct About {
    pub schedule: Option<String>,
    pub location: Option<String>,
    pub slug: Option<String>,
    pub job: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("event database {path}: {source}; remove it to start a new history")]
pub struct EventsError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

/// A scheduled run skipped at one location, tried again while its period lasts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub schedule: String,
    pub location: String,
    /// When it was skipped.
    pub since: jiff::Timestamp,
    /// Why.
    pub reason: String,
}

pub struct Events {
    db: Mutex<Connection>,
    path: PathBuf,
}

pub fn database_path(data: &Path) -> PathBuf {
    data.join("events.sqlite")
}

impl Events {
    pub fn open(path: &Path) -> Result<Events, EventsError> {
        let err = |source| EventsError { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            let _ = lifeboat_engine::paths::private_dir(dir);
        }
        // Only the owner reads the history (SQLite gives its -wal and -shm files the same
        // permissions); a database made with wider ones earlier is narrowed.
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let f =
                std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path);
            if let Ok(f) = f {
                let _ = f.set_permissions(std::fs::Permissions::from_mode(0o600));
            }
            for side in ["-wal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(side);
                let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
            }
        }
        let db = Connection::open(path).map_err(err)?;
        db.busy_timeout(std::time::Duration::from_secs(10)).map_err(err)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS events (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 time TEXT NOT NULL,
                 kind TEXT NOT NULL,
                 level TEXT NOT NULL,
                 message TEXT NOT NULL,
                 schedule TEXT, location TEXT, slug TEXT, job INTEGER);
             CREATE TABLE IF NOT EXISTS schedule_state (
                 name TEXT PRIMARY KEY,
                 last_run TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS schedule_seen (
                 name TEXT PRIMARY KEY,
                 since TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS schedule_handled (
                 name TEXT PRIMARY KEY,
                 at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS schedule_pending (
                 name TEXT NOT NULL,
                 location TEXT NOT NULL,
                 since TEXT NOT NULL,
                 reason TEXT NOT NULL,
                 PRIMARY KEY (name, location));
             CREATE TABLE IF NOT EXISTS stale_state (
                 location TEXT PRIMARY KEY,
                 reported TEXT NOT NULL);",
        )
        .map_err(err)?;
        Ok(Events { db: Mutex::new(db), path: path.to_path_buf() })
    }

    fn err(&self, source: rusqlite::Error) -> EventsError {
        EventsError { path: self.path.clone(), source }
    }

    pub fn record(&self, kind: &str, level: &str, message: &str, about: &About) -> Result<Event, EventsError> {
        let time = jiff::Timestamp::now().to_string();
        let db = self.db.lock().expect("events lock");
        db.execute(
            "INSERT INTO events (time, kind, level, message, schedule, location, slug, job)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                time,
                kind,
                level,
                message,
                about.schedule,
                about.location,
                about.slug,
                about.job.map(|j| j as i64)
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(Event {
            id: db.last_insert_rowid(),
            time,
            kind: kind.into(),
            level: level.into(),
            message: message.into(),
            schedule: about.schedule.clone(),
            location: about.location.clone(),
            slug: about.slug.clone(),
            job: about.job,
        })
    }

    /// The newest events first, at most `limit`, optionally of one kind.
    pub fn list(&self, limit: u32, kind: Option<&str>) -> Result<Vec<Event>, EventsError> {
        let db = self.db.lock().expect("events lock");
        let mut stmt = db
            .prepare(
                "SELECT id, time, kind, level, message, schedule, location, slug, job FROM events
                 WHERE (?1 IS NULL OR kind = ?1) ORDER BY id DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![kind, limit], |r| {
                Ok(Event {
                    id: r.get(0)?,
                    time: r.get(1)?,
                    kind: r.get(2)?,
                    level: r.get(3)?,
                    message: r.get(4)?,
                    schedule: r.get(5)?,
                    location: r.get(6)?,
                    slug: r.get(7)?,
                    job: r.get::<_, Option<i64>>(8)?.map(|j| j as u64),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub fn last_run(&self, schedule: &str) -> Result<Option<jiff::Timestamp>, EventsError> {
        let db = self.db.lock().expect("events lock");
        let v: Option<String> = db
            .query_row("SELECT last_run FROM schedule_state WHERE name = ?1", params![schedule], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(v.and_then(|s| s.parse().ok()))
    }

    /// When the daemon first saw a schedule that has not run yet: its cadence counts from
    /// there. Kept apart from [`Events::last_run`], which only a run sets.
    pub fn first_seen(&self, schedule: &str) -> Result<Option<jiff::Timestamp>, EventsError> {
        let db = self.db.lock().expect("events lock");
        let v: Option<String> = db
            .query_row("SELECT since FROM schedule_seen WHERE name = ?1", params![schedule], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(v.and_then(|s| s.parse().ok()))
    }

    pub fn set_first_seen(&self, schedule: &str, when: jiff::Timestamp) -> Result<(), EventsError> {
        let db = self.db.lock().expect("events lock");
        db.execute(
            "INSERT INTO schedule_seen (name, since) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
            params![schedule, when.to_string()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// When the newest successful backup to `location` that this device recorded finished
    /// (by the daemon or the command line).
    pub fn last_success(&self, location: &str) -> Result<Option<jiff::Timestamp>, EventsError> {
        let db = self.db.lock().expect("events lock");
        let v: Option<String> = db
            .query_row(
                "SELECT max(time) FROM events WHERE location = ?1 AND kind IN (?2, ?3)",
                params![location, kind::BACKUP_COMPLETED, kind::BACKUP_WARNINGS],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        Ok(v.and_then(|s| s.parse().ok()))
    }

    pub fn set_last_run(&self, schedule: &str, when: jiff::Timestamp) -> Result<(), EventsError> {
        let db = self.db.lock().expect("events lock");
        db.execute(
            "INSERT INTO schedule_state (name, last_run) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET last_run = excluded.last_run",
            params![schedule, when.to_string()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The time of the schedule's newest run the scheduler dealt with, whether it ran or was
    /// skipped: its cadence counts from there. ([`Events::last_run`] is only set by a run
    /// that ran.)
    pub fn handled(&self, schedule: &str) -> Result<Option<jiff::Timestamp>, EventsError> {
        let db = self.db.lock().expect("events lock");
        let v: Option<String> = db
            .query_row("SELECT at FROM schedule_handled WHERE name = ?1", params![schedule], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(v.and_then(|s| s.parse().ok()))
    }

    pub fn set_handled(&self, schedule: &str, when: jiff::Timestamp) -> Result<(), EventsError> {
        let db = self.db.lock().expect("events lock");
        db.execute(
            "INSERT INTO schedule_handled (name, at) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET at = excluded.at",
            params![schedule, when.to_string()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The skipped runs waiting for their conditions to hold, oldest first.
    pub fn pending(&self) -> Result<Vec<Pending>, EventsError> {
        let db = self.db.lock().expect("events lock");
        let mut stmt = db
            .prepare("SELECT name, location, since, reason FROM schedule_pending ORDER BY since, name, location")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (schedule, location, since, reason) = row.map_err(|e| self.err(e))?;
            if let Ok(since) = since.parse() {
                out.push(Pending { schedule, location, since, reason });
            }
        }
        Ok(out)
    }

    /// Records a skipped run of `schedule` at `location` to try again (`Some`), or forgets it.
    pub fn set_pending(
        &self,
        schedule: &str,
        location: &str,
        skipped: Option<(jiff::Timestamp, &str)>,
    ) -> Result<(), EventsError> {
        let db = self.db.lock().expect("events lock");
        match skipped {
            Some((since, reason)) => db.execute(
                "INSERT INTO schedule_pending (name, location, since, reason) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name, location) DO UPDATE SET since = excluded.since, reason = excluded.reason",
                params![schedule, location, since.to_string(), reason],
            ),
            None => db
                .execute("DELETE FROM schedule_pending WHERE name = ?1 AND location = ?2", params![schedule, location]),
        }
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// When a stale location was last reported (so it is reported once a day, not every tick).
    pub fn stale_reported(&self, location: &str) -> Result<Option<jiff::Timestamp>, EventsError> {
        let db = self.db.lock().expect("events lock");
        let v: Option<String> = db
            .query_row("SELECT reported FROM stale_state WHERE location = ?1", params![location], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(v.and_then(|s| s.parse().ok()))
    }

    pub fn set_stale_reported(&self, location: &str, when: Option<jiff::Timestamp>) -> Result<(), EventsError> {
        let db = self.db.lock().expect("events lock");
        match when {
            Some(t) => db.execute(
                "INSERT INTO stale_state (location, reported) VALUES (?1, ?2)
                 ON CONFLICT(location) DO UPDATE SET reported = excluded.reported",
                params![location, t.to_string()],
            ),
            None => db.execute("DELETE FROM stale_state WHERE location = ?1", params![location]),
        }
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// A count with its noun, for an event's words: "1 backup", "2 backups".
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_kept_and_listed_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let ev = Events::open(&dir.path().join("e.sqlite")).unwrap();
        ev.record(kind::BACKUP_COMPLETED, "info", "ok", &About { slug: Some("a".into()), ..Default::default() })
            .unwrap();
        ev.record(kind::BACKUP_SKIPPED, "warning", "no card", &About::default()).unwrap();
        let all = ev.list(10, None).unwrap();
        assert_eq!(
            all.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            [kind::BACKUP_SKIPPED, kind::BACKUP_COMPLETED]
        );
        assert_eq!(ev.list(10, Some(kind::BACKUP_COMPLETED)).unwrap()[0].slug.as_deref(), Some("a"));
        let t: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        ev.set_last_run("n", t).unwrap();
        assert_eq!(Events::open(&dir.path().join("e.sqlite")).unwrap().last_run("n").unwrap(), Some(t));
    }
}
