"""Every gallery example (examples/plot_*.py) runs: in a fresh process, in its shortened
mode (CYMLP_EXAMPLES_QUICK=1, as the documentation build runs them), with matplotlib's
Agg backend, in an empty working directory. It must exit with 0, print its results and
write its PNG pictures there."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

import cymlp  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_examples_found():
    assert len(SCRIPTS) >= 7, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_runs(script, tmp_path):
    env = dict(os.environ, CYMLP_EXAMPLES_QUICK="1", MPLBACKEND="Agg")
    # the child imports the cymlp under test (a source tree on PYTHONPATH included)
    package_root = str(Path(cymlp.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip(), "the example printed nothing"
    # a header docstring in sphinx-gallery form: title, '=' underline, paragraph
    doc = script.read_text(encoding="utf-8").split('"""')[1].strip().splitlines()
    assert len(doc) >= 3 and set(doc[1]) == {"="} and len(doc[1]) == len(doc[0])
    pictures = sorted(tmp_path.glob("*.png"))
    assert pictures, "the example wrote no PNG"
    for picture in pictures:
        assert picture.name.startswith(script.stem)
        assert picture.read_bytes()[:8] == PNG_MAGIC
