//! Backup files over HTTP: `GET /api/backups/{slug}/download` streams one (its length known
//! before the first byte), `POST /api/backups/upload` streams one in, of any size, and imports
//! it. Neither holds the file in memory or on disk.

use std::io::{self, Read, Write};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use lifeboat_engine::app::FileEncryption;
use lifeboat_engine::{BackupInfo, Lifeboat, Progress};
use serde::{Deserialize, Serialize};

use super::{blocking, ApiError, ApiResult};
use crate::state::Shared;

/// The password of protected backups' files: the repository's own.
fn password(app: &Lifeboat) -> ApiResult<Option<String>> {
    Ok(app.backup_file_password("", false)?)
}

/// Sends what is written to the response body, a chunk at a time.
pub(super) struct ToBody(pub(super) tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>);

impl Write for ToBody {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(data)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the backup is, and whether its file may be unencrypted (a backup that is not
/// password protected: the file is written only when this says so).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DownloadQuery {
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    all_devices: bool,
    #[serde(default)]
    unencrypted: bool,
}

pub async fn download(
    State(d): State<Shared>,
    Path(slug): Path<String>,
    query: Result<Query<DownloadQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let DownloadQuery { location, device, all_devices, unencrypted } = super::query(query)?;
    let at = super::backups::At { location, device, all_devices };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(8);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<ApiResult<(u64, String)>>();
    tokio::task::spawn_blocking(move || {
        let app = d.app();
        let planned = (|| -> ApiResult<_> {
            let found = super::backups::find(&d, &slug, &at, true)?;
            let encryption = match (found.snapshot.protected, unencrypted) {
                (true, _) => password(&app)?.map_or(FileEncryption::NotChosen, FileEncryption::Password),
                (false, true) => FileEncryption::Unencrypted,
                (false, false) => FileEncryption::NotChosen,
            };
            Ok((found, encryption))
        })();
        let (found, encryption) = match planned {
            Ok(p) => p,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        let export = match app.plan_export(&found, encryption, "unencrypted=true") {
            Ok(e) => e,
            Err(e) => {
                let _ = ready_tx.send(Err(e.into()));
                return;
            }
        };
        let snap = &found.snapshot;
        let name = format!("lifeboat-{}-{}.tar", snap.host, snap.slug);
        let _ = ready_tx.send(Ok((export.len(), name)));
        let mut out = io::BufWriter::with_capacity(1 << 20, ToBody(tx.clone()));
        if let Err(e) = export.write(&mut out, &Progress::default()) {
            // The length was announced: the client sees a short body, which is an error.
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
        let _ = out.flush();
    });
    let (len, name) = ready_rx.await.map_err(|_| ApiError::internal("the export stopped before it began"))??;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Reads what the request body's chunks bring, from a blocking thread.
struct FromBody {
    rx: std::sync::mpsc::Receiver<Result<Bytes, String>>,
    chunk: Bytes,
}

impl Read for FromBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.chunk = b,
                Ok(Err(e)) => return Err(io::Error::other(e)),
                Err(_) => return Ok(0),
            }
        }
        let n = self.chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

#[derive(Deserialize)]
pub struct UploadQuery {
    /// The location to import into (default: the default location).
    #[serde(default)]
    location: Option<String>,
}

#[derive(Serialize)]
pub struct Uploaded {
    #[serde(flatten)]
    pub backup: BackupInfo,
    /// False when the location already held this backup.
    pub imported: bool,
}

pub async fn upload(
    State(d): State<Shared>,
    q: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Uploaded>)> {
    let q = super::query(q)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Bytes, String>>(8);
    let mut stream = body.into_data_stream();
    let feeder = tokio::spawn(async move {
        while let Some(chunk) = stream.next().await {
            let item = chunk.map_err(|e| format!("the upload broke off: {e}"));
            let failed = item.is_err();
            let tx = tx.clone();
            // The blocking reader drains the channel; sending must not block the runtime.
            if tokio::task::spawn_blocking(move || tx.send(item)).await.map(|r| r.is_err()).unwrap_or(true) || failed {
                break;
            }
        }
    });
    let result = blocking(move || {
        let app = d.app();
        let reader = FromBody { rx, chunk: Bytes::new() };
        let pass = password(&app)?;
        let (loc, outcome) =
            app.import(reader, "upload", q.location.as_deref(), pass.as_deref(), &Progress::default())?;
        Ok((
            StatusCode::CREATED,
            Json(Uploaded {
                backup: BackupInfo::new(&outcome.id, &outcome.snapshot, &loc.name),
                imported: outcome.imported,
            }),
        ))
    })
    .await;
    feeder.abort();
    result
}
