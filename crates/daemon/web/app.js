// The page's shell: signs in, routes paths to views, shows warnings that concern every view.

import * as api from './api.js';
import { h, notice } from './ui.js';
import { homeView } from './home.js';
import { backupView } from './backup.js';
import { schedulesView } from './schedules.js';
import { historyView, logsView, logView, jobView } from './history.js';

const routes = [
  [/^\/$/, homeView],
  [/^\/backups\/([0-9a-f]+)$/, backupView],
  [/^\/schedules$/, schedulesView],
  [/^\/history$/, historyView],
  [/^\/logs$/, logsView],
  [/^\/logs\/([^/]+)$/, logView],
  [/^\/jobs\/(\d+)$/, jobView],
];

const main = () => document.getElementById('main');

export function go(path) {
  history.pushState({}, '', path);
  render();
}

async function render() {
  const path = location.pathname;
  for (const a of document.querySelectorAll('nav a')) {
    const here = a.getAttribute('href') === path || (a.getAttribute('href') === '/' && path.startsWith('/backups/'));
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const route = routes.find(([re]) => re.test(path));
  const m = main();
  if (!route) {
    m.replaceChildren(h('h1', {}, 'Nothing here'), h('p', {}, 'This address is not a page of Lifeboat. ', h('a', { href: '/' }, 'Go to the backups.')));
    return;
  }
  const args = path.match(route[0]).slice(1).map(decodeURIComponent);
  m.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  try {
    const view = await route[1](api, ...args);
    m.replaceChildren(view);
  } catch (e) {
    m.replaceChildren(h('h1', {}, 'This page could not be shown'), h('p', { class: 'error', role: 'alert' }, e.message));
  }
  const title = m.querySelector('h1');
  document.title = `${title ? title.textContent : 'Backups'} · Lifeboat`;
  m.focus({ preventScroll: true });
  warnings();
}

// No backup has succeeded for too long: said on every view, until one does.
async function warnings() {
  const box = document.getElementById('warnings');
  try {
    const s = await api.get('/api/status');
    // One line, whatever the number of locations: the details are in its title and the history.
    const where = s.stale.map((w) => w.location).join(', ');
    box.replaceChildren(
      ...(s.stale.length === 0 ? [] : [
        h('div', {
          class: 'notice error stale', role: 'alert',
          title: s.stale.map((w) => `${w.location}: ${w.why}`).join('\n'),
        },
        h('strong', {}, `No backup in ${where} for over ${s.stale_after_days} days past due.`), ' ',
        h('a', { href: '/history' }, 'See why'))]));
  } catch {
    // The view shows its own errors.
  }
}

// Links inside the page change the view without reloading it.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || a.target || a.hasAttribute('download') || e.ctrlKey || e.metaKey || e.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  e.preventDefault();
  go(url.pathname + url.search);
});
window.addEventListener('popstate', render);

document.getElementById('signout').addEventListener('click', async () => {
  try {
    await api.del('/api/session');
  } catch (e) {
    notice(e.message, 'error');
  }
  location.assign('/signin');
});

api.session().then(render, () => {});
