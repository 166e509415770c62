// The history of events (skipped and failed runs with their reasons), the jobs of this run
// of the daemon with their live logs, and the log file of every earlier run.

import { h, td, date, bytes, statusBadge, errorBox, jobPanel } from './ui.js';

const LEVEL_WORDS = { info: 'Info', warning: 'Warning', error: 'Problem' };

export async function historyView(api) {
  const events = await api.get('/api/events?limit=200');
  const rows = events.map((e) =>
    h('tr', { class: `level-${e.level}` },
      td('When', date(e.time)),
      td('Level', h('span', { class: `badge ${e.level === 'error' ? 'bad' : e.level === 'warning' ? 'warn' : 'good'}` }, LEVEL_WORDS[e.level] || e.level)),
      td('What', e.message),
      td('Links', e.slug ? h('a', { href: `/backups/${e.slug}${e.location ? '?location=' + encodeURIComponent(e.location) : ''}` }, 'Backup') : null, ' ',
        e.job ? h('a', { href: `/jobs/${e.job}` }, 'Job') : null)));
  return h('div', {},
    h('h1', {}, 'History'),
    events.length
      ? h('table', { class: 'list' }, h('thead', {}, h('tr', {}, ['When', 'Level', 'What', ''].map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, rows))
      : h('p', { class: 'muted' }, 'Nothing has happened yet.'));
}

export async function logsView(api) {
  const [jobs, logs] = await Promise.all([api.get('/api/jobs'), api.get('/api/logs')]);
  return h('div', {},
    h('h1', {}, 'Logs'),
    h('section', { 'aria-labelledby': 'jobs-title' }, h('h2', { id: 'jobs-title' }, 'Jobs since the daemon started'),
      jobs.length
        ? h('ul', { class: 'plain' }, jobs.slice().reverse().map((j) => h('li', {}, h('a', { href: `/jobs/${j.id}` }, j.description), ' ', statusBadge(j.state), ' ', h('span', { class: 'muted' }, date(j.created)))))
        : h('p', { class: 'muted' }, 'None yet.')),
    h('section', { 'aria-labelledby': 'files-title' }, h('h2', { id: 'files-title' }, 'Earlier runs'),
      logs.length
        ? h('ul', { class: 'plain' }, logs.map((l) => h('li', {}, h('a', { href: `/logs/${encodeURIComponent(l.name)}` }, `${l.operation} ${l.slug}`), ' ', h('span', { class: 'muted' }, `${date(l.modified)} · ${bytes(l.size)}`))))
        : h('p', { class: 'muted' }, 'No run has left a log yet.')));
}

export async function logView(api, name) {
  const text = await api.get(`/api/logs/${encodeURIComponent(name)}`);
  return h('div', {},
    h('p', {}, h('a', { href: '/logs' }, '← All logs')),
    h('h1', {}, `Log ${name}`),
    h('pre', { class: 'log tall', tabindex: 0, 'aria-label': 'Log' }, text || '(empty)'));
}

export async function jobView(api, id) {
  let job;
  try {
    job = await api.get(`/api/jobs/${id}`);
  } catch (e) {
    return h('div', {}, h('h1', {}, `Job ${id}`), errorBox(e), h('p', {}, 'Jobs are kept until the daemon restarts; the log of every run is under ', h('a', { href: '/logs' }, 'Logs'), '.'));
  }
  const panel = jobPanel(api, job);
  const details = panel.querySelector('details');
  if (details) details.open = true;
  return h('div', {}, h('p', {}, h('a', { href: '/logs' }, '← All logs')), h('h1', {}, `Job ${id}`), panel);
}
