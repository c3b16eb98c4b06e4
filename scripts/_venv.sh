# Sourced by the other scripts: create ./.venv on first use and install lpmsim into it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.installed-$1"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    if [ "$1" = dev ]; then
        "$venv/bin/python" -m pip install --quiet -e "$root[dev]"
    else
        "$venv/bin/python" -m pip install --quiet -e "$root"
    fi
    touch "$stamp"
fi
