// The Backups page, through the page only, in Debian's headless Chromium. Started by
// crates/cli/tests/web.rs, which runs the daemons, passes their addresses in LB_* variables,
// and checks the restored files on disk afterwards.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set: run this through cargo test --test web`);
  return v;
};
const A = env('LB_URL_A');
const B = env('LB_URL_B');
const SHOTS = env('LB_SHOTS');
// Generous: waits end as soon as the page shows the thing; this only bounds a hang.
const LONG = { timeout: 180_000 };

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic'],
});
const problems = [];
let current = null;

async function newPage(base, width) {
  const ctx = await browser.newContext({ viewport: { width, height: 900 }, acceptDownloads: true, baseURL: base });
  const page = await ctx.newPage();
  current = page;
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401|403|409|424|Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return page;
}

// Screenshots at phone and desktop width, of the whole page: nothing may stick out sideways.
async function shots(page, name) {
  for (const width of [360, 1280]) {
    await page.setViewportSize({ width, height: 900 });
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= width, `${name} at ${width} px is ${wide} px wide: something is cut off`);
    // Nothing runs off its box either: a message with a long id, a heading broken in a word.
    const cut = await page.evaluate(() => {
      const found = [];
      for (const n of document.querySelectorAll('.notice, .card, .job-facts')) {
        // A one-line banner ends in "…" by design (the stale notice); anything else is cut.
        if (getComputedStyle(n).textOverflow === 'ellipsis') continue;
        if (n.offsetParent !== null && n.scrollWidth > n.clientWidth + 1) found.push(`${n.className}: ${n.textContent.slice(0, 60)}`);
      }
      for (const th of document.querySelectorAll('table.list th')) {
        if (th.offsetParent === null || !th.firstChild) continue;
        const r = document.createRange();
        r.selectNodeContents(th);
        if (r.getClientRects().length > 1) found.push(`heading broken over lines: ${th.textContent}`);
      }
      return found;
    });
    assert.deepEqual(cut, [], `${name} at ${width} px`);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

async function signIn(page, token) {
  await page.goto('/');
  assert.match(page.url(), /\/signin\?next=/, 'without a session the page sends you to sign in');
  await page.getByLabel('API token or password').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Backups', level: 1 }).waitFor();
}

// Chooses a partial backup of exactly these units in the "Back up now" form.
async function choosePartial(form, units) {
  await form.getByLabel('Partial backup').check();
  for (const box of await form.locator('input[name=unit]').all()) {
    const want = units.includes(await box.getAttribute('value'));
    if (want !== (await box.isChecked())) await box.click();
  }
}

// Makes a backup from the "Back up now" form; returns the job's panel once it has finished.
async function backUp(page, { location, units, name }) {
  const form = page.locator('form', { has: page.getByRole('heading', { name: 'Back up now' }) });
  if (location) await form.getByLabel('Location').selectOption(location);
  if (units) {
    await choosePartial(form, units);
  } else {
    await form.getByLabel('Full backup').check();
  }
  if (name) await form.getByLabel('Name (optional)').fill(name);
  const before = await page.locator('.job').count();
  await form.getByRole('button', { name: 'Back up now' }).click();
  await page.locator('.job').nth(before).waitFor();
  const panel = page.locator('.job').first();
  await panel.locator('.actions a').waitFor();
  await panel.locator('.badge', { hasText: /Finished|Failed|Cancelled/ }).waitFor(LONG);
  return panel;
}

try {
  // --- Device A -------------------------------------------------------------------------
  const page = await newPage(A, 1280);

  // A wrong token is refused in words.
  await page.goto('/');
  await page.getByLabel('API token or password').fill('not-the-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const error = page.locator('#error');
  await error.waitFor({ state: 'visible' });
  assert.match(await error.textContent(), /not the token or the password.*lifeboat token/);
  await shots(page, 'signin-refused');

  await signIn(page, env('LB_TOKEN_A'));
  await page.getByRole('heading', { name: 'Bring back your backups' }).waitFor();

  // A partial backup, with its progress bar followed to 100 %.
  const panel = await backUp(page, { units: ['docs'], name: 'Web partial' });
  assert.equal(await panel.locator('.badge').first().textContent(), 'Finished');
  assert.equal(await panel.locator('.pct').textContent(), '100 %');
  assert.equal(await panel.locator('progress').evaluate((p) => p.value), 100);
  // Its figures: files and bytes of their totals, in IEC units as the command line writes them.
  assert.match(await panel.locator('.facts').textContent(), /^\d+ of \d+ files · [\d.]+ (B|KiB|MiB) of [\d.]+ (B|KiB|MiB)$/);
  await panel.getByText('The backup is complete.').waitFor();

  // A job that runs long: the page can be reloaded and its progress is still followed.
  // (The `slow` unit's export waits for the test to write into a pipe.)
  const release = () => fs.writeFileSync(env('LB_FIFO'), 'released\n');
  const slowForm = page.locator('form', { has: page.getByRole('heading', { name: 'Back up now' }) });
  await choosePartial(slowForm, ['slow']);
  await slowForm.getByRole('button', { name: 'Back up now' }).click();
  const running = page.locator('.job', { hasText: 'backup of slow' }).first();
  await running.locator('.badge', { hasText: 'Running' }).waitFor(LONG);
  const jobId = await running.getAttribute('data-job');
  await page.reload();
  const again = page.locator(`.job[data-job="${jobId}"]`);
  await again.locator('.badge', { hasText: 'Running' }).waitFor();
  release();
  await again.locator('.badge', { hasText: 'Finished' }).waitFor(LONG);
  assert.equal(await again.locator('.pct').textContent(), '100 %');

  // Cancel: the job stops, and says so.
  await page.goto('/');
  await choosePartial(slowForm, ['slow']);
  await slowForm.getByRole('button', { name: 'Back up now' }).click();
  const toCancel = page.locator('.job', { hasText: 'backup of slow' }).first();
  await toCancel.locator('.badge', { hasText: 'Running' }).waitFor(LONG);
  // Its total is known (estimated from the first run of the unit): it shows a percent.
  await toCancel.locator('.pct', { hasText: /^\d+ %$/ }).waitFor(LONG);
  await toCancel.getByRole('button', { name: 'Cancel' }).click();
  release();
  await toCancel.locator('.badge', { hasText: 'Cancelled' }).waitFor(LONG);
  await toCancel.getByText(/cancelled/).first().waitFor();

  // It is listed, with its facts.
  const row = page.locator('#backups tr', { hasText: 'Web partial' });
  await row.waitFor();
  assert.match(await row.textContent(), /Partial: docs/);
  assert.match(await row.textContent(), /Completed/);
  // Each backup says which device made it: here, this one.
  assert.match(await row.locator('td[data-label="Device"]').textContent(), /\(this device\)$/);

  // A failing unit: the page says which and why.
  const failed = await backUp(page, { units: ['broken'], name: 'Contacts only' });
  await failed.getByText('The backup is complete, with warnings.').waitFor();
  assert.match(await failed.textContent(), /unit broken failed: .*contacts application is not installed/);

  // Find a file across every backup: its versions, each with its backups.
  const search = page.locator('form[role=search]');
  await search.getByLabel('Name or pattern, in every backup').fill('file-4');
  await search.getByRole('button', { name: 'Find' }).click();
  const found = search.locator('table.found tr', { hasText: '~/docs/file-4' });
  await found.waitFor(LONG);
  assert.ok(await found.locator('li.version').count() >= 1, 'the file has its versions');
  assert.match(await found.textContent(), /Download/);
  await shots(page, 'search');

  // An unreachable location: said in words, with what to do.
  const card = await backUp(page, { location: 'card' });
  assert.match(await card.locator('.result').textContent(), /It failed: .*no memory card or disk is mounted/);
  // Failed, and shown so: no bar (not even a moving one), no percent.
  assert.equal(await card.locator('.badge').first().textContent(), 'Failed');
  assert.ok(await card.locator('progress').isHidden(), 'a failed job shows no progress bar');
  assert.equal(await card.locator('.pct').textContent(), '');
  await page.goto('/');
  await page.locator('#backups tr', { hasText: 'Web partial' }).waitFor();
  await shots(page, 'backups');

  // Restore one unit under a folder.
  await page.getByRole('link', { name: 'Web partial' }).click();
  await page.getByRole('heading', { name: 'Web partial', level: 1 }).waitFor();
  const restore = page.locator('form', { has: page.getByRole('heading', { name: 'Restore' }) });
  await restore.getByLabel('Under another folder').check();
  await restore.getByLabel('Folder to restore under').fill(env('LB_TARGET_A'));
  await restore.getByRole('button', { name: 'Restore' }).click();
  await restore.getByText(/^Restored \d+ files?\b/).waitFor(LONG);
  // The backup's own log is shown with it.
  await page.getByLabel("The backup's log").getByText(/INFO/).first().waitFor();
  await shots(page, 'backup-details');

  // Its files: open a folder, download one file, restore only one other under a folder.
  const files = page.locator('section', { has: page.getByRole('heading', { name: 'Files' }) });
  await files.getByRole('button', { name: 'docs/', exact: true }).click();
  await files.locator('tr[data-path="~/docs/file-1"]').waitFor();
  assert.ok(await files.getByRole('button', { name: 'sub/', exact: true }).count() === 1, 'folders are listed');
  const firstRow = await files.locator('tbody tr').first().getAttribute('data-path');
  assert.equal(firstRow, '~/docs/sub', 'folders come first');
  const [one] = await Promise.all([
    page.waitForEvent('download'),
    files.getByRole('link', { name: 'Download file-1', exact: true }).click(),
  ]);
  const got = fs.readFileSync(await one.path());
  assert.deepEqual(got, fs.readFileSync(path.join(env('LB_HOME_A'), 'docs/file-1')), 'the downloaded file is the file');
  await files.getByRole('checkbox', { name: 'Choose ~/docs/file-2', exact: true }).check();
  await restore.getByText('Only ~/docs/file-2 is restored').waitFor();
  await restore.getByLabel('Under another folder').check();
  await restore.getByLabel('Folder to restore under').fill(env('LB_TARGET_ONE'));
  await restore.getByRole('button', { name: 'Restore' }).click();
  await restore.getByText(/^Restored 1 file\b/).waitFor(LONG);
  await page.getByRole('button', { name: 'What changed since the backup before' }).click();
  await page.getByText('This is the oldest backup in its location.').waitFor();
  await shots(page, 'backup-files');

  // Copy it to the other location, and pin it.
  const copy = page.locator('form.inline');
  await copy.getByLabel('Copy to').selectOption('other');
  await copy.getByRole('button', { name: 'Copy' }).click();
  await copy.locator('.badge', { hasText: 'Finished' }).waitFor(LONG);
  await page.getByRole('button', { name: 'Pin (keep for good)' }).click();
  await page.getByText('Pinned: retention will not remove it.').waitFor();
  await page.getByRole('button', { name: 'Unpin' }).waitFor();

  // Download it as a backup file.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download a backup file' }).click(),
  ]);
  await download.saveAs(env('LB_DOWNLOAD'));

  // A weekly schedule, still there after a reload.
  await page.getByRole('link', { name: 'Automatic' }).click();
  await page.getByRole('heading', { name: 'Automatic backups', level: 1 }).waitFor();
  const add = page.locator('form[data-schedule=""]');
  await add.getByLabel('Name').fill('weekly');
  await add.getByLabel('How often').selectOption('week');
  await add.getByLabel('Sat', { exact: true }).check();
  await add.getByLabel('Time').fill('03:30');
  await add.getByLabel('Keep the last').fill('4');
  await add.getByLabel('card (removable)').check();
  await add.getByLabel('local (local)').uncheck();
  await add.getByLabel('docs (Documents)').check();
  await add.getByLabel('The location answers').check();
  await add.getByRole('button', { name: 'Add' }).click();
  await page.getByText('Schedule weekly saved.').waitFor();
  await page.reload();
  const weekly = page.locator('form[data-schedule="weekly"]');
  await weekly.waitFor();
  assert.equal(await weekly.getByLabel('How often').inputValue(), 'week');
  assert.equal(await weekly.getByLabel('Sat', { exact: true }).isChecked(), true);
  assert.equal(await weekly.getByLabel('Mon', { exact: true }).isChecked(), false);
  assert.equal(await weekly.getByLabel('Time').inputValue(), '03:30');
  assert.equal(await weekly.getByLabel('Keep the last').inputValue(), '4');
  // Its location has never had a backup: the page warns, on every view.
  await page.locator('.stale', { hasText: 'No backup in card' }).waitFor();
  // One line, not a block that fills the first screen.
  const banner = await page.locator('.stale').boundingBox();
  const lineHeight = await page.locator('.stale').evaluate((e) => parseFloat(getComputedStyle(e).lineHeight) || 24);
  assert.ok(banner.height < lineHeight * 2 + 24, `the stale banner takes one line, not ${banner.height}px`);
  // Run now: skipped, and why.
  await weekly.getByRole('button', { name: 'Run now' }).click();
  await page.getByText(/Not run at card: .*no memory card or disk is mounted/).waitFor();
  await shots(page, 'schedules');

  // The history has the failed runs with their reasons.
  await page.getByRole('link', { name: 'History' }).click();
  await page.getByRole('heading', { name: 'History', level: 1 }).waitFor();
  await page.getByText(/unit broken failed/).first().waitFor();
  await page.getByText(/schedule weekly: backup to card skipped: .*no memory card/).first().waitFor();
  await page.locator('.stale').waitFor();

  // Logs: an earlier run's log file.
  await page.getByRole('link', { name: 'Logs', exact: true }).click();
  await page.getByRole('link', { name: /^backup [0-9a-f]+$/ }).first().click();
  await page.getByLabel('Log', { exact: true }).getByText(/INFO/).first().waitFor();

  // Delete a backup, after saying yes.
  await page.getByRole('link', { name: 'Backups', exact: true }).click();
  await page.getByRole('link', { name: 'Contacts only' }).click();
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.getByText('Backup "Contacts only" deleted.').waitFor();
  const partials = page.locator('#backups tr', { hasText: 'Web partial' });
  await partials.first().waitFor();
  assert.equal(await page.locator('#backups tr', { hasText: 'Contacts only' }).count(), 0);
  // The copy in `other` is a backup of its own; the pin was on the one in `local`.
  assert.match(await partials.filter({ hasText: 'local' }).textContent(), /Pinned/);
  assert.doesNotMatch(await partials.filter({ hasText: 'other' }).textContent(), /Pinned/);
  await shots(page, 'history');

  // Signed out, the pages are closed again.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/signin/);
  await page.goto('/schedules');
  assert.match(page.url(), /\/signin\?next=%2Fschedules|\/signin\?next=\/schedules/);

  // --- Device B: a first run, restored from the downloaded file ---------------------------
  const fresh = await newPage(B, 1280);
  await signIn(fresh, env('LB_TOKEN_B'));
  await fresh.getByRole('heading', { name: 'Bring back your backups' }).waitFor();
  await shots(fresh, 'first-run');
  await fresh.getByLabel('Backup file (.tar, as downloaded from Lifeboat)', { exact: true }).setInputFiles(env('LB_DOWNLOAD'));
  await fresh.getByRole('button', { name: 'Upload and continue' }).click();
  await fresh.waitForURL(/\/backups\/[0-9a-f]+\?location=local$/, LONG);
  await fresh.getByRole('heading', { name: 'Web partial', level: 1 }).waitFor();
  const restoreB = fresh.locator('form', { has: fresh.getByRole('heading', { name: 'Restore' }) });
  await restoreB.getByLabel('Under another folder').check();
  await restoreB.getByLabel('Folder to restore under').fill(env('LB_TARGET_B'));
  await restoreB.getByRole('button', { name: 'Restore' }).click();
  await restoreB.getByText(/^Restored \d+ files?\b/).waitFor(LONG);

  // --- Device C: a first run, restored from a location the old device used ---------------
  const third = await newPage(env('LB_URL_C'), 1280);
  await signIn(third, env('LB_TOKEN_C'));
  const connect = third.locator('form', { has: third.getByRole('heading', { name: 'Restore from a location' }) });
  await connect.getByLabel('Kind').selectOption('local');
  await connect.getByLabel('Path').fill(env('LB_REPO_A'));
  await connect.getByLabel('Password or recovery key of those backups').fill('not the password');
  await connect.getByRole('button', { name: 'Connect' }).click();
  await connect.locator('.error').waitFor();
  assert.match(await connect.locator('.error').textContent(), /password/i);
  await connect.getByLabel('Password or recovery key of those backups').fill(env('LB_PASSWORD_A'));
  await connect.getByRole('button', { name: 'Connect' }).click();
  await connect.getByText('Connected to old.').waitFor(LONG);
  await connect.getByRole('link', { name: 'Web partial' }).click();
  await third.getByRole('heading', { name: 'Web partial', level: 1 }).waitFor();
  const restoreC = third.locator('form', { has: third.getByRole('heading', { name: 'Restore' }) });
  // Another device's backup: said before the button, whose it is.
  const whose = restoreC.getByText(/^This backup is from .+, not this device/);
  await whose.waitFor();
  const before = await whose.evaluate((w) => {
    const button = w.closest('form').querySelector('button[type=submit]');
    return Boolean(w.compareDocumentPosition(button) & Node.DOCUMENT_POSITION_FOLLOWING);
  });
  assert.ok(before, 'the warning comes before the restore button');
  await restoreC.getByLabel('Under another folder').check();
  await restoreC.getByLabel('Folder to restore under').fill(env('LB_TARGET_C'));
  await restoreC.getByRole('button', { name: 'Restore' }).click();
  await restoreC.getByText(/^Restored \d+ files?\b/).waitFor(LONG);

  assert.deepEqual(problems, [], 'the page ran without script errors');
  console.log('web e2e: all steps passed');
} catch (e) {
  console.error(e);
  if (current) await current.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true }).catch(() => {});
  for (const p of problems) console.error(p);
  process.exitCode = 1;
} finally {
  await browser.close();
}
