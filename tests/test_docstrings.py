"""Every public name of cymlp has a numpydoc docstring that documents its parameters.

Public: the names in `cymlp.__all__` and the public methods of the estimators (those
inherited from scikit-learn included). The check parses numpydoc sections by hand: a
section is a title line underlined with dashes; in "Parameters", an entry is a line at
the section's indentation, ``name : type`` (or ``name1, name2 : type``), followed by its
indented description. The docstrings' Examples are run as doctests.
"""

import doctest
import inspect
import re

import pytest

import cymlp

ESTIMATORS = [cymlp.MLPClassifier, cymlp.MLPRegressor]
FUNCTIONS = [cymlp.from_sklearn, cymlp.load, cymlp.show_versions]
# the public methods the API promises (more may come from scikit-learn)
API_METHODS = {
    cymlp.MLPClassifier: [
        "fit",
        "partial_fit",
        "predict",
        "predict_proba",
        "predict_log_proba",
        "score",
        "save",
        "summary",
        "to_sklearn",
    ],
    cymlp.MLPRegressor: ["fit", "partial_fit", "predict", "score", "save", "summary", "to_sklearn"],
}


def sections(doc):
    """{section title: list of its lines} of a numpydoc docstring (dedented)."""
    lines = inspect.cleandoc(doc).splitlines()
    found, title = {}, None
    for i, line in enumerate(lines):
        underline = lines[i + 1] if i + 1 < len(lines) else ""
        if (
            line.strip()
            and re.fullmatch(r"\s*-{3,}\s*", underline)
            and len(underline.strip()) == len(line.strip())
        ):
            title = line.strip()
            found[title] = []
        elif title is not None and not re.fullmatch(r"\s*-{3,}\s*", line):
            found[title].append(line)
    return found


def documented_parameters(doc):
    """The parameter names listed in the Parameters section, in order."""
    lines = [line for line in sections(doc).get("Parameters", []) if line.strip()]
    if not lines:
        return []
    indent = min(len(line) - len(line.lstrip()) for line in lines)
    names = []
    for line in lines:
        if len(line) - len(line.lstrip()) == indent:
            names += [n.strip() for n in line.split(" : ")[0].split(",")]
    return names


def signature_parameters(func):
    """Parameter names as numpydoc writes them (``*args``, ``**kwargs``), without self."""
    names = []
    for p in inspect.signature(func).parameters.values():
        if p.name in ("self", "cls"):
            continue
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        names.append(prefix + p.name)
    return names


def public_methods(cls):
    return sorted(name for name, _ in inspect.getmembers(cls, callable) if not name.startswith("_"))


def test_parser_reads_numpydoc():
    doc = """Summary.

    Parameters
    ----------
    a : int
        First; mentions b : float in passing.
    b, c : float, default=1.0
        Two at once.
    **kwargs : dict
        Rest.

    Returns
    -------
    out : int
        The result.
    """
    assert documented_parameters(doc) == ["a", "b", "c", "**kwargs"]
    assert set(sections(doc)) == {"Parameters", "Returns"}


@pytest.mark.parametrize(
    "obj", [*ESTIMATORS, *FUNCTIONS, cymlp], ids=lambda o: getattr(o, "__name__", str(o))
)
def test_public_names_have_docstrings(obj):
    assert obj.__doc__ and obj.__doc__.strip()
    assert set(cymlp.__all__) == {
        "MLPClassifier",
        "MLPRegressor",
        "from_sklearn",
        "load",
        "show_versions",
        "__version__",
    }, "a new public name needs a check here"


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_constructor_parameters_in_class_docstring(cls):
    doc = cls.__doc__
    assert {"Parameters", "Attributes", "Examples"} <= set(sections(doc))
    documented = documented_parameters(doc)
    expected = signature_parameters(cls.__init__)
    assert sorted(documented) == sorted(expected)
    assert len(documented) == len(set(documented)), "a parameter is documented twice"


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_public_methods_document_their_parameters(cls):
    assert set(API_METHODS[cls]) <= set(public_methods(cls))
    for name in public_methods(cls):
        method = getattr(cls, name)
        assert method.__doc__ and method.__doc__.strip(), f"{cls.__name__}.{name}"
        expected = signature_parameters(method)
        if expected:
            assert documented_parameters(method.__doc__) == expected, f"{cls.__name__}.{name}"


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_api_methods_are_numpydoc(cls):
    """cymlp's own methods: a summary line, Parameters unless they take none, and
    Returns unless they return None."""
    for name in API_METHODS[cls]:
        method = getattr(cls, name)
        found = sections(method.__doc__)
        summary = inspect.cleandoc(method.__doc__).splitlines()[0]
        assert summary.endswith("."), f"{cls.__name__}.{name}: {summary!r}"
        assert "Parameters" in found or not signature_parameters(method), f"{cls.__name__}.{name}"
        returns_none = inspect.signature(method).return_annotation in (None, "None")
        assert returns_none or "Returns" in found, f"{cls.__name__}.{name}"


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_functions_document_their_parameters(func):
    assert documented_parameters(func.__doc__) == signature_parameters(func)
    found = sections(func.__doc__)
    assert "Examples" in found
    if signature_parameters(func):
        assert "Parameters" in found
    if inspect.signature(func).return_annotation not in (None, "None"):
        assert "Returns" in found


@pytest.mark.parametrize("obj", [*ESTIMATORS, *FUNCTIONS], ids=lambda o: o.__name__)
def test_docstring_examples_run(obj):
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(obj, obj.__name__, globs={})
    assert tests and any(t.examples for t in tests)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0
