//! What can be learnt of the locations themselves: a survey of every one without its key, and
//! a check that one is reachable, writable and holds a healthy repository.

use lifeboat_repository::{CheckOptions, Repository};
use serde::Serialize;

use super::Lifeboat;
use crate::location::Location;
use crate::{EngineError, EngineResult};

/// One location as the survey saw it.
#[derive(Debug, Clone, Serialize)]
pub struct LocationSurvey {
    pub name: String,
    pub kind: &'static str,
    /// The storage's own description (folder, host and path, bucket…).
    #[serde(rename = "where")]
    pub place: String,
    pub default: bool,
    pub reachable: bool,
    /// Why not, when not reachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub free: Option<u64>,
    pub backups: Option<usize>,
    /// Bytes stored: backups, packs and index.
    pub size: Option<u64>,
}

/// What `check_location` found, step by step.
#[derive(Debug, Clone, Serialize)]
pub struct LocationCheck {
    pub name: String,
    pub kind: &'static str,
    #[serde(rename = "where")]
    pub place: String,
    pub free: Option<u64>,
    pub repository: RepositoryHealth,
    /// With `like = "OTHER"`: whether the two repositories share blob ids and chunking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub like: Option<LikeState>,
}

/// What `like = "OTHER"` amounts to for a location whose repository exists.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum LikeState {
    /// Both repositories give content the same blob ids and chunks.
    Shared { other: String },
    /// This repository was made before `like` was set (or like another): its ids and
    /// chunking stay its own, since an existing repository cannot change them.
    Differs { other: String },
    /// The other holds no repository yet: the one made there is made like this one.
    OtherNotMade { other: String },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum RepositoryHealth {
    /// Reachable and writable, no backup yet: the first backup creates the repository.
    None,
    Healthy {
        backups: usize,
    },
    Problems {
        count: usize,
    },
}

/// What a write probe writes; read back, it must come back the same.
const PROBE: &[u8] = b"lifeboat checks that it can write here\n";

impl Lifeboat {
    /// Every location: reachable or not, free space, how many backups and how many bytes.
    /// Needs no key, so it works before a password is at hand.
    pub fn survey_locations(&self) -> Vec<LocationSurvey> {
        self.locations().iter().map(|l| survey(l, l.name == self.default_location_name())).collect()
    }

    /// Reaches a location, writes and reads back a probe under a name the repository never
    /// uses, and checks the repository's structure when there is one. An error says which
    /// step failed.
    pub fn check_location(&self, name: &str) -> EngineResult<LocationCheck> {
        let loc = self.location(Some(name))?;
        let store = loc.store()?;
        let exists = Repository::exists(store.as_ref())?;
        let probe = format!("lifeboat-write-check-{:016x}", rand::random::<u64>());
        store.write(&probe, PROBE)?;
        let back = store.read(&probe, None);
        store.remove(&probe)?;
        if back? != PROBE {
            return Err(EngineError::LocationUnavailable {
                reason: format!(
                    "location {name}: what was written reads back differently: the storage is not reliable"
                ),
            });
        }
        let mut like = None;
        let repository = if exists {
            let repo = self.repository(loc, false)?;
            if let Some(other) = loc.like() {
                let theirs = self.existing_repository(self.location(Some(other))?)?;
                let other = other.to_string();
                like = Some(match theirs {
                    None => LikeState::OtherNotMade { other },
                    Some(r) if r.id_scheme().same_chunking(&repo.id_scheme()) => LikeState::Shared { other },
                    Some(_) => LikeState::Differs { other },
                });
            }
            let report = repo.check(CheckOptions { read_data: false }, &|_| {})?;
            if report.problems.is_empty() {
                RepositoryHealth::Healthy { backups: repo.snapshots()?.0.len() }
            } else {
                RepositoryHealth::Problems { count: report.problems.len() }
            }
        } else {
            RepositoryHealth::None
        };
        Ok(LocationCheck {
            name: loc.name.clone(),
            kind: loc.kind.as_str(),
            place: store.describe(),
            free: store.free_space(),
            repository,
            like,
        })
    }
}

fn survey(l: &Location, default: bool) -> LocationSurvey {
    let mut row = LocationSurvey {
        name: l.name.clone(),
        kind: l.kind.as_str(),
        place: l.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        default,
        reachable: false,
        problem: None,
        free: None,
        backups: None,
        size: None,
    };
    let store = match l.store() {
        Ok(s) => s,
        Err(e) => {
            row.problem = Some(e.to_string());
            return row;
        }
    };
    row.place = store.describe();
    match store.list("snapshots") {
        Ok(snaps) => {
            row.reachable = true;
            row.backups = Some(snaps.len());
            let mut size: u64 = snaps.iter().map(|o| o.size).sum();
            for prefix in ["data", "index"] {
                if let Ok(objs) = store.list(prefix) {
                    size += objs.iter().map(|o| o.size).sum::<u64>();
                }
            }
            row.size = Some(size);
        }
        Err(e) => row.problem = Some(e.to_string()),
    }
    row.free = store.free_space();
    row
}
