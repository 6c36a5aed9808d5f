#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or fail with a message saying how to get one.
# Looks at $PYTHON, then the usual names on PATH, then pyenv and uv installations.
set -u
ok() { "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
for name in python3.14 python3.13 python3.12 python3 python; do
  p=$(command -v "$name" 2>/dev/null) && candidates+=("$p")
done
for root in "${PYENV_ROOT:-}" "$HOME/.pyenv" /root/.pyenv /opt/pyenv; do
  [ -n "$root" ] && [ -d "$root/versions" ] || continue
  for p in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V); do candidates+=("$p"); done
done
for p in $(ls -d "$HOME"/.local/share/uv/python/cpython-3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9] 2>/dev/null | sort -rV); do
  candidates+=("$p")
done
for p in "${candidates[@]}"; do
  if ok "$p"; then echo "$p"; exit 0; fi
done
echo "bayesgmm needs Python >= 3.12 and none was found. Install one (e.g. 'pyenv install 3.12' or 'uv python install 3.12'), or point PYTHON at it: make PYTHON=/path/to/python3.12 test" >&2
exit 1
