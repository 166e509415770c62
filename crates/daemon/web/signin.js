// The sign-in form: trades the token or password for a session cookie, then goes where the
// person was headed (only ever a path on this site).

const form = document.getElementById('signin');
const error = document.getElementById('error');
const secret = document.getElementById('secret');
secret.focus();

function next() {
  const n = new URLSearchParams(location.search).get('next') || '/';
  return n.startsWith('/') && !n.startsWith('//') && !n.startsWith('/signin') ? n : '/';
}

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
    location.assign(next());
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
