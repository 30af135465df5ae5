#!/usr/bin/env bash
# CI: the serial build. cymlp built without OpenMP must build and pass the tests, both ways
# it can come about:
#   1. a compiler without OpenMP (as Apple's clang): here a wrapper of the C compiler that
#      rejects -fopenmp. setup.py's test compile must notice, warn, and build serial code
#      (built into a wheel and inspected);
#   2. OpenMP switched off, CYMLP_NO_OPENMP=1: installed and tested.
#
# Run it with the CI environment active (after .ci/run's `pip install ".[test]"`): it
# makes a fresh virtual environment that sees the CI environment's packages through a .pth
# file (so nothing is downloaded or copied but cymlp's build requirements), installs the
# serial build into it with --no-deps from a clean copy of the source tree (a build/ left by
# an OpenMP build is never reused), checks that no OpenMP runtime is linked, and runs the
# test suite against it: all of it but tests/test_docs.py (the documentation site, built
# and checked once by .ci/run; nothing in it depends on the build); the tests of OpenMP
# thread limits skip themselves on a serial build. About 80 s of tests on 2 cores, 2.5 min
# in all. Extra arguments go to pytest instead, e.g. `.ci/no_openmp.sh tests/test_api.py -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
python=${PYTHON:-python}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# shellcheck source=.ci/_clean_copy.sh
source .ci/_clean_copy.sh
clean_copy "$repo" "$work/src"

# 1. The fallback: a compiler that rejects -fopenmp gives a serial build, with a warning.
cp -a "$work/src" "$work/src-fallback"
real_cc=$("$python" -c "import sysconfig; print(sysconfig.get_config_var('CC') or 'cc')")
mkdir "$work/cc"
cat >"$work/cc/cc" <<WRAPPER
#!/bin/sh
for arg in "\$@"; do
    if [ "\$arg" = "-fopenmp" ]; then
        echo "cc: error: unsupported option '-fopenmp' (a compiler without OpenMP)" >&2
        exit 1
    fi
done
exec $real_cc "\$@"
WRAPPER
chmod +x "$work/cc/cc"
if ! CC="$work/cc/cc" "$python" -m pip wheel -v --no-deps --no-cache-dir -w "$work/wheel" \
    "$work/src-fallback" >"$work/fallback.log" 2>&1; then
    cat "$work/fallback.log" >&2
    echo "the build failed with a compiler without OpenMP" >&2
    exit 1
fi
grep -q "the C compiler cannot build OpenMP code" "$work/fallback.log" ||
    { echo "no warning about the missing OpenMP support in the build log" >&2; exit 1; }
"$python" - "$work"/wheel/cymlp-*.whl <<'CHECK'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as wheel:
    modules = [name for name in wheel.namelist() if name.endswith(".so")]
    assert len(modules) == 5, modules
    for name in modules:
        assert b"libgomp" not in wheel.read(name), f"{name} links libgomp"
print(f"compiler without OpenMP: serial build with a warning ({', '.join(modules)})")
CHECK

# 2. CYMLP_NO_OPENMP=1, into a fresh venv layered over the current environment's packages.
"$python" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
new_site=$("$venv_python" -c "import sysconfig; print(sysconfig.get_path('purelib'))")
# (every package folder the current environment sees, its own .pth additions included;
# listed after the new venv's site-packages, so the serial cymlp installed there wins)
"$python" - >"$new_site/ci-base-environment.pth" <<'PATHS'
import sys

print("\n".join(p for p in sys.path if p.endswith(("site-packages", "dist-packages"))))
PATHS

CYMLP_NO_OPENMP=1 "$venv_python" -m pip install -q --no-deps --no-cache-dir "$work/src"

# The installed cymlp is the serial build: compiled without OpenMP, no runtime linked.
(cd "$work" && "$venv_python" - "$work/venv" <<'CHECK'
import sys
from pathlib import Path

import cymlp
from cymlp import _engine

package = Path(cymlp.__file__).resolve().parent
assert package.is_relative_to(Path(sys.argv[1]).resolve()), f"cymlp imported from {package}"
assert _engine.OPENMP_BUILD is False, "not a serial build"
for module in package.glob("*.so"):
    # the dynamic section of each extension names no OpenMP runtime
    data = module.read_bytes()
    for runtime in (b"libgomp", b"libomp", b"libiomp"):
        assert runtime not in data, f"{module.name} links {runtime.decode()}"
print(f"serial build of cymlp {cymlp.__version__} at {package}")
CHECK
)

# The same numbers as the OpenMP build of the current environment (block sizes depend on
# the shapes only, never on the thread count), where that environment has cymlp installed.
cat >"$work/fit.py" <<'FIT'
import sys
import warnings

import numpy as np

import cymlp

warnings.simplefilter("ignore")
rng = np.random.RandomState(0)
X = rng.standard_normal((600, 64))
y = (X[:, 0] > X[:, 1]).astype(int) + (X[:, 2] > 0)
out = [
    cymlp.MLPClassifier(hidden_layer_sizes=(256, 128), solver=solver, max_iter=5, random_state=0)
    .fit(X, y)
    .predict_proba(X)
    for solver in ("adam", "sgd", "lbfgs")
]
np.save(sys.argv[1], np.concatenate(out))
FIT
(cd "$work" && "$venv_python" fit.py serial.npy)
if (cd "$work" && "$python" -c "import cymlp" 2>/dev/null); then
    (cd "$work" && "$python" fit.py openmp.npy)
    "$python" - "$work" <<'COMPARE'
import sys

import numpy as np

a, b = (np.load(f"{sys.argv[1]}/{name}.npy") for name in ("serial", "openmp"))
assert np.array_equal(a, b), f"serial and OpenMP fits differ by up to {np.abs(a - b).max()}"
COMPARE
    echo "serial and OpenMP builds: identical fits"
else
    echo "(no cymlp in the current environment: serial and OpenMP fits not compared)"
fi

if [ "$#" -eq 0 ]; then
    set -- tests --ignore=tests/test_docs.py
fi
"$venv_python" -m pytest -q -p no:cacheprovider "$@"
