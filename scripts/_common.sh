# Shared by scripts/run and scripts/test: a Python 3.11 virtualenv in .venv with the project installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

# Installs only when pyproject.toml changed since the last install, so repeat runs start fast.
ensure_venv() {
  local extras="$1" stamp=".venv/.installed${extras:+-$extras}"
  if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "Installing Python dependencies into .venv (log: .venv/install.log; a first install takes a few minutes) ..."
    # Progress: one line per package as pip resolves and installs it; the full output goes to the log.
    set +o pipefail
    .venv/bin/python -m pip install --disable-pip-version-check -e ".${extras:+[$extras]}" 2>&1 \
      | tee .venv/install.log \
      | { grep --line-buffered -E '^(Collecting|Installing collected|Successfully installed)' || true; } \
      | cut -c1-100 | sed -u 's/^/  /'
    local status=${PIPESTATUS[0]}
    set -o pipefail
    if [ "$status" != 0 ]; then
      tail -40 .venv/install.log >&2
      return 1
    fi
    touch "$stamp"
  fi
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

# Debian packages the browser and media tests need (Chromium: never a downloaded browser build).
ensure_debian_packages() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v ffmpeg >/dev/null || missing+=(ffmpeg)
  command -v turnserver >/dev/null || missing+=(coturn)
  command -v redis-server >/dev/null || missing+=(redis-server)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing Debian packages: ${missing[*]} ..."
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
