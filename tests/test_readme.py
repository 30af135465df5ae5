"""The quick starts run as written: README.md's "Quick start" section and
docs/quickstart.md, each page's python blocks joined in order into one script, run in a
fresh process in an empty working directory with matplotlib's Agg backend. The claims
their comments make (early stopping ends training before max_iter, the history_ keys,
the files written) are checked on what the script prints and leaves behind."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

import cymlp  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HISTORY_KEYS = ["loss", "score", "val_loss", "val_score", "learning_rate", "epoch_time"]


def python_blocks(markdown):
    """The bodies of the ```python fenced blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```$", markdown, flags=re.DOTALL | re.MULTILINE)


def readme_quick_start():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Quick start\n(.*?)(?=^## )", text, flags=re.DOTALL | re.MULTILINE)
    assert section, "README.md has no '## Quick start' section"
    return python_blocks(section.group(1))


def docs_quickstart():
    return python_blocks((REPO / "docs" / "quickstart.md").read_text(encoding="utf-8"))


def run_script(code, cwd):
    env = dict(os.environ, MPLBACKEND="Agg")
    # the child imports the cymlp under test (a source tree on PYTHONPATH included)
    package_root = str(Path(cymlp.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_blocks_found():
    assert len(readme_quick_start()) == 1
    assert len(docs_quickstart()) >= 6


def test_readme_quick_start_runs(tmp_path):
    (code,) = readme_quick_start()
    out = run_script(code, tmp_path).splitlines()
    epochs = int(re.fullmatch(r"(\d+) epochs", out[0]).group(1))
    assert 0 < epochs < 200  # "early stopping ended training before 200"
    assert ast.literal_eval(out[1]) == HISTORY_KEYS  # the keys its comment lists
    assert float(re.fullmatch(r"test accuracy: (\S+)", out[2]).group(1)) > 0.9
    assert (tmp_path / "digits.cymlp").is_file()
    assert (tmp_path / "history.png").read_bytes()[:8] == PNG_MAGIC


def test_docs_quickstart_runs(tmp_path):
    out = run_script("\n".join(docs_quickstart()), tmp_path).splitlines()
    epochs = int(re.fullmatch(r"(\d+) epochs", out[0]).group(1))
    assert 0 < epochs < 100  # max_iter=100: the EarlyStopping callback ended it
    assert float(out[2]) > 0.9  # the test accuracy
    assert (tmp_path / "digits.cymlp").is_file()
