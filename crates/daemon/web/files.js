// Inside a backup: browse its folders, download one file, choose files and folders to
// restore, see what changed since the backup before; and, on the home page, find a file
// in every backup.

import { h, td, bytes, count, date, errorBox } from './ui.js';

const PAGE = 200;

function fileHref(b, q, path) {
  const sep = q ? '&' : '?';
  return `/api/backups/${b.slug}/file${q}${sep}path=${encodeURIComponent(path)}`;
}

function nameOf(path) {
  const i = path.lastIndexOf('/');
  return i < 0 || path === '/' ? path : path.slice(i + 1) || path;
}

// The file browser of a backup. `selection` (a Set of paths) is what the restore form
// restores when it is not empty; `onSelect` is told when it changes.
export function filesSection(api, b, q, selection, onSelect) {
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Folder' });
  const table = h('div', {});
  const more = h('div', {});
  const section = h('section', { class: 'card', 'aria-labelledby': 'files-title' },
    h('h2', { id: 'files-title' }, 'Files'),
    h('p', { class: 'muted' }, 'Open folders, download a file, or tick files and folders to restore only those.'),
    crumbs, table, more);

  async function open(path, offset = 0) {
    const params = new URLSearchParams(q ? q.slice(1) : '');
    if (path) params.set('path', path);
    params.set('offset', offset);
    params.set('limit', PAGE);
    let page;
    try {
      page = await api.get(`/api/backups/${b.slug}/files?${params}`);
    } catch (e) {
      table.replaceChildren(errorBox(e));
      return;
    }
    crumbs.replaceChildren(...breadcrumbs(path, open));
    const rows = page.entries.map((e) => row(e));
    const body = h('tbody', {}, rows);
    if (offset === 0) {
      table.replaceChildren(page.entries.length === 0
        ? h('p', { class: 'muted' }, 'This folder is empty.')
        : h('table', { class: 'list files' },
          h('thead', {}, h('tr', {}, ['', 'Name', 'Size', 'Modified', ''].map((c) => h('th', { scope: 'col' }, c)))), body));
    } else {
      table.querySelector('tbody').append(...rows);
    }
    const shown = offset + page.entries.length;
    more.replaceChildren(shown < page.total
      ? h('button', { type: 'button', class: 'secondary', onclick: () => open(path, shown) }, `Show more (${page.total - shown} left)`)
      : '');
  }

  function row(e) {
    const box = h('input', { type: 'checkbox', 'aria-label': `Choose ${e.path}`, checked: selection.has(e.path) });
    box.addEventListener('change', () => {
      if (box.checked) selection.add(e.path);
      else selection.delete(e.path);
      onSelect();
    });
    const name = e.type === 'dir'
      ? h('button', { type: 'button', class: 'link', onclick: () => open(e.path) }, `${nameOf(e.path)}/`)
      : h('span', {}, nameOf(e.path), e.target ? h('span', { class: 'muted' }, ` → ${e.target}`) : null);
    const download = e.type === 'file'
      ? h('a', { href: fileHref(b, q, e.path), download: nameOf(e.path), 'aria-label': `Download ${nameOf(e.path)}` }, 'Download')
      : null;
    return h('tr', { dataset: { path: e.path } },
      td('Choose', box),
      td('Name', name),
      td('Size', e.type === 'file' ? bytes(e.size) : '—'),
      td('Modified', e.mtime ? date(e.mtime) : '—'),
      td('', download));
  }

  open(null);
  return section;
}

function breadcrumbs(path, open) {
  const out = [h('button', { type: 'button', class: 'link', onclick: () => open(null) }, 'Units')];
  if (!path) return out;
  const anchor = path.startsWith('~') ? '~' : '/';
  const parts = path.slice(anchor.length).split('/').filter(Boolean);
  let at = anchor === '~' ? '~' : '';
  if (anchor === '~') out.push(' / ', h('button', { type: 'button', class: 'link', onclick: () => open('~') }, '~'));
  for (const p of parts) {
    at = `${at}/${p}`;
    const here = at;
    out.push(' / ', h('button', { type: 'button', class: 'link', onclick: () => open(here) }, p));
  }
  return out;
}

// What changed since the backup before this one in its location.
export function changesSection(api, b, q) {
  const result = h('div', {});
  const button = h('button', { type: 'button', class: 'secondary' }, 'What changed since the backup before');
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const listing = await api.get(`/api/backups?location=${encodeURIComponent(b.location)}`);
      const older = listing.backups.filter((x) => x.date < b.date).sort((x, y) => (x.date < y.date ? 1 : -1))[0];
      if (!older) {
        result.replaceChildren(h('p', { class: 'muted' }, 'This is the oldest backup in its location.'));
        return;
      }
      const sep = q ? '&' : '?';
      const d = await api.get(`/api/backups/${older.slug}/diff${q}${sep}to=${b.slug}`);
      const list = (title, items, sign) => items.length
        ? [h('h3', {}, `${title} (${items.length})`), h('ul', { class: 'plain changes' }, items.map((c) =>
          h('li', {}, `${sign} ${c.path}`, c.what ? h('span', { class: 'muted' }, ` (${c.what})`) : null)))]
        : [];
      result.replaceChildren(
        h('p', {}, `Since ${older.name || older.slug} (${date(older.date)}): ${d.added.length} added, ${d.removed.length} removed, ${d.modified.length} modified.`),
        ...list('Added', d.added, '+'), ...list('Removed', d.removed, '−'), ...list('Modified', d.modified, '~'));
    } catch (e) {
      result.replaceChildren(errorBox(e));
    } finally {
      button.disabled = false;
    }
  });
  return h('section', { class: 'card', 'aria-labelledby': 'changes-title' },
    h('h2', { id: 'changes-title' }, 'Changes'), h('div', { class: 'actions' }, button), result);
}

// A search over every backup of every location: each path found with its versions.
export function searchSection(api) {
  const input = h('input', { type: 'search', name: 'pattern', id: 'search-pattern', placeholder: 'report.pdf or *.jpg', autocomplete: 'off' });
  const result = h('div', { id: 'search-results' });
  const form = h('form', { class: 'card', role: 'search', 'aria-labelledby': 'search-title' },
    h('h2', { id: 'search-title' }, 'Find a file'),
    h('div', { class: 'field' }, h('label', { for: input.id }, 'Name or pattern, in every backup'), input),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Find')), result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const pattern = input.value.trim();
    if (!pattern) return;
    result.replaceChildren(h('p', { class: 'muted' }, 'Searching…'));
    try {
      const s = await api.get(`/api/search?pattern=${encodeURIComponent(pattern)}`);
      const warn = s.unavailable.map((u) => h('p', { class: 'notice warn' }, `${u.location} was not searched: ${u.reason}`));
      if (s.paths.length === 0) {
        result.replaceChildren(...warn, h('p', { class: 'muted' }, `Nothing matches ${pattern} in the ${count(s.backups, 'backup', 'backups')}.`));
        return;
      }
      const version = (p, v) => h('li', { class: 'version' },
        `${v.type === 'file' ? bytes(v.size) : v.type}, modified ${date(v.mtime)}, in `,
        v.backups.map((slug, i) => [i ? ', ' : '', h('a', { href: `/backups/${slug}` }, slug)]),
        v.type === 'file'
          ? [' · ', h('a', { href: `/api/backups/${v.backups[0]}/file?path=${encodeURIComponent(p.path)}`, download: nameOf(p.path) }, 'Download')]
          : null);
      const rows = s.paths.map((p) => h('tr', {},
        td('Path', h('strong', {}, p.path)),
        td('Versions', h('ul', { class: 'plain' }, p.versions.map((v) => version(p, v))))));
      result.replaceChildren(...warn, h('table', { class: 'list found' },
        h('thead', {}, h('tr', {}, ['Path', 'Versions'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows)));
    } catch (err) {
      result.replaceChildren(errorBox(err));
    }
  });
  return form;
}
