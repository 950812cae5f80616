# Sourced by ./run-tests and ./cunzheng: make .venv and install the project when pyproject changed.
# $1: the extras to install (e.g. "test,bench"; empty for the service alone).
ensure_venv() {
    local extras=$1
    local python=${PYTHON:-python3}
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "cunzheng needs Python 3.11 or newer (set PYTHON=...)" >&2
        exit 2
    fi
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    local stamp=.venv/.cunzheng-installed
    local want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1) [$extras]"
    if ! grep -qxF "$want" "$stamp" 2>/dev/null; then
        .venv/bin/python -m pip install --quiet --upgrade pip >&2
        if [ -n "$extras" ]; then
            .venv/bin/python -m pip install --quiet -e ".[$extras]" >&2
        else
            .venv/bin/python -m pip install --quiet -e . >&2
        fi
        echo "$want" >> "$stamp"
    fi
}
