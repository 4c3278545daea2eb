# Shared set-up steps for start.sh and test.sh: Debian packages and the virtualenv.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "Please run as root (or install sudo) to install: $*" >&2; return 1; fi
}

# Install the Debian packages that are missing; apt-get update only when something is.
ensure_debian_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "Installing Debian packages: ${missing[*]}"
  # Postfix is only used by tests, as a private instance: do not configure the system one.
  echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The Python to build .venv with: $PYTHON if set, else Debian's own python3 when it is 3.11+
# (built with profile-guided optimisation: the API answered ~10 % more requests a second than
# under an unoptimised python3 found earlier in PATH, bench/README.md, API), else python3.
choose_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  if /usr/bin/python3 -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
  then echo /usr/bin/python3; else echo python3; fi
}

# Create .venv with Python 3.11+ and install Clarion into it (with extras, if given).
ensure_venv() {
  local extras="${1:-}"
  local py
  py="$(choose_python)"
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "Clarion needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2; return 1; }
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  if [ -n "$extras" ]; then
    .venv/bin/python -m pip install -q -e ".[$extras]"
  else
    .venv/bin/python -m pip install -q -e .
  fi
}

# Compile the readers' message catalogs (translations/*.po -> .mo); Clarion also does this on
# start when a .mo is missing or older, so this only makes it visible.
compile_catalogs() {
  .venv/bin/clarion i18n compile
}
