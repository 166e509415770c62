// Automatic backups: each schedule's frequency, days, time, connection, units, locations and
// retention; turned on or off; run now. Saved as a whole (PUT /api/schedules).

import { h, field, check, date, errorBox, notice, confirmDialog } from './ui.js';
import { go } from './app.js';

const DAYS = [['mon', 'Mon'], ['tue', 'Tue'], ['wed', 'Wed'], ['thu', 'Thu'], ['fri', 'Fri'], ['sat', 'Sat'], ['sun', 'Sun']];
const CONDITIONS = [
  ['reachable', 'The location answers'],
  ['unmetered', 'On an unmetered connection'],
  ['wifi', 'On Wi-Fi'],
  ['ethernet', 'On a wired network'],
  ['mains', 'On mains power'],
];
const KEEP = [
  ['keep_last', 'Keep the last'],
  ['keep_within', 'Keep all from the last … days'],
  ['keep_daily', 'Keep one a day for … days'],
  ['keep_weekly', 'Keep one a week for … weeks'],
  ['keep_monthly', 'Keep one a month for … months'],
];

export async function schedulesView(api) {
  const [schedules, locations, units] = await Promise.all([api.get('/api/schedules'), api.get('/api/locations'), api.get('/api/units')]);
  const all = Object.fromEntries(schedules.map((s) => [s.name, config(s)]));
  const save = async (next, message) => {
    const saved = await api.put('/api/schedules', next);
    notice(message);
    go('/schedules');
    return saved;
  };
  return h('div', {},
    h('h1', {}, 'Automatic backups'),
    h('p', {}, 'Lifeboat backs up on its own at the times set here, when the conditions hold; a run missed while the device was off runs once when it is back.'),
    schedules.map((s) => editor(api, s, all, locations, units, save)),
    editor(api, null, all, locations, units, save));
}

// When a schedule last ran, and a run skipped since (with why, and that it runs once its
// conditions hold): a skipped run is not a run.
export function lastRun(s) {
  const parts = [s.last_run ? `Last ran ${date(s.last_run)}.` : 'Has not run yet.'];
  const o = s.last_outcome;
  if (o && o.kind === 'backup_skipped') {
    parts.push(`Skipped ${date(o.time)}: ${o.message}.`);
  }
  if (s.waiting && s.waiting.length) {
    parts.push(`Runs as soon as its conditions hold (${s.waiting.map((w) => `${w.location}: ${w.reason}`).join('; ')}).`);
  }
  return h('p', { class: o && o.kind === 'backup_skipped' ? 'skipped' : 'muted' }, parts.join(' '));
}

// The schedule as the configuration holds it (without what the API adds).
function config(s) {
  const c = { ...s };
  delete c.name;
  delete c.next_run;
  delete c.last_run;
  delete c.last_outcome;
  delete c.waiting;
  return c;
}

function editor(api, s, all, locations, units, save) {
  const isNew = !s;
  const c = s || { every: 'day', at: '02:00', enabled: true };
  const title = isNew ? 'New automatic backup' : s.name;
  const name = h('input', { name: 'name', type: 'text', value: s ? s.name : 'nightly', pattern: '[A-Za-z0-9_\\-]+', required: true, readonly: !isNew });
  const every = h('select', { name: 'every' },
    [['day', 'Every day'], ['week', 'Every week'], ['month', 'Every month'], ['cron', 'A cron line']].map(([v, l]) =>
      h('option', { value: v, selected: (c.cron ? 'cron' : c.every || 'day') === v }, l)));
  const at = h('input', { name: 'at', type: 'time', value: c.at || '02:00', required: true });
  const day = h('input', { name: 'day', type: 'number', min: 1, max: 31, value: c.day || 1 });
  const cron = h('input', { name: 'cron', type: 'text', value: c.cron || '', placeholder: '30 2 * * 1-5' });
  const days = h('fieldset', { class: 'row' }, h('legend', {}, 'Days'), DAYS.map(([v, l]) => check(l, { name: 'days', value: v, checked: (c.days || []).includes(v) })));
  const dayField = field('Day of the month', day, 'Past the end of a short month: its last day.');
  const cronField = field('Cron line', cron, 'minute hour day-of-month month day-of-week');
  const atField = field('Time', at);
  const locs = h('fieldset', {}, h('legend', {}, 'Locations'),
    locations.map((l) => check(`${l.name} (${l.kind})`, { name: 'locations', value: l.name, checked: (c.locations || []).includes(l.name) || (!(c.locations || []).length && l.default) })));
  const unitSet = h('fieldset', {}, h('legend', {}, 'Units (none chosen: a full backup)'),
    units.map((u) => check(u.title && u.title !== u.name ? `${u.name} (${u.title})` : u.name, { name: 'units', value: u.name, checked: (c.units || []).includes(u.name) })));
  const when = h('fieldset', {}, h('legend', {}, 'Only when'),
    CONDITIONS.map(([v, l]) => check(l, { name: 'when', value: v, checked: (c.when || []).includes(v) })));
  const keep = h('fieldset', { class: 'grid' }, h('legend', {}, 'Retention (backups of this schedule; pinned ones always stay)'),
    KEEP.map(([k, l]) => field(l, h('input', { name: k, type: 'number', min: 0, value: c[k] ?? '', placeholder: 'no limit' }))));
  const enabled = check('Turned on', { name: 'enabled', checked: c.enabled !== false });
  const error = h('div', {});
  const shown = () => {
    const v = every.value;
    days.hidden = v !== 'week';
    dayField.hidden = v !== 'month';
    cronField.hidden = v !== 'cron';
    atField.hidden = v === 'cron';
  };
  shown();
  every.addEventListener('change', shown);
  const actions = h('div', { class: 'actions wrap' }, h('button', { type: 'submit' }, isNew ? 'Add' : 'Save'));
  if (!isNew) {
    const run = h('button', { type: 'button', class: 'secondary' }, 'Run now');
    run.addEventListener('click', async () => {
      error.replaceChildren();
      try {
        const decisions = await api.post(`/api/schedules/${encodeURIComponent(s.name)}/run`);
        for (const d of decisions) {
          if (d.job) notice(`Backup to ${d.location} started.`);
          else notice(`Not run at ${d.location}: ${d.skipped || d.reason || 'a condition does not hold'}.`, 'warn');
        }
      } catch (e) {
        error.replaceChildren(errorBox(e));
      }
    });
    const remove = h('button', { type: 'button', class: 'danger' }, 'Remove');
    remove.addEventListener('click', async () => {
      if (!(await confirmDialog(`Remove the schedule ${s.name}?`, 'Its backups stay; no more are made by it.', 'Remove'))) return;
      const next = { ...all };
      delete next[s.name];
      try {
        await save(next, `Schedule ${s.name} removed.`);
      } catch (e) {
        error.replaceChildren(errorBox(e));
      }
    });
    actions.append(run, remove);
  }
  const form = h('form', { class: 'card schedule', 'aria-label': title, dataset: { schedule: s ? s.name : '' } },
    h('h2', {}, title, s && s.enabled ? h('small', { class: 'muted' }, ` · next ${date(s.next_run)}`) : null),
    s ? lastRun(s) : null,
    h('div', { class: 'grid' }, field('Name', name), field('How often', every), atField, dayField, cronField),
    days, enabled, locs, unitSet, when, keep, error, actions);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.replaceChildren();
    const n = name.value.trim();
    if (!/^[A-Za-z0-9_-]+$/.test(n)) {
      error.replaceChildren(errorBox(new Error('A schedule\'s name may hold only letters, digits, - and _.')));
      return;
    }
    if (isNew && all[n]) {
      error.replaceChildren(errorBox(new Error(`There is already a schedule called ${n}: choose another name.`)));
      return;
    }
    const values = (field) => [...form.querySelectorAll(`input[name=${field}]:checked`)].map((i) => i.value);
    const sc = { enabled: enabled.querySelector('input').checked };
    if (every.value === 'cron') sc.cron = cron.value.trim();
    else {
      sc.every = every.value;
      sc.at = at.value;
      if (every.value === 'week') sc.days = values('days');
      if (every.value === 'month') sc.day = Number(day.value);
    }
    for (const k of ['units', 'locations', 'when']) {
      const v = values(k);
      if (v.length) sc[k] = v;
    }
    for (const [k] of KEEP) {
      const v = form.querySelector(`input[name=${k}]`).value;
      if (v !== '') sc[k] = Number(v);
    }
    try {
      await save({ ...all, [n]: sc }, `Schedule ${n} saved.`);
    } catch (err) {
      error.replaceChildren(errorBox(err));
    }
  });
  return form;
}
