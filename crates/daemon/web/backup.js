// One backup: its units and log, and what can be done with it — restore, download, copy,
// pin, delete.

import { h, td, field, check, radio, bytes, count, date, statusBadge, errorBox, jobPanel, confirmDialog, notice } from './ui.js';
import { go } from './app.js';
import { backupHref } from './home.js';
import { filesSection, changesSection } from './files.js';

export async function backupView(api, slug) {
  const at = new URLSearchParams(location.search).get('location');
  const q = at ? `?location=${encodeURIComponent(at)}` : '';
  const [b, locations, logs] = await Promise.all([
    api.get(`/api/backups/${slug}${q}`),
    api.get('/api/locations'),
    api.get('/api/logs').catch(() => []),
  ]);
  const facts = [
    ['Date', date(b.date)],
    ['Location', b.location],
    ['Type', b.type === 'full' ? 'Full' : 'Partial'],
    ['Status', statusBadge(b.status)],
    ['Size', `${bytes(b.size)} in ${count(b.files, 'file', 'files')}`],
    ['Stored', `${bytes(b.stored)} new in the location`],
    ['Protected', b.protected ? 'With a password' : 'With this device\'s key'],
    ['Device', b.this_device ? `${b.device} (this device)` : b.device],
    ['Made on', `${b.host} by ${b.user} (home ${b.home})`],
    ['Pinned', b.pinned ? 'Yes: retention never removes it' : 'No'],
    ['Identifier', b.slug],
  ];
  const log = logs.find((l) => l.slug === b.slug && l.operation === 'backup');
  // Files and folders ticked in the browser: the restore form restores only those.
  const selection = new Set();
  const restore = restoreForm(api, b, q, selection);
  return h('div', {},
    h('p', {}, h('a', { href: '/' }, '← All backups')),
    h('h1', {}, b.name || b.slug),
    h('section', { class: 'card' }, h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
    b.this_device ? null : setupSection(api, b, q),
    h('section', { class: 'card', 'aria-labelledby': 'units-title' },
      h('h2', { id: 'units-title' }, 'Units'),
      h('table', { class: 'list' },
        h('thead', {}, h('tr', {}, ['Unit', 'Files', 'Size', 'Status', 'Notes'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, b.unit_details.map((u) =>
          h('tr', {},
            td('Unit', h('strong', {}, u.name), u.title && u.title !== u.name ? ` (${u.title})` : ''),
            td('Files', u.files),
            td('Size', bytes(u.size)),
            td('Status', statusBadge(u.status)),
            td('Notes', u.error ? h('div', { class: 'error' }, u.error) : null,
              u.warnings.map((w) => h('div', { class: 'warn-text' }, w)),
              u.not_included.length ? h('div', { class: 'muted' }, 'Not included: ', u.not_included.join('; ')) : null)))))),
    filesSection(api, b, q, selection, () => restore.dispatchEvent(new Event('selection'))),
    restore,
    changesSection(api, b, q),
    h('section', { class: 'card', 'aria-labelledby': 'more-title' },
      h('h2', { id: 'more-title' }, 'Keep, move or remove'),
      h('div', { class: 'actions wrap' },
        b.protected
          ? h('a', { class: 'button secondary', href: `/api/backups/${b.slug}/download${q}`, download: `lifeboat-${b.slug}.tar` }, 'Download a backup file')
          : h('a', {
            class: 'button secondary',
            href: `/api/backups/${b.slug}/download${q ? `${q}&` : '?'}unencrypted=true`,
            download: `lifeboat-${b.slug}.tar`,
            title: 'This backup is not password protected: anyone who gets the file can read what it holds.',
          }, 'Download a backup file (not encrypted)'),
        pinButton(api, b, q),
        deleteButton(api, b, q)),
      b.protected ? null : h('p', { class: 'muted' }, 'This backup is not password protected, so its file is not encrypted: anyone who gets the file can read what it holds.'),
      copyForm(api, b, locations, q)),
    h('section', { class: 'card', 'aria-labelledby': 'log-title' },
      h('h2', { id: 'log-title' }, 'Log'),
      log ? logViewer(api, log.name) : h('p', { class: 'muted' }, 'No log of this backup on this device (it was made elsewhere, or its log was removed).')));
}

// Another device's backup carries that device's settings (units, schedules, locations; no
// secrets): a new device takes them here, giving the secrets again.
function setupSection(api, b, q) {
  const section = h('section', { class: 'card', 'aria-labelledby': 'setup-title', hidden: true });
  api.get(`/api/backups/${b.slug}/setup${q}`).then((offer) => {
    const names = (xs) => (xs.length ? xs.join(', ') : 'none');
    const secrets = offer.locations.flatMap((l) => l.secrets.map((k) => ({ location: l.name, key: k,
      input: h('input', { type: 'password', autocomplete: 'off', name: `secret-${l.name}-${k}` }) })));
    const result = h('div', { 'aria-live': 'polite' });
    const button = h('button', { type: 'submit' }, 'Use these settings');
    const form = h('form', {},
      h('p', {}, `Units: ${names(offer.units.map((u) => (u.title !== u.name ? `${u.name} (${u.title})` : u.name)))}.`),
      h('p', {}, `Automatic backups: ${names(offer.schedules)}.`),
      h('p', {}, `Locations: ${names(offer.locations.map((l) => `${l.name} (${l.kind}) at ${l.address}`))}.`),
      offer.left_out.length ? h('ul', { class: 'muted' }, offer.left_out.map((w) => h('li', {}, `Left out: ${w}.`))) : null,
      secrets.length ? h('p', {}, 'Secrets are never kept in a backup: give them again (or later, in the configuration file).') : null,
      secrets.map((s) => field(`${s.key.replace(/_/g, ' ')} of location ${s.location}`, s.input)),
      result, h('div', { class: 'actions' }, button));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = { secrets: {} };
      for (const s of secrets) {
        if (!s.input.value) continue;
        body.secrets[s.location] = body.secrets[s.location] || {};
        body.secrets[s.location][s.key] = s.input.value;
      }
      button.disabled = true;
      try {
        const done = await api.post(`/api/backups/${b.slug}/setup${q}`, body);
        const lines = [h('p', { class: 'ok' }, `Settings added: units ${names(done.units)}; automatic backups ${names(done.schedules)}; locations ${names(done.locations)}.`)];
        if (done.default_location) lines.push(h('p', {}, `Backups go to location ${done.default_location} by default now.`));
        if (done.kept.length) lines.push(h('p', { class: 'muted' }, `This device kept its own ${done.kept.join(', ')}.`));
        for (const m of done.missing_secrets) lines.push(h('p', { class: 'warn-text' }, `Still to give: ${m.replace('.', "'s ")}.`));
        result.replaceChildren(...lines);
      } catch (err) {
        result.replaceChildren(errorBox(err));
      } finally {
        button.disabled = false;
      }
    });
    section.replaceChildren(h('h2', { id: 'setup-title' }, 'Settings of the device that made it'),
      h('p', {}, 'Take its units, automatic backups and locations on this device.'), form);
    section.hidden = false;
  }, (err) => {
    // A backup without settings (older, or a safety backup) simply has none to offer.
    if (err.status !== 404) {
      section.replaceChildren(errorBox(err));
      section.hidden = false;
    }
  });
  return section;
}

function logViewer(api, name) {
  const pre = h('pre', { class: 'log', tabindex: 0, 'aria-label': 'The backup\'s log' }, 'Loading…');
  api.get(`/api/logs/${encodeURIComponent(name)}`).then((t) => (pre.textContent = t || '(empty)'), (e) => pre.replaceWith(errorBox(e)));
  return h('div', {}, pre, h('a', { href: `/logs/${encodeURIComponent(name)}` }, 'Open the log on its own'));
}

function restoreForm(api, b, q, selection) {
  const unitChecks = b.unit_details.map((u) => check(u.name, { name: 'unit', value: u.name, checked: true }));
  const target = h('input', { name: 'target', type: 'text', placeholder: '/var/tmp/restored', autocomplete: 'off' });
  const home = h('input', { name: 'home', type: 'text', placeholder: '/home/someone', autocomplete: 'off' });
  const targetField = field('Folder to restore under', target, 'Each file lands at FOLDER/its/original/path; nothing in place is touched.');
  const homeField = field('That user\'s home folder', home, 'Files from the home folder of the backup land in this one.');
  targetField.hidden = true;
  homeField.hidden = true;
  const result = h('div', {});
  const button = h('button', { type: 'submit' }, 'Restore');
  const chosen = h('p', { class: 'notice', role: 'status', hidden: true });
  // Another device's backup in place puts that device's files here: said before the button,
  // and the request names the device (the API refuses it otherwise).
  const otherDevice = b.this_device ? null : h('p', { class: 'notice warn', role: 'note', dataset: { otherDevice: b.device } },
    `This backup is from ${b.device}, not this device: restored in place, its files replace this device's.`);
  const units = h('fieldset', {}, h('legend', {}, 'Units'), unitChecks);
  const form = h('form', { class: 'card', 'aria-labelledby': 'restore-title' },
    h('h2', { id: 'restore-title' }, 'Restore'),
    chosen, units,
    h('fieldset', {}, h('legend', {}, 'Where'),
      radio('where', 'place', 'In place, on this device', true, '(a safety backup of what is overwritten is made first)'),
      radio('where', 'target', 'Under another folder', false),
      radio('where', 'home', 'Into another user\'s home', false)),
    targetField, homeField,
    h('fieldset', {}, h('legend', {}, 'Files already there'),
      radio('mode', 'merge', 'Merge', true, '(restored files replace those of the same name; others stay)'),
      radio('mode', 'replace', 'Replace', false, '(the restored folders become exactly what the backup holds)')),
    otherDevice, h('div', { class: 'actions' }, button), result);
  form.addEventListener('selection', () => {
    const n = selection.size;
    chosen.hidden = n === 0;
    units.hidden = n > 0;
    chosen.textContent = n === 1 ? `Only ${[...selection][0]} is restored; everything else stays as it is.`
      : `Only the ${n} chosen files and folders are restored; everything else stays as it is.`;
  });
  form.addEventListener('change', (e) => {
    if (e.target.name === 'where') {
      targetField.hidden = form.where.value !== 'target';
      homeField.hidden = form.where.value !== 'home';
    }
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    result.replaceChildren();
    const units = [...form.querySelectorAll('input[name=unit]:checked')].map((i) => i.value);
    if (units.length === 0 && selection.size === 0) {
      result.replaceChildren(errorBox(new Error('Choose at least one unit to restore.')));
      return;
    }
    const body = selection.size
      ? { paths: [...selection], mode: form.mode.value }
      : { units: units.length === b.unit_details.length ? [] : units, mode: form.mode.value };
    const where = form.where.value;
    const path = where === 'target' ? target.value.trim() : where === 'home' ? home.value.trim() : null;
    if (where !== 'place' && !path.startsWith('/')) {
      result.replaceChildren(errorBox(new Error('Give a full folder path, starting with /.')));
      return;
    }
    if (where === 'target') body.target = path;
    if (where === 'home') body.home = path;
    if (where !== 'target' && !b.this_device) body.from_device = b.device;
    if (where === 'place' && form.mode.value === 'replace') {
      const ok = await confirmDialog('Replace the files on this device?', 'Files in the restored folders that the backup does not hold will be removed (a safety backup is made first).', 'Replace');
      if (!ok) return;
    }
    button.disabled = true;
    try {
      const { job } = await api.post(`/api/backups/${b.slug}/restore${q}`, body);
      const view = await api.get(`/api/jobs/${job}`);
      result.replaceChildren(jobPanel(api, view, {
        onDone: (v, box) => {
          button.disabled = false;
          const r = v.result || {};
          const problems = r.problems || [];
          const list = (cls) => (problems.length ? h('ul', { class: cls }, problems.map((p) => h('li', {}, typeof p === 'string' ? p : JSON.stringify(p)))) : null);
          // Failed with a result: some of it was restored, and each problem says what was not.
          if (v.state === 'failed' && v.result) {
            box.append(...[h('p', {}, `Restored ${count(r.files ?? 0, 'file', 'files')}; ${r.not_restored} not restored:`), list('error')].filter(Boolean));
            return;
          }
          if (v.state !== 'succeeded') return;
          box.replaceChildren(...[h('p', { class: 'ok' }, `Restored ${count(r.files ?? 0, 'file', 'files')}${r.safety_backup ? `; the safety backup is ${r.safety_backup}` : ''}.`),
            list('warn-text')].filter(Boolean));
        },
      }));
    } catch (err) {
      button.disabled = false;
      result.replaceChildren(errorBox(err));
    }
  });
  return form;
}

function pinButton(api, b, q) {
  const button = h('button', { type: 'button', class: 'secondary', 'aria-pressed': b.pinned ? 'true' : 'false' }, b.pinned ? 'Unpin' : 'Pin (keep for good)');
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const after = await api.post(`/api/backups/${b.slug}/pin${q}`, { pinned: !b.pinned });
      notice(after.pinned ? 'Pinned: retention will not remove it.' : 'Unpinned.');
      go(backupHref(after));
    } catch (e) {
      notice(e.message, 'error');
      button.disabled = false;
    }
  });
  return button;
}

function deleteButton(api, b, q) {
  const button = h('button', { type: 'button', class: 'danger' }, 'Delete');
  button.addEventListener('click', async () => {
    const ok = await confirmDialog(`Delete "${b.name || b.slug}"?`, `The backup of ${date(b.date)} in ${b.location} is removed for good. Its space is reclaimed by the next prune.`, 'Delete');
    if (!ok) return;
    try {
      await api.del(`/api/backups/${b.slug}${q}`);
      notice(`Backup "${b.name || b.slug}" deleted.`);
      go('/');
    } catch (e) {
      notice(e.message, 'error');
    }
  });
  return button;
}

function copyForm(api, b, locations, q) {
  const others = locations.filter((l) => l.name !== b.location);
  if (others.length === 0) return h('p', { class: 'muted' }, 'Add another location to copy backups to it.');
  const to = h('select', { name: 'to' }, others.map((l) => h('option', { value: l.name }, `${l.name} (${l.kind})`)));
  const result = h('div', {});
  const form = h('form', { class: 'inline' }, field('Copy to', to), h('button', { type: 'submit', class: 'secondary' }, 'Copy'), result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const { job } = await api.post(`/api/backups/${b.slug}/copy${q}`, { to: to.value });
      result.replaceChildren(jobPanel(api, await api.get(`/api/jobs/${job}`), { showLog: false }));
    } catch (err) {
      result.replaceChildren(errorBox(err));
    }
  });
  return form;
}
