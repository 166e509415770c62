//! Schedules as every front end lists and runs them: the API and the page through the
//! daemon, `lifeboat schedules` through [`Local`] — one listing and one run-now for both.

use std::path::PathBuf;
use std::sync::Arc;

use lifeboat_engine::schedule::ScheduleConfig;
use lifeboat_engine::{Dirs, LoadedConfig};
use serde::Serialize;

use crate::conditions::Situation;
use crate::events::{self, Event, Events, Pending};
use crate::scheduler::{self, Decision};
use crate::state::{Daemon, Shared};
use crate::DaemonError;

/// A schedule: its settings, its name, when it last ran and how, and when it runs next.
#[derive(Serialize)]
pub struct ScheduleView {
    pub name: String,
    #[serde(flatten)]
    pub config: ScheduleConfig,
    /// RFC 3339, when enabled.
    pub next_run: Option<String>,
    pub last_run: Option<String>,
    /// The newest event of this schedule: how its last run went (or why it was skipped).
    pub last_outcome: Option<Event>,
    /// Its skipped runs, one a location, waiting for their conditions to hold again (they run
    /// then, until its next run comes).
    pub waiting: Vec<Pending>,
}

/// How many of the newest events are searched for a schedule's last outcome.
const OUTCOME_SEARCH: u32 = 1000;

pub(crate) fn list(d: &Shared) -> Vec<ScheduleView> {
    let tz = jiff::tz::TimeZone::system();
    let now = jiff::Timestamp::now();
    let recent = d.events.list(OUTCOME_SEARCH, None).unwrap_or_default();
    let pending = d.events.pending().unwrap_or_default();
    d.config()
        .config
        .schedule
        .iter()
        .map(|(name, sc)| {
            let last = d.events.last_run(name).ok().flatten();
            let next = sc
                .enabled
                .then(|| sc.cadence().ok())
                .flatten()
                .map(|c| c.next_after(scheduler::anchor(d, name).ok().flatten().unwrap_or(now).max(now), &tz))
                .filter(|t| *t < jiff::Timestamp::MAX)
                .map(|t| t.to_string());
            ScheduleView {
                name: name.clone(),
                config: sc.clone(),
                next_run: next,
                last_run: last.map(|t| t.to_string()),
                last_outcome: recent.iter().find(|e| e.schedule.as_deref() == Some(name.as_str())).cloned(),
                waiting: pending.iter().filter(|p| &p.schedule == name).cloned().collect(),
            }
        })
        .collect()
}

/// Runs a schedule now, as when it is due: its conditions are checked at each location.
/// None when there is no schedule of that name.
pub(crate) fn run_now(d: &Shared, name: &str) -> Option<Vec<Decision>> {
    let sc = d.config().config.schedule.get(name).cloned()?;
    let now = jiff::Timestamp::now();
    let _ = d.events.set_handled(name, now);
    Some(scheduler::run_schedule(d, name, &sc, &Situation::now(), now))
}

/// What a schedule run now did at one location.
#[derive(Debug, Serialize)]
pub struct ScheduleRun {
    pub location: String,
    /// Why it was skipped (its conditions refused).
    pub skipped: Option<String>,
    /// `succeeded`, `failed` or `cancelled`; none when skipped.
    pub state: Option<String>,
    /// The backup made (as `backups new --json` has it), with `retention_removed`.
    pub backup: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The daemon's state without its server, for the command line: the same listing and the same
/// run as the scheduler's, the events recorded where the daemon records them.
pub struct Local {
    d: Shared,
}

impl Local {
    pub fn open(
        dirs: Dirs,
        config_file: Option<PathBuf>,
        config: LoadedConfig,
        password_file: Option<PathBuf>,
    ) -> Result<Local, DaemonError> {
        let events = Events::open(&events::database_path(&dirs.data))?;
        // No token: nothing is served.
        let d = Daemon::new(dirs, config_file, config, password_file, events, String::new());
        Ok(Local { d: Arc::new(d) })
    }

    pub fn schedules(&self) -> Vec<ScheduleView> {
        list(&self.d)
    }

    /// Runs the schedule `name` now as the scheduler does and waits for its backups. None when
    /// there is no such schedule.
    pub fn run(&self, name: &str) -> Option<Vec<ScheduleRun>> {
        let decisions = run_now(&self.d, name)?;
        let runs = decisions
            .into_iter()
            .map(|dec| {
                let job = dec.job.and_then(|id| self.d.jobs.get(id)).map(|j| {
                    j.wait();
                    j.view()
                });
                let state =
                    job.as_ref().map(|j| serde_json::to_value(j.state).ok().and_then(|v| v.as_str().map(String::from)));
                ScheduleRun {
                    location: dec.location,
                    skipped: dec.skipped,
                    state: state.flatten(),
                    backup: job.as_ref().and_then(|j| j.result.clone()),
                    error: job.and_then(|j| j.error),
                }
            })
            .collect();
        Some(runs)
    }
}
