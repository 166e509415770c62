//! Inside backups: a folder's entries (paged), one file's bytes (streamed, with `Range`) or a
//! folder as tar, a search over every backup, and what changed between two backups.

use std::io::{self, Read, Write};

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lifeboat_engine::app::Opened;
use lifeboat_engine::{Diff, Entry, FoundPath};
use serde::{Deserialize, Serialize};

use super::backups::{find, At};
use super::files::ToBody;
use super::{blocking, ApiError, ApiResult};
use crate::state::Shared;

/// The most entries one page of a folder holds.
const MAX_PAGE: usize = 5000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesQuery {
    #[serde(default)]
    location: Option<String>,
    /// A folder of the backup (`~/notes`, `/etc`); none: its unit roots.
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    offset: usize,
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Serialize)]
pub struct FilesPage {
    /// The folder listed, as the backup names it.
    pub path: Option<String>,
    /// Folders first, then by name.
    pub entries: Vec<Entry>,
    /// Entries in the folder in all.
    pub total: usize,
    pub offset: usize,
}

pub async fn files(
    State(d): State<Shared>,
    Path(slug): Path<String>,
    q: Result<Query<FilesQuery>, QueryRejection>,
) -> ApiResult<Json<FilesPage>> {
    let q = super::query(q)?;
    let limit = q.limit.unwrap_or(1000);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad(format!("limit {limit}: give 1 to {MAX_PAGE} entries a page")));
    }
    blocking(move || {
        let app = d.app();
        let found = find(&d, &slug, &At { location: q.location.clone(), ..At::default() }, false)?;
        let path = q.path.as_deref().map(|p| app.backup_path(&found, p)).transpose()?;
        let mut all = app.list_files(&found, path.as_deref(), false)?;
        all.sort_by(|a, b| b.is_dir().cmp(&a.is_dir()).then_with(|| a.path.cmp(&b.path)));
        let total = all.len();
        let entries = all.into_iter().skip(q.offset).take(limit).collect();
        Ok(Json(FilesPage { path, entries, total, offset: q.offset }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileQuery {
    #[serde(default)]
    location: Option<String>,
    path: String,
}

/// A single `bytes=` range of a file of `len` bytes: (first, last), inclusive. `None`: the
/// header asks for none this answer gives (several ranges: the whole file is sent).
fn range(headers: &HeaderMap, len: u64) -> ApiResult<Option<(u64, u64)>> {
    let Some(v) = headers.get(header::RANGE) else { return Ok(None) };
    let unsatisfiable = || ApiError {
        status: StatusCode::RANGE_NOT_SATISFIABLE,
        kind: Some(lifeboat_engine::ErrorKind::BadInput),
        message: format!("range {:?} is not within the file's {len} bytes", v.to_str().unwrap_or("?")),
        unknown_host: None,
    };
    let Some(spec) = v.to_str().ok().and_then(|s| s.strip_prefix("bytes=")) else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let (first, last) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| unsatisfiable())?;
            if n == 0 || len == 0 {
                return Err(unsatisfiable());
            }
            (len.saturating_sub(n), len - 1)
        }
        (a, "") => (a.parse().map_err(|_| unsatisfiable())?, len.saturating_sub(1)),
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().map_err(|_| unsatisfiable())?, b.parse().map_err(|_| unsatisfiable())?);
            (a, b.min(len.saturating_sub(1)))
        }
    };
    if first >= len || first > last {
        return Err(unsatisfiable());
    }
    Ok(Some((first, last)))
}

/// A name fit for `Content-Disposition`: no quotes, no control characters.
fn download_name(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or("file");
    let clean: String = name.chars().filter(|c| !c.is_control() && *c != '"' && *c != '\\').collect();
    if clean.is_empty() || clean == "~" {
        "home".into()
    } else {
        clean
    }
}

struct Head {
    status: StatusCode,
    headers: Vec<(header::HeaderName, String)>,
}

pub async fn file(
    State(d): State<Shared>,
    Path(slug): Path<String>,
    q: Result<Query<FileQuery>, QueryRejection>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q = super::query(q)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(8);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<ApiResult<Head>>();
    tokio::task::spawn_blocking(move || {
        let app = d.app();
        let opened = (|| -> ApiResult<_> {
            let found = find(&d, &slug, &At { location: q.location.clone(), ..At::default() }, false)?;
            let opened = app.open_file(&found, &q.path)?;
            Ok((found, opened))
        })();
        let (found, opened) = match opened {
            Ok(o) => o,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        let mut out = io::BufWriter::with_capacity(1 << 20, ToBody(tx.clone()));
        let sent = match opened {
            Opened::File(entry, mut reader) => {
                let len = reader.len();
                let (status, first, count, mut hs) = match range(&headers, len) {
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                    Ok(Some((a, b))) => (
                        StatusCode::PARTIAL_CONTENT,
                        a,
                        b - a + 1,
                        vec![(header::CONTENT_RANGE, format!("bytes {a}-{b}/{len}"))],
                    ),
                    Ok(None) => (StatusCode::OK, 0, len, Vec::new()),
                };
                hs.push((header::CONTENT_TYPE, "application/octet-stream".into()));
                hs.push((header::CONTENT_LENGTH, count.to_string()));
                hs.push((header::ACCEPT_RANGES, "bytes".into()));
                hs.push((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", download_name(&entry.path)),
                ));
                let _ = ready_tx.send(Ok(Head { status, headers: hs }));
                reader.seek_to(first);
                io::copy(&mut reader.take(count), &mut out).map(|_| ())
            }
            Opened::Folder(entry) => {
                let hs = vec![
                    (header::CONTENT_TYPE, "application/x-tar".into()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}.tar\"", download_name(&entry.path)),
                    ),
                ];
                let _ = ready_tx.send(Ok(Head { status: StatusCode::OK, headers: hs }));
                app.dump(&found, &entry.path, &mut out).map(|_| ()).map_err(io::Error::other)
            }
        };
        if let Err(e) = sent.and_then(|_| out.flush()) {
            // The head went out: the client sees a body cut short, which is an error.
            tracing::warn!("sending {} of backup {}: {e}", q.path, found.snapshot.slug);
            let _ = tx.blocking_send(Err(e));
        }
    });
    let head = ready_rx.await.map_err(|_| ApiError::internal("the read stopped before it began"))??;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut response = Body::from_stream(stream).into_response();
    *response.status_mut() = head.status;
    for (k, v) in head.headers {
        if let Ok(v) = v.parse() {
            response.headers_mut().insert(k, v);
        }
    }
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// A glob: without `/` it matches names (`*.jpg`), else whole paths (`~/photos/**`).
    pattern: String,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    location: Option<String>,
}

#[derive(Serialize)]
pub struct SearchAnswer {
    pub paths: Vec<FoundPath>,
    /// How many backups were searched.
    pub backups: usize,
    pub unavailable: Vec<super::backups::Unavailable>,
    /// Set when versions in repositories that do not share blob ids and chunking were told
    /// apart by type, size and time only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared: Option<String>,
}

pub async fn search(
    State(d): State<Shared>,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> ApiResult<Json<SearchAnswer>> {
    let q = super::query(q)?;
    if q.pattern.trim().is_empty() {
        return Err(ApiError::bad("pattern is empty: give a name or a glob, such as *.jpg"));
    }
    blocking(move || {
        let s = d.app().find_files(
            std::slice::from_ref(&q.pattern),
            q.unit.as_deref(),
            q.location.as_deref(),
            &lifeboat_engine::Devices::All,
        )?;
        let unavailable = s
            .unavailable
            .iter()
            .map(|u| super::backups::Unavailable {
                location: u.location.clone(),
                reason: ApiError::of(&u.error).message,
            })
            .collect();
        Ok(Json(SearchAnswer { paths: s.paths, backups: s.backups, unavailable, compared: s.compared }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// The later backup; none: the device as it is now.
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    unit: Option<String>,
    /// Against the device: compare files whose size and date match by content too.
    #[serde(default)]
    by_content: bool,
    #[serde(default)]
    location: Option<String>,
}

pub async fn diff(
    State(d): State<Shared>,
    Path(slug): Path<String>,
    q: Result<Query<DiffQuery>, QueryRejection>,
) -> ApiResult<Json<Diff>> {
    let q = super::query(q)?;
    blocking(move || {
        let at = At { location: q.location.clone(), ..At::default() };
        let a = find(&d, &slug, &at, false)?;
        let b = q.to.as_deref().map(|s| find(&d, s, &at, false)).transpose()?;
        Ok(Json(d.app().diff(&a, b.as_ref(), q.unit.as_deref(), q.by_content)?))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, v.parse().unwrap());
        h
    }

    #[test]
    fn ranges_are_read_as_http_says() {
        assert_eq!(range(&HeaderMap::new(), 10).unwrap(), None);
        assert_eq!(range(&with("bytes=0-3"), 10).unwrap(), Some((0, 3)));
        assert_eq!(range(&with("bytes=4-"), 10).unwrap(), Some((4, 9)));
        assert_eq!(range(&with("bytes=-3"), 10).unwrap(), Some((7, 9)));
        assert_eq!(range(&with("bytes=5-100"), 10).unwrap(), Some((5, 9)));
        assert_eq!(range(&with("bytes=0-1,4-5"), 10).unwrap(), None);
        assert_eq!(range(&with("bytes=10-"), 10).unwrap_err().status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(range(&with("bytes=5-2"), 10).unwrap_err().status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert!(range(&with("bytes=x-"), 10).is_err());
        assert_eq!(download_name("~/a\"b\\c.txt"), "abc.txt");
    }
}
