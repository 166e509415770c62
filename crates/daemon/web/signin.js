// The sign-in form: trades the token or password for a session cookie, then goes where the
// person was headed (the daemon's redirect, only ever to a page of this site).

const form = document.getElementById('signin');
const error = document.getElementById('error');
const secret = document.getElementById('secret');
secret.focus();

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  error.hidden = true;
  if (!secret.value.trim()) {
    error.textContent = 'Enter the API token or the password.';
    error.hidden = false;
    return;
  }
  let r;
  try {
    r = await fetch('/api/session', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ secret: secret.value }),
      credentials: 'same-origin',
    });
  } catch {
    error.textContent = 'Lifeboat is not answering. Check that `lifeboat serve` is running, then try again.';
    error.hidden = false;
    return;
  }
  if (r.ok) {
    // Signed in, the sign-in page redirects to `next` once the daemon has checked it is a
    // page of this site (a check in the daemon only, not here as well).
    location.replace('/signin' + location.search);
    return;
  }
  const body = await r.json().catch(() => ({}));
  error.textContent =
    r.status === 401
      ? 'That is not the token or the password. On the device, `lifeboat token` prints the token.'
      : body.error || 'Signing in failed; try again.';
  error.hidden = false;
  secret.select();
});
