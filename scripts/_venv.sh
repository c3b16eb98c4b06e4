# Sourced by the other scripts: create ./.venv on first use and install lpmsim into it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.installed-$1"
# A dev install (scripts/test) holds everything `run` needs (scripts/run-default): no second install.
if [ "$1" = run ] && [ -f "$venv/.installed-dev" ] && [ ! "$root/pyproject.toml" -nt "$venv/.installed-dev" ]; then
    stamp="$venv/.installed-dev"
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "setting up ./.venv (first run, ~30 s)..." >&2
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    if [ "$1" = dev ]; then
        echo "installing lpmsim and its test tools into ./.venv (~30 s)..." >&2
    else
        echo "installing lpmsim into ./.venv (~20 s)..." >&2
    fi
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    if [ "$1" = dev ]; then
        "$venv/bin/python" -m pip install --quiet -e "$root[dev]"
    else
        "$venv/bin/python" -m pip install --quiet -e "$root"
    fi
    touch "$stamp"
    echo "done: $venv" >&2
fi
