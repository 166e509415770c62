// Talks to the daemon's API with the session cookie; every change carries the CSRF token.
// Errors become ApiError with words that say what to do.

let csrf = null;

export class ApiError extends Error {
  constructor(message, status, data) {
    super(message);
    this.status = status;
    // The API's answer ({error, kind, …}), for the steps a page offers on some errors.
    this.data = data && typeof data === 'object' ? data : null;
  }
}

const NOT_ANSWERING =
  'Lifeboat is not answering. Check that `lifeboat serve` is running (systemctl status lifeboat), then reload this page.';

// What a person should read for an error the API returned.
export function explain(status, message) {
  const m = message || '';
  switch (status) {
    case 0:
      return NOT_ANSWERING;
    case 401:
      return 'You are signed out. Sign in again with the token (`lifeboat token` prints it) or your password.';
    case 403:
      return m || 'This request was refused. Reload the page and try again.';
    case 404:
      return m ? `Not found: ${m}` : 'Not found: it may have been removed. Go back to the list of backups.';
    case 409:
      return `This cannot be done right now: ${m}.`;
    case 410:
      return m || 'It was cancelled.';
    case 422:
      return `Something in the backups is damaged: ${m}.`;
    case 429:
      return m || 'Too many attempts: wait a minute and try again.';
    case 424:
      return `The location cannot be used right now: ${m}. Check that it is connected (card inserted, disk mounted, server up) and try again.`;
    default:
      if (status >= 500) return `Lifeboat failed: ${m || 'an internal error'}. The daemon's log says more (journalctl -u lifeboat).`;
      return m || `The request was refused (${status}).`;
  }
}

export async function session() {
  const r = await fetch('/api/session', { credentials: 'same-origin' });
  if (r.status === 401) {
    toSignIn();
    throw new ApiError(explain(401), 401);
  }
  csrf = (await r.json()).csrf;
}

export function toSignIn() {
  const next = location.pathname + location.search;
  location.assign('/signin?next=' + encodeURIComponent(next));
}

export function csrfToken() {
  return csrf;
}

export async function request(method, path, body) {
  const headers = {};
  if (method !== 'GET') headers['X-Lifeboat-CSRF'] = csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(NOT_ANSWERING, 0);
  }
  if (r.status === 401) {
    toSignIn();
    throw new ApiError(explain(401), 401);
  }
  const type = r.headers.get('content-type') || '';
  const data = type.includes('json') ? await r.json().catch(() => null) : await r.text();
  if (!r.ok) {
    throw new ApiError(explain(r.status, data && data.error), r.status, data);
  }
  return data;
}

export const get = (p) => request('GET', p);
export const post = (p, b) => request('POST', p, b === undefined ? {} : b);
export const put = (p, b) => request('PUT', p, b);
export const del = (p) => request('DELETE', p);

// Uploads a file with progress (fetch cannot report an upload's progress).
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', path);
    x.setRequestHeader('X-Lifeboat-CSRF', csrf);
    x.setRequestHeader('Content-Type', 'application/octet-stream');
    x.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded, e.total);
    x.onload = () => {
      let data = null;
      try {
        data = JSON.parse(x.responseText);
      } catch {
        data = null;
      }
      if (x.status === 401) toSignIn();
      if (x.status >= 200 && x.status < 300) resolve(data);
      else reject(new ApiError(explain(x.status, data && data.error), x.status, data));
    };
    x.onerror = () => reject(new ApiError(NOT_ANSWERING, 0));
    x.send(file);
  });
}

// Follows a job until it ends: onView(view) on progress, onLog(line), and the final view is
// what the promise resolves to. A dropped stream reconnects and replays the log from the start.
export function follow(id, { onView, onLog, onRestart }) {
  return new Promise((resolve, reject) => {
    const es = new EventSource(`/api/jobs/${id}/events`);
    let opened = false;
    es.onopen = () => {
      if (opened && onRestart) onRestart();
      opened = true;
    };
    es.addEventListener('progress', (e) => onView && onView(JSON.parse(e.data)));
    es.addEventListener('log', (e) => onLog && onLog(e.data));
    es.addEventListener('done', (e) => {
      es.close();
      const v = JSON.parse(e.data);
      if (onView) onView(v);
      resolve(v);
    });
    es.onerror = async () => {
      // The browser retries by itself; give up only when the job is gone.
      try {
        await get(`/api/jobs/${id}`);
      } catch (err) {
        es.close();
        reject(err);
      }
    };
  });
}
