// A new device's first run, through the page only, in Debian's headless Chromium: connecting
// to an SFTP server it does not know yet (its key's fingerprint shown and trusted), whose
// backups are password protected (the password asked for), and taking the old device's
// settings from a backup there; and the same settings from an uploaded backup file. Started by
// crates/cli/tests/suite/web.rs, which checks the configuration files afterwards.

import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this through cargo test --test suite web::`);
  return v;
};
const SHOTS = env('LB_SHOTS');
const LONG = { timeout: 180_000 };

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic'],
});
const problems = [];
let current = null;

async function newPage(base) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: base });
  const page = await ctx.newPage();
  current = page;
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401|403|404|409|424|Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return page;
}

async function shots(page, name) {
  for (const width of [360, 1280]) {
    await page.setViewportSize({ width, height: 900 });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= width, `${name} at ${width} px is ${wide} px wide: something is cut off`);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

async function signIn(page, token) {
  await page.goto('/');
  await page.getByLabel('API token or password').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Bring back your backups' }).waitFor();
}

// Takes the settings offered on a backup's page; `secrets` fills the secrets asked for.
async function takeSettings(page, secrets) {
  const setup = page.locator('section', { has: page.getByRole('heading', { name: 'Settings of the device that made it' }) });
  await setup.waitFor(LONG);
  assert.match(await setup.textContent(), /Units: docs \(Documents\), notes\./);
  assert.match(await setup.textContent(), /Automatic backups: nightly\./);
  assert.match(await setup.textContent(), /Locations: .*cloud \(webdav\).*nas \(sftp\)/);
  for (const [label, value] of Object.entries(secrets)) await setup.getByLabel(label).fill(value);
  await shots(page, `setup-offer-${Object.keys(secrets).length}`);
  await setup.getByRole('button', { name: 'Use these settings' }).click();
  await setup.getByText(/^Settings added: units docs, notes; automatic backups nightly; locations .*cloud/).waitFor(LONG);
  return setup;
}

try {
  // --- Device B: from the old device's SFTP server ----------------------------------------
  const page = await newPage(env('LB_URL_B'));
  await signIn(page, env('LB_TOKEN_B'));
  const connect = page.locator('form', { has: page.getByRole('heading', { name: 'Restore from a location' }) });
  await connect.getByLabel('Kind').selectOption('sftp');
  await connect.getByLabel('Path').fill(env('LB_SFTP_PATH'));
  await connect.getByLabel('host', { exact: true }).fill('127.0.0.1');
  await connect.getByLabel('port', { exact: true }).fill(env('LB_SFTP_PORT'));
  await connect.getByLabel('user', { exact: true }).fill(env('LB_SFTP_USER'));
  await connect.getByLabel('key file').fill(env('LB_SFTP_KEY'));
  await connect.getByRole('button', { name: 'Connect' }).click();

  // Not known yet: its fingerprint, as ssh-keygen -l prints it, and a step to trust it.
  const fingerprint = connect.locator('code.fingerprint');
  await fingerprint.waitFor(LONG);
  assert.equal(await fingerprint.textContent(), env('LB_FINGERPRINT'));
  assert.match(await connect.textContent(), /is not known to this device yet/);
  assert.doesNotMatch(await connect.textContent(), /does not match/);
  await shots(page, 'unknown-host');
  await connect.getByRole('button', { name: 'Trust this key' }).click();

  // Trusted; the backups there are password protected: the page asks for it.
  await connect.getByText(/The backups there are password protected/).waitFor(LONG);
  await connect.getByLabel('Password or recovery key of those backups').fill(env('LB_PASSWORD_A'));
  await connect.getByRole('button', { name: 'Connect' }).click();
  await connect.getByText('Connected to old.').waitFor(LONG);
  await connect.getByRole('link', { name: 'On the NAS' }).click();
  await page.getByRole('heading', { name: 'On the NAS', level: 1 }).waitFor();
  await takeSettings(page, { 'password of location cloud': 'webdav-again' });

  // --- Device D: from an uploaded backup file ---------------------------------------------
  const fresh = await newPage(env('LB_URL_D'));
  await signIn(fresh, env('LB_TOKEN_D'));
  await fresh.getByLabel('Backup file (.tar, as downloaded from Lifeboat)', { exact: true }).setInputFiles(env('LB_FILE'));
  await fresh.getByRole('button', { name: 'Upload and continue' }).click();
  await fresh.getByRole('heading', { name: 'For the file', level: 1 }).waitFor(LONG);
  const setup = await takeSettings(fresh, {});
  await setup.getByText("Still to give: cloud's password.").waitFor();

  assert.deepEqual(problems, [], 'the page ran without script errors');
  console.log('web onboarding: all steps passed');
} catch (e) {
  console.error(e);
  if (current) await current.screenshot({ path: path.join(SHOTS, 'onboarding-failure.png'), fullPage: true }).catch(() => {});
  for (const p of problems) console.error(p);
  process.exitCode = 1;
} finally {
  await browser.close();
}
