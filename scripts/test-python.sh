#!/usr/bin/env bash
# Build the Python extension (python/, PyO3) and run the Python package's tests
# (python/tests, pytest) in a virtual environment. Needs: a Rust toolchain, python3 (≥ 3.9)
# with venv and pip reaching PyPI. The environment is `.venv-python` in the repository root
# (made on first use; SPARSEINV_PY_VENV picks another).
#
# The extension is built by `cargo build --workspace --lib --tests`, which resolves the
# features of shared dependencies exactly as `cargo test --workspace` does, so after the Rust
# tests it only compiles PyO3 and the bindings (seconds instead of a second full build), and
# is put in place as `python/sparseinv/_sparseinv.abi3.so` with `python/` on PYTHONPATH — what
# `maturin develop` does, without maturin's separate build. `pip install ./python` (maturin,
# release build) is how users install it.
# Usage: scripts/test-python.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${SPARSEINV_PY_VENV:-.venv-python}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r python/requirements-test.txt
cargo build --workspace --lib --tests --quiet
case "$(uname -s)" in
    Darwin) lib="${CARGO_TARGET_DIR:-target}"/debug/lib_sparseinv.dylib ;;
    *) lib="${CARGO_TARGET_DIR:-target}"/debug/lib_sparseinv.so ;;
esac
# a maturin-develop install of the package would shadow python/ on the path: remove it
"$venv/bin/python" -m pip uninstall --quiet -y sparseinv >/dev/null 2>&1 || true
cp "$lib" python/sparseinv/_sparseinv.abi3.so
PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" "$venv/bin/python" -m pytest python/tests -q -rs "$@"
