//! `/api/logs`: the log file of every earlier run (`DATE-OPERATION-SLUG.log` in the log
//! folder), listed and read.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::{blocking, ApiError, ApiResult};
use crate::state::Shared;

#[derive(Serialize)]
pub struct LogFile {
    pub name: String,
    /// `backup`, `restore`, …
    pub operation: String,
    pub slug: String,
    /// RFC 3339: when the file was last written.
    pub modified: String,
    pub size: u64,
}

/// `20261122-083000-backup-1a2b3c4d.log` → (`backup`, `1a2b3c4d`).
fn parts(name: &str) -> Option<(String, String)> {
    let stem = name.strip_suffix(".log")?;
    let mut it = stem.splitn(4, '-');
    let (_, _, op, slug) = (it.next()?, it.next()?, it.next()?, it.next()?);
    Some((op.to_string(), slug.to_string()))
}

pub async fn list(State(d): State<Shared>) -> ApiResult<Json<Vec<LogFile>>> {
    blocking(move || {
        let entries = match std::fs::read_dir(&d.dirs.logs) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Json(Vec::new())),
            Err(e) => {
                return Err(ApiError::internal(format!("cannot read the log folder {}: {e}", d.dirs.logs.display())))
            }
        };
        let mut logs: Vec<LogFile> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (operation, slug) = parts(&name)?;
                let meta = e.metadata().ok()?;
                let modified = jiff::Timestamp::try_from(meta.modified().ok()?).ok()?.to_string();
                Some(LogFile { name, operation, slug, modified, size: meta.len() })
            })
            .collect();
        logs.sort_by(|a, b| b.modified.cmp(&a.modified).then(b.name.cmp(&a.name)));
        Ok(Json(logs))
    })
    .await
}

pub async fn show(State(d): State<Shared>, Path(name): Path<String>) -> ApiResult<Response> {
    // Only names the listing gives: no path can leave the log folder.
    if parts(&name).is_none() || name.contains('/') || name.starts_with('.') {
        return Err(ApiError::not_found(format!("no log {name:?}: see GET /api/logs")));
    }
    blocking(move || {
        let path = d.dirs.logs.join(&name);
        let text =
            std::fs::read(&path).map_err(|_| ApiError::not_found(format!("no log {name:?}: see GET /api/logs")))?;
        Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
    })
    .await
}
