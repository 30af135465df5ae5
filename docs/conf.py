"""Sphinx configuration of cymlp's documentation site.

Build (from the repository root, with the package and the ``docs`` extra installed,
``pip install ".[docs]"``)::

    make -C docs html
    # which runs:
    python -m sphinx -b html -W --keep-going docs docs/_build/html

Warnings are errors. Nothing is fetched from the network (no intersphinx). The API
reference (``api.rst``) is written by this file from the modules' ``__all__``: see
``API_SECTIONS`` below to add a module. The example gallery runs ``examples/plot_*.py``
with ``CYMLP_EXAMPLES_QUICK=1`` (shortened training); ``-D plot_gallery=0`` skips
running them.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# The examples read this to train briefly: the gallery only has to show what they do.
os.environ["CYMLP_EXAMPLES_QUICK"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

try:
    import cymlp
except ImportError as exc:  # pragma: no cover - a message for people building the docs
    raise ImportError(
        "The documentation documents the installed cymlp: run `pip install '.[docs]'` "
        "(or, in a development tree built in place, put src/ on PYTHONPATH)."
    ) from exc

# -- Project -------------------------------------------------------------------------

project = "cymlp"
author = "the cymlp developers"
copyright = "the cymlp developers"
release = cymlp.__version__
version = re.sub(r"^(\d+\.\d+).*", r"\1", release)

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    # pages included into other pages, not pages of their own
    "_fragments",
    # sphinx-gallery's generated side files
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.json",
]
templates_path = ["_templates"]
# No network at build time: no intersphinx. References to scikit-learn and numpy objects
# stay plain text.
nitpicky = False
pygments_style = "sphinx"

# -- MyST (the Markdown pages: user guide, scaling_out, onnx, input_handling) ----------

myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
# '#section' links inside and between Markdown pages
myst_heading_anchors = 3

# -- autodoc, autosummary, numpydoc ------------------------------------------------

autosummary_generate = True
autodoc_typehints = "none"  # the numpydoc sections say the types
autodoc_member_order = "groupwise"
autodoc_default_options = {"inherited-members": "BaseEstimator"}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# Optional dependencies of documented modules: mocked when they are not installed, so
# the API reference builds with the ``docs`` extra alone.
_OPTIONAL_IMPORTS = ["onnx", "skl2onnx", "onnxruntime", "tqdm"]
autodoc_mock_imports = [
    name for name in _OPTIONAL_IMPORTS if importlib.util.find_spec(name) is None
]

# scikit-learn's metadata-routing setters (set_fit_request, ...) are generated on every
# estimator class and documented by scikit-learn; their docstrings point at its guide.
_SKIPPED_MEMBERS = re.compile(r"^set_\w+_request$|^get_metadata_routing$")


def _skip_member(app, what, name, obj, skip, options):
    if _SKIPPED_MEMBERS.match(name):
        return True
    return None


# -- API reference, written from the modules' __all__ ------------------------------

# (title, module, text). A module that is not in the installed package yet is left out
# (the log says so); one that is there is documented, every name of its __all__.
API_SECTIONS = [
    (
        "Estimators and functions",
        "cymlp",
        "The estimators and the package-level functions.",
    ),
    (
        "Callbacks",
        "cymlp.callbacks",
        "Objects passed as ``callbacks=[...]``, called around every epoch "
        "(:doc:`guide/callbacks`).",
    ),
    (
        "Plotting",
        "cymlp.plot",
        "Training curves from ``history_`` (the ``plot`` extra, matplotlib).",
    ),
    (
        "ONNX export",
        "cymlp.onnx",
        "Converters for skl2onnx (the ``onnx`` extra): :doc:`onnx`.",
    ),
]


def _public_names(module: str) -> list[str] | None:
    """The names in `module`'s ``__all__``, read from its source without importing it
    (its optional dependencies may be missing); None if the module does not exist."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return [n for n in ast.literal_eval(node.value) if not n.startswith("__")]
    raise ValueError(f"{module} has no literal __all__ to document")


def _write_api_page() -> list[str]:
    lines = [
        ".. This file is written by conf.py (API_SECTIONS); edit that, not this.",
        "",
        "API reference",
        "=============",
        "",
        "Everything public in cymlp: what each module lists in ``__all__``. The",
        "estimators also have scikit-learn's ``get_params``, ``set_params`` and",
        "metadata-routing methods (``set_fit_request``, ...), inherited from",
        ":class:`sklearn.base.BaseEstimator` and documented by scikit-learn.",
        "",
    ]
    missing = []
    for title, module, text in API_SECTIONS:
        names = _public_names(module)
        if names is None:
            missing.append(module)
            continue
        lines += [
            title,
            "-" * len(title),
            "",
            f".. automodule:: {module}",
            "   :no-members:",
            "   :no-index:",
            "",
            text,
            "",
            f".. currentmodule:: {module}",
            "",
            ".. autosummary::",
            "   :toctree: generated/",
            "   :nosignatures:",
            "",
        ]
        lines += [f"   {name}" for name in names]
        lines.append("")
    page = "\n".join(lines)
    target = HERE / "api.rst"
    if not target.exists() or target.read_text(encoding="utf-8") != page:
        target.write_text(page, encoding="utf-8")
    return missing


API_MISSING = _write_api_page()

# -- sphinx-gallery --------------------------------------------------------------

# sphinx-gallery runs every example in its own folder, and the examples save their
# plots as PNG files next to them (as `python examples/NAME.py` does): run a copy, made
# afresh for every build under _build/, so that a build never writes into examples/.
GALLERY_SOURCE = HERE / "_build" / "gallery_source"


def _copy_examples() -> None:
    shutil.rmtree(GALLERY_SOURCE, ignore_errors=True)
    shutil.copytree(
        ROOT / "examples",
        GALLERY_SOURCE,
        ignore=shutil.ignore_patterns("*.png", "__pycache__", "*.pyc"),
    )


_copy_examples()

sphinx_gallery_conf = {
    "examples_dirs": str(GALLERY_SOURCE),
    "gallery_dirs": "auto_examples",
    # run (and show) only the plot_* scripts; demo.py and helpers are not gallery pages
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(^|/)(?!plot_)[^/]*\.py$",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "write_computation_times": False,
    # links from the API pages to the examples that use each object
    "doc_module": ("cymlp",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"cymlp": None},
}

# -- HTML ---------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"cymlp {release}"
html_static_path = ["_static"]
html_css_files = ["cymlp.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 7,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}


def _report_missing(app):
    from sphinx.util import logging

    for module in API_MISSING:
        logging.getLogger(__name__).info(f"[cymlp] {module} not installed: not in the API page")


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("builder-inited", _report_missing)
