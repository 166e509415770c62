// First run: a machine with no backups yet can bring back an old one's, from a backup file
// (uploaded) or from a location where the old machine kept them (connected, listed, restored).

import { h, field, check, bytes, errorBox } from './ui.js';
import { backupList } from './home.js';
import { go } from './app.js';

// The keys each kind of location takes (docs/CONFIG.md), beside name, type and path.
const KINDS = {
  local: { label: 'A folder on this device', keys: [] },
  removable: { label: 'A memory card or USB disk', keys: [] },
  sftp: { label: 'A server over SFTP', keys: ['host', 'port', 'user', 'password', 'key_file', 'known_hosts'] },
  s3: { label: 'S3-compatible storage', keys: ['endpoint', 'bucket', 'region', 'access_key_id', 'secret_access_key'] },
  webdav: { label: 'WebDAV (Nextcloud)', keys: ['url', 'username', 'password'] },
  smb: { label: 'A Windows or Samba share', keys: ['host', 'share', 'username', 'password'] },
};
const SECRET_KEYS = ['password', 'secret_access_key'];

export function welcomePanel(api, locations) {
  return h('section', { class: 'card welcome', 'aria-labelledby': 'welcome-title' },
    h('h2', { id: 'welcome-title' }, 'Bring back your backups'),
    h('p', {}, 'This device has no backups yet. If another one made backups, restore them here; otherwise make the first backup below.'),
    h('div', { class: 'two' }, fromFile(api, locations), fromLocation(api)));
}

function fromFile(api, locations) {
  const file = h('input', { type: 'file', name: 'file', accept: '.tar,application/x-tar', required: true });
  const loc = h('select', { name: 'location' }, locations.map((l) => h('option', { value: l.name, selected: l.default }, l.name)));
  const bar = h('progress', { max: 100, value: 0, hidden: true, 'aria-label': 'Upload progress' });
  const result = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit' }, 'Upload and continue');
  const form = h('form', { class: 'panel', 'aria-labelledby': 'file-title' },
    h('h3', { id: 'file-title' }, 'Restore from a backup file'),
    field('Backup file (.tar, as downloaded from Lifeboat)', file),
    field('Keep it in', loc),
    bar, result, h('div', { class: 'actions' }, button));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    result.replaceChildren();
    if (!file.files.length) {
      result.replaceChildren(errorBox(new Error('Choose the backup file first.')));
      return;
    }
    button.disabled = true;
    bar.hidden = false;
    try {
      const up = await api.upload(`/api/backups/upload?location=${encodeURIComponent(loc.value)}`, file.files[0], (done, total) => {
        bar.value = (100 * done) / total;
        result.textContent = `Uploaded ${bytes(done)} of ${bytes(total)}`;
      });
      go(`/backups/${up.slug}?location=${encodeURIComponent(up.location)}`);
    } catch (err) {
      result.replaceChildren(errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function fromLocation(api) {
  const name = h('input', { name: 'name', type: 'text', value: 'old', pattern: '[A-Za-z0-9_\\-]+', required: true });
  const kind = h('select', { name: 'type' }, Object.entries(KINDS).map(([k, v]) => h('option', { value: k }, v.label)));
  const path = h('input', { name: 'path', type: 'text', placeholder: '/media/card/lifeboat' });
  const keys = h('div', { class: 'grid' });
  const secret = h('input', { name: 'secret', type: 'password', autocomplete: 'off' });
  const result = h('div', { 'aria-live': 'polite' });
  const showKeys = () => {
    keys.replaceChildren(...KINDS[kind.value].keys.map((k) =>
      field(k.replace(/_/g, ' '), h('input', { name: `key-${k}`, dataset: { key: k }, type: SECRET_KEYS.includes(k) ? 'password' : 'text', autocomplete: 'off' }))));
  };
  showKeys();
  kind.addEventListener('change', showKeys);
  const button = h('button', { type: 'submit' }, 'Connect');
  // A server not known yet: its key's fingerprint, once the person confirmed it.
  let trusted = null;
  const form = h('form', { class: 'panel', 'aria-labelledby': 'loc-title' },
    h('h3', { id: 'loc-title' }, 'Restore from a location'),
    h('div', { class: 'grid' }, field('Name for it', name), field('Kind', kind)),
    field('Path', path, 'A folder, or the folder inside the server or share.'),
    keys,
    field('Password or recovery key of those backups', secret, 'This device gets its own key to them; the password is not stored.'),
    check('Make it the default location', { name: 'default' }),
    result, h('div', { class: 'actions' }, button));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    result.replaceChildren();
    const settings = {};
    for (const input of keys.querySelectorAll('input')) if (input.value.trim()) settings[input.dataset.key] = input.value.trim();
    const body = { name: name.value.trim(), type: kind.value, settings, default: form.default.checked };
    if (path.value.trim()) body.path = path.value.trim();
    if (secret.value) body.secret = secret.value;
    if (trusted) body.trust_host_key = trusted;
    button.disabled = true;
    try {
      await api.post('/api/locations', body);
      const listing = await api.get('/api/backups');
      const mine = { backups: listing.backups.filter((b) => b.location === body.name), unavailable: listing.unavailable.filter((u) => u.location === body.name) };
      result.replaceChildren(h('p', { class: 'ok' }, `Connected to ${body.name}. Open a backup to restore it:`), backupList(mine));
    } catch (err) {
      const host = err.data && err.data.unknown_host;
      if (host) {
        result.replaceChildren(trustStep(host, () => {
          trusted = host.fingerprint;
          form.requestSubmit();
        }));
      } else if (err.data && err.data.kind === 'wrong_key' && !secret.value) {
        result.replaceChildren(h('p', { class: 'error', role: 'alert' },
          'The backups there are password protected. Enter their password or recovery key below and connect again: this device then keeps a key of its own to them.'));
        secret.focus();
      } else {
        result.replaceChildren(errorBox(err));
      }
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// A server seen for the first time: its key's fingerprint, to compare with the server's own
// before trusting it. A key that differs from a known one is an error, never offered here.
function trustStep(host, trust) {
  const button = h('button', { type: 'button' }, 'Trust this key');
  button.addEventListener('click', trust);
  return h('div', { class: 'panel trust', role: 'alert' },
    h('p', {}, `The server ${host.server} is not known to this device yet. Its host key's fingerprint is:`),
    h('p', {}, h('code', { class: 'fingerprint' }, host.fingerprint)),
    h('p', {}, 'Compare it with the server\'s own (on the server: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub). Trust it only if they are the same.'),
    h('div', { class: 'actions' }, button));
}
