//! `/api/jobs`: list, show, follow (Server-Sent Events), cancel.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::Stream;

use super::{ApiError, ApiResult};
use crate::jobs::{Job, JobView};
use crate::state::Shared;

/// How often a followed job's progress is sent while it runs.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

pub async fn list(State(d): State<Shared>) -> Json<Vec<JobView>> {
    Json(d.jobs.list().iter().map(|j| j.view()).collect())
}

fn job(d: &Shared, id: &str) -> ApiResult<std::sync::Arc<Job>> {
    id.parse::<u64>()
        .ok()
        .and_then(|n| d.jobs.get(n))
        .ok_or_else(|| ApiError::not_found(format!("no job {id}: see GET /api/jobs")))
}

pub async fn show(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<JobView>> {
    Ok(Json(job(&d, &id)?.view()))
}

pub async fn cancel(State(d): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<JobView>> {
    let j = job(&d, &id)?;
    j.cancel();
    Ok(Json(j.view()))
}

/// Events: `progress` (the job's view) every half second while it changes, `log` for each
/// log line, and `done` (the final view) when it has finished, after which the stream ends.
pub async fn events(
    State(d): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let j = job(&d, &id)?;
    struct Follow {
        job: std::sync::Arc<Job>,
        next_line: usize,
        pending: std::collections::VecDeque<Event>,
        last: Option<String>,
        done: bool,
        first: bool,
    }
    let start = Follow { job: j, next_line: 0, pending: Default::default(), last: None, done: false, first: true };
    let stream = futures_util::stream::unfold(start, |mut f| async move {
        loop {
            if let Some(e) = f.pending.pop_front() {
                return Some((Ok(e), f));
            }
            if f.done {
                return None;
            }
            if !f.first {
                tokio::time::sleep(PROGRESS_EVERY).await;
            }
            f.first = false;
            let finished = f.job.state().finished();
            let (lines, next) = f.job.log_since(f.next_line);
            f.next_line = next;
            for l in lines {
                f.pending.push_back(Event::default().event("log").data(l));
            }
            let view = serde_json::to_string(&f.job.view()).unwrap_or_default();
            if finished {
                f.pending.push_back(Event::default().event("done").data(view));
                f.done = true;
            } else if f.last.as_ref() != Some(&view) {
                f.pending.push_back(Event::default().event("progress").data(view.clone()));
                f.last = Some(view);
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
