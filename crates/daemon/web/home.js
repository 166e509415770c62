// The Backups view: automatic backups at the top, "Back up now" with its progress in the
// middle, every backup of every location below. A machine with none yet is offered a restore.

import { h, td, field, check, radio, bytes, count, date, statusBadge, errorBox, jobPanel } from './ui.js';
import { welcomePanel } from './welcome.js';
import { searchSection } from './files.js';

export async function homeView(api) {
  const [listing, jobs, schedules, locations, units] = await Promise.all([
    api.get('/api/backups'),
    api.get('/api/jobs'),
    api.get('/api/schedules'),
    api.get('/api/locations'),
    api.get('/api/units'),
  ]);
  const active = jobs.filter((j) => j.state === 'queued' || j.state === 'running');
  const first = listing.backups.length === 0 && active.length === 0;
  const running = h('div', { id: 'running' }, active.map((j) => jobPanel(api, j, { onDone: () => refreshList(api, list) })));
  const list = h('div', { id: 'backups' }, backupList(listing));
  return h('div', {},
    h('h1', {}, 'Backups'),
    first ? welcomePanel(api, locations) : null,
    automaticSummary(schedules),
    manualBackup(api, locations, units, running, list),
    running,
    first ? null : searchSection(api),
    h('section', { 'aria-labelledby': 'list-title' }, h('h2', { id: 'list-title' }, 'Earlier backups'), list));
}

function automaticSummary(schedules) {
  const body = schedules.length
    ? h('ul', { class: 'plain' }, schedules.map((s) =>
        h('li', {}, h('strong', {}, s.name), ' — ', s.enabled ? `next ${date(s.next_run)}` : 'turned off',
          s.last_run ? ` · last ${date(s.last_run)}` : '',
          s.last_outcome && s.last_outcome.kind === 'backup_skipped'
            ? h('span', { class: 'skipped' }, ` · skipped ${date(s.last_outcome.time)}: ${s.last_outcome.message}`
              + (s.waiting && s.waiting.length ? ' (runs once its conditions hold)' : ''))
            : '')))
    : h('p', {}, 'No automatic backups yet.');
  return h('section', { class: 'card', 'aria-labelledby': 'auto-title' },
    h('h2', { id: 'auto-title' }, 'Automatic backups'), body,
    h('a', { href: '/schedules', class: 'button secondary' }, schedules.length ? 'Change automatic backups' : 'Set up automatic backups'));
}

function manualBackup(api, locations, units, running, list) {
  const loc = h('select', { name: 'location' }, locations.map((l) => h('option', { value: l.name, selected: l.default }, `${l.name} (${l.kind}${l.path ? ': ' + l.path : ''})`)));
  const name = h('input', { name: 'name', type: 'text', placeholder: 'e.g. Before the upgrade', maxlength: 200 });
  const unitBoxes = units.map((u) => {
    const size = h('span', { class: 'muted size', dataset: { unit: u.name } }, '');
    const lines = [u.title && u.title !== u.name ? u.title : null, u.paths.length ? u.paths.join(', ') : null].filter(Boolean).join(' · ');
    return h('div', { class: 'unit' },
      check(h('span', {}, h('strong', {}, u.name), ' ', size), { name: 'unit', value: u.name, checked: true }),
      lines ? h('small', { class: 'hint' }, lines) : null,
      u.not_included.length ? h('small', { class: 'hint' }, 'Not included: ', u.not_included.join('; ')) : null);
  });
  const unitBox = h('fieldset', { class: 'units', hidden: true }, h('legend', {}, 'Units to back up'), unitBoxes);
  const full = radio('kind', 'full', 'Full backup', true, '(every unit, and the configuration)');
  const partial = radio('kind', 'partial', 'Partial backup', false, '(the units you choose)');
  const error = h('div', {});
  const button = h('button', { type: 'submit' }, 'Back up now');
  const form = h('form', { class: 'card', 'aria-labelledby': 'manual-title' },
    h('h2', { id: 'manual-title' }, 'Back up now'),
    h('div', { class: 'grid' },
      field('Location', loc),
      field('Name (optional)', name)),
    h('fieldset', {}, h('legend', {}, 'What to back up'), full, partial),
    unitBox, error, h('div', { class: 'actions' }, button));
  form.addEventListener('change', (e) => {
    if (e.target.name === 'kind') unitBox.hidden = form.kind.value !== 'partial';
  });
  // Sizes take a walk over the files: shown when known, without holding up the page.
  api.get('/api/units?sizes=true').then((sized) => {
    for (const u of sized) {
      const el = form.querySelector(`.size[data-unit="${CSS.escape(u.name)}"]`);
      if (el) el.textContent = u.size !== null && u.size !== undefined ? `${bytes(u.size)}, ${count(u.files, 'file', 'files')}` : '';
    }
  }, () => {});
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.replaceChildren();
    const chosen = [...form.querySelectorAll('input[name=unit]:checked')].map((i) => i.value);
    const partialChosen = form.kind.value === 'partial';
    if (partialChosen && chosen.length === 0) {
      error.replaceChildren(errorBox(new Error('Choose at least one unit for a partial backup, or choose a full backup.')));
      return;
    }
    button.disabled = true;
    try {
      const body = { location: loc.value, units: partialChosen ? chosen : [] };
      if (name.value.trim()) body.name = name.value.trim();
      const { job } = await api.post('/api/backups', body);
      name.value = '';
      const view = await api.get(`/api/jobs/${job}`);
      running.prepend(jobPanel(api, view, { onDone: (v, box) => {
        backupOutcome(v, box);
        refreshList(api, list);
      } }));
    } catch (err) {
      error.replaceChildren(errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// What a finished backup job made: its status, and each unit's problem in words.
function backupOutcome(v, box) {
  const r = v.result;
  if (v.state !== 'succeeded' || !r) return;
  const words = { completed: 'The backup is complete.', completed_with_warnings: 'The backup is complete, with warnings.', failed: 'The backup failed.' };
  box.replaceChildren(...[
    h('p', { class: r.status === 'completed' ? 'ok' : r.status === 'failed' ? 'error' : 'warn-text' }, words[r.status] || r.status, ' ',
      h('a', { href: backupHref(r) }, `Open "${r.name || r.slug}"`)),
    (r.problems || []).length ? h('ul', { class: 'error' }, r.problems.map((p) => h('li', {}, p, '. Check the unit\'s settings, then back it up again.'))) : null,
  ].filter(Boolean));
}

async function refreshList(api, list) {
  try {
    list.replaceChildren(backupList(await api.get('/api/backups')));
  } catch (e) {
    list.replaceChildren(errorBox(e));
  }
}

// A backup's page: by location too, since a copied backup has the same slug in each.
export function backupHref(b) {
  return `/backups/${b.slug}?location=${encodeURIComponent(b.location)}`;
}

export function backupList(listing) {
  const problems = listing.unavailable.map((u) =>
    h('p', { class: 'notice warn', role: 'status' }, `The backups in ${u.location} cannot be listed: ${u.reason}. Connect it and reload.`));
  if (listing.backups.length === 0) return h('div', {}, problems, h('p', { class: 'muted' }, 'No backups yet.'));
  const head = ['Name', 'Date', 'Device', 'Location', 'Size', 'Type', 'Status', 'Protected', 'Pinned'];
  const rows = listing.backups.map((b) =>
    h('tr', { dataset: { slug: b.slug } },
      td('Name', h('a', { href: backupHref(b) }, b.name || b.slug)),
      td('Date', date(b.date)),
      td('Device', b.this_device ? `${b.device} (this device)` : b.device),
      td('Location', b.location),
      td('Size', bytes(b.size)),
      td('Type', b.type === 'full' ? 'Full' : `Partial: ${b.units.join(', ')}`),
      td('Status', statusBadge(b.status)),
      td('Protected', b.protected ? 'Password' : 'Device key'),
      td('Pinned', b.pinned ? 'Pinned' : '—')));
  return h('div', {}, problems,
    h('table', { class: 'list' }, h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, rows)));
}

