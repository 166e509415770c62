# Installs what is missing, once: Debian packages through apt-get, Python tools through pip.
# Sourced by scripts/run and scripts/test.

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
  echo "== installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    as_root apt-get update -q >/dev/null
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  }
}

# ensure_pip COMMAND PACKAGE: installs the PyPI package when the command is not on PATH.
ensure_pip() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "== installing $2 (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check "$2" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$2"
  hash -r
}
