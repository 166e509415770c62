// Small helpers for building the page: elements, numbers in words, notices, dialogs and the
// progress bar of a job.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// A table cell labelled for the phone layout (one card per row); its content kept together.
export function td(label, ...children) {
  return h('td', { 'data-label': label }, h('div', {}, ...children));
}

let uid = 0;
export const newId = (p) => `${p}-${++uid}`;

// A labelled control: the label points at the input.
export function field(label, input, hint) {
  if (!input.id) input.id = newId('f');
  const hintEl = hint ? h('small', { class: 'hint', id: newId('hint') }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hintEl);
}

export function check(label, attrs) {
  const input = h('input', { type: 'checkbox', ...attrs });
  if (!input.id) input.id = newId('c');
  return h('div', { class: 'check' }, input, h('label', { for: input.id }, label));
}

export function radio(name, value, label, checked, hint) {
  const input = h('input', { type: 'radio', name, value, checked });
  input.id = newId('r');
  return h('div', { class: 'check' }, input, h('label', { for: input.id }, label, hint ? h('small', { class: 'hint' }, ' ', hint) : null));
}

// A count with its noun, as the command line writes it: "1 file", "2 files".
export function count(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

// IEC units, written as the command line writes them (lifeboat_engine::size::iec), so one
// backup has one size in both.
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function date(s) {
  if (!s) return '—';
  const d = new Date(s);
  if (isNaN(d)) return s;
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function duration(secs) {
  if (secs === null || secs === undefined || !isFinite(secs)) return '—';
  const s = Math.round(secs);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

const STATUS_WORDS = {
  completed: 'Completed',
  completed_with_warnings: 'Completed with warnings',
  failed: 'Failed',
  queued: 'Waiting',
  running: 'Running',
  succeeded: 'Finished',
  cancelled: 'Cancelled',
};

export function statusBadge(status) {
  const kind = /fail|cancel/.test(status) ? 'bad' : /warn/.test(status) ? 'warn' : /run|queue/.test(status) ? 'busy' : 'good';
  return h('span', { class: `badge ${kind}` }, STATUS_WORDS[status] || status);
}

// A message at the top of the main area; errors stay until closed.
export function notice(text, kind = 'info') {
  const box = document.getElementById('notices');
  const close = h('button', { class: 'link', 'aria-label': 'Dismiss this message' }, '×');
  const n = h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, h('span', {}, text), close);
  close.addEventListener('click', () => n.remove());
  box.append(n);
  if (kind !== 'error') setTimeout(() => n.remove(), 8000);
  return n;
}

// An error shown inside a form or panel, in words.
export function errorBox(err) {
  return h('p', { class: 'error', role: 'alert' }, err && err.message ? err.message : String(err));
}

export function confirmDialog(title, text, action) {
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    const ok = h('button', { type: 'button', class: 'danger' }, action);
    const d = h('dialog', { 'aria-labelledby': 'dlg-title' }, h('h2', { id: 'dlg-title' }, title), h('p', {}, text), h('div', { class: 'actions' }, cancel, ok));
    document.body.append(d);
    const done = (v) => {
      d.close();
      d.remove();
      resolve(v);
    };
    cancel.addEventListener('click', () => done(false));
    ok.addEventListener('click', () => done(true));
    d.addEventListener('cancel', () => done(false));
    d.showModal();
    cancel.focus();
  });
}

// The progress of one job: bar, percent, rate, ETA, and a Cancel button while it runs.
export function jobPanel(api, job, { onDone, showLog = true } = {}) {
  const bar = h('progress', { max: 100, 'aria-label': `Progress of ${job.description}` });
  const pct = h('strong', { class: 'pct' }, '');
  const facts = h('span', { class: 'facts' }, '');
  const phase = h('span', { class: 'phase' }, '');
  const state = h('span', {}, statusBadge(job.state));
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const log = h('pre', { class: 'log', tabindex: 0, 'aria-label': 'Live log' });
  const logBox = showLog ? h('details', {}, h('summary', {}, 'Live log'), log) : null;
  const result = h('div', { class: 'result' });
  const panel = h('section', { class: 'card job', 'aria-live': 'polite', dataset: { job: job.id } },
    h('div', { class: 'job-head' }, h('h3', {}, job.description), state),
    h('div', { class: 'bar' }, bar, pct),
    h('div', { class: 'job-facts' }, phase, facts),
    h('div', { class: 'actions' }, cancel, h('a', { href: `/jobs/${job.id}` }, 'Open')),
    result, logBox);
  const show = (v) => {
    // The figures are the progress's own (crates/engine/src/progress.rs): done never above
    // total, the rate of what the bar shows; a job that ended badly has no percent.
    const p = v.progress || {};
    const ended = ['failed', 'cancelled'].includes(v.state);
    state.replaceChildren(statusBadge(v.state));
    bar.hidden = ended;
    if (ended) {
      pct.textContent = '';
    } else if (p.percent !== null && p.percent !== undefined) {
      bar.value = p.percent;
      pct.textContent = `${Math.floor(p.percent)} %`;
    } else {
      bar.removeAttribute('value');
      pct.textContent = '';
    }
    phase.textContent = p.phase && !ended ? `${p.phase} · ` : '';
    const parts = [];
    const did = p.files_done || p.bytes_done;
    if (p.files_done !== undefined && (!ended || did)) {
      parts.push(p.totals_known && p.files_total && !ended
        ? `${p.files_done} of ${count(p.files_total, 'file', 'files')}`
        : count(p.files_done, 'file', 'files'));
    }
    if (p.bytes_done !== undefined && (!ended || did)) {
      let b = bytes(p.bytes_done);
      if (p.bytes_total && !ended) b += ` of ${bytes(p.bytes_total)}`;
      if (p.bytes_read > p.bytes_done) b += ` (${bytes(p.bytes_read)} read)`;
      parts.push(b);
    }
    if (p.rate && v.state === 'running') parts.push(`${bytes(Math.round(p.rate))}/s`);
    if (p.eta !== null && p.eta !== undefined && v.state === 'running') parts.push(`about ${duration(p.eta)} left`);
    facts.textContent = parts.join(' · ');
    cancel.hidden = ['succeeded', 'failed', 'cancelled'].includes(v.state);
  };
  show(job);
  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      show(await api.post(`/api/jobs/${job.id}/cancel`));
    } catch (e) {
      result.replaceChildren(errorBox(e));
    }
  });
  api
    .follow(job.id, {
      onView: show,
      onLog: (l) => {
        log.textContent += l + '\n';
        log.scrollTop = log.scrollHeight;
      },
      onRestart: () => (log.textContent = ''),
    })
    .then((v) => {
      if (v.state === 'failed') result.replaceChildren(errorBox(new Error(`It failed: ${v.error}`)));
      else if (v.state === 'cancelled') result.replaceChildren(h('p', {}, 'It was cancelled; nothing it had finished is lost.'));
      if (onDone) onDone(v, result);
    })
    .catch((e) => result.replaceChildren(errorBox(e)));
  return panel;
}
