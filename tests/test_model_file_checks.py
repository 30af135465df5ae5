"""Model files: what the reader checks beyond damaged bytes. Files that are valid zips with
matching checksums but inconsistent content (a hand-edited or foreign header, wrong
types, shapes or dtypes) are refused with a ValueError that names the problem; feature
names and string labels survive a round trip."""

import json
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_iris

import cymlp
from cymlp import MLPClassifier, _persistence


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


@pytest.fixture
def saved(tmp_path, iris):
    X, y = iris
    path = tmp_path / "m.cymlp"
    _fit(MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0), X, y).save(path)
    return path


def _rewrite(path, header=None, arrays=None):
    """Apply `header(h)` / `arrays(members)` to a saved file, keeping checksums valid."""
    with np.load(path, allow_pickle=False) as npz:
        members = {name: npz[name] for name in npz.files}
    head = json.loads(members.pop("header").tobytes().decode())
    if arrays is not None:
        arrays(members)
        head["sha256"] = {k: _persistence._digest(v) for k, v in members.items()}
    if header is not None:
        header(head)
    members["header"] = np.frombuffer(json.dumps(head).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **members)


def test_feature_names_round_trip(tmp_path, iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    df = pd.DataFrame(X, columns=["sepal len", "sepal wid", "petal len", "petal wid"])
    clf = _fit(MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0), df, y)
    clf.save(tmp_path / "df")
    loaded = cymlp.load(tmp_path / "df")
    assert_array_equal(loaded.feature_names_in_, clf.feature_names_in_)
    assert loaded.feature_names_in_.dtype == object
    assert_array_equal(loaded.predict_proba(df), clf.predict_proba(df))


def test_object_string_labels_round_trip(tmp_path, iris):
    X, y = iris
    clf = _fit(MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0), X, y)
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)
    clf._label_binarizer.classes_ = labels
    clf.classes_ = labels
    clf.save(tmp_path / "obj")
    loaded = cymlp.load(tmp_path / "obj")
    assert loaded.classes_.dtype == object
    assert_array_equal(loaded.predict(X), clf.predict(X))


def test_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        cymlp.load(tmp_path)


@pytest.mark.parametrize(
    "header, match",
    [
        (b"\xff\xfe not utf-8", "damaged header"),
        (b"{not json", "damaged header"),
        (b"[1, 2]", "not a cymlp model file"),
        (b'{"format": "other"}', "not a cymlp model file"),
        (b'{"format": "cymlp-model", "format_version": "1"}', "invalid format version"),
        (b'{"format": "cymlp-model", "format_version": 0}', "invalid format version"),
    ],
)
def test_bad_headers(saved, header, match):
    with np.load(saved, allow_pickle=False) as npz:
        members = {name: npz[name] for name in npz.files}
    members["header"] = np.frombuffer(header, dtype=np.uint8)
    with open(saved, "wb") as f:
        np.savez(f, **members)
    with pytest.raises(ValueError, match=match):
        cymlp.load(saved)


def _set_param(name, value):
    return lambda h: h["params"].update({name: value})


def _set_state(name, value):
    return lambda h: h["state"].update({name: value})


@pytest.mark.parametrize(
    "change, match",
    [
        (_set_param("alpha", {"float": "1e400"}), "bad float"),
        (_set_param("alpha", {"mystery": 1}), "unknown tagged value"),
        (_set_param("dtype", {"dtype": "|O"}), "not allowed in a model file"),
        (_set_state("n_features_in_", 7), "n_features_in_ does not match"),
        (_set_state("n_iter_", 1.5), "n_iter_ is not an integer"),
        (_set_state("loss_", "low"), "loss_ is not a number"),
        (lambda h: h["state"]["optimizer"].update(kind="sgd"), "sgd optimizer has 1 state"),
        (lambda h: h["state"]["optimizer"].update(kind="nadam"), "unknown optimizer 'nadam'"),
        (lambda h: h["state"].pop("network"), "bad or missing KeyError"),
        (_set_param("callbacks", [{"callback": "Evil", "args": {}}]), "unknown callback 'Evil'"),
        (
            _set_param(
                "callbacks", [{"callback": "EarlyStopping", "args": {"dict": [["bogus", 1]]}}]
            ),
            "not a valid cymlp model file",
        ),
        (_set_state("n_outputs_", 2), "n_outputs_ is 2, the network has 3 outputs"),
        (_set_state("n_layers_", 4), "n_layers_ does not match"),
        (
            lambda h: h["state"]["label_binarizer"].update(y_type_="binary"),
            "'binary' does not fit 3 classes",
        ),
        (
            lambda h: h["state"]["label_binarizer"].update(y_type_="continuous"),
            "'continuous' does not fit",
        ),
    ],
)
def test_inconsistent_headers(saved, change, match):
    _rewrite(saved, header=change)
    with pytest.raises(ValueError, match=match):
        cymlp.load(saved)


@pytest.mark.parametrize("classes", [[0, 0, 2], [2, 1, 0], [[0, 1, 2]], [0.0, np.nan, 2.0]])
def test_classes_not_sorted_and_distinct(saved, classes):
    # the output columns follow np.unique's classes: others predicted wrong labels
    _rewrite(saved, arrays=lambda members: members.update(classes_=np.array(classes)))
    with pytest.raises(ValueError, match="the classes are not one sorted list"):
        cymlp.load(saved)


def test_array_with_wrong_shape_or_dtype(saved):
    _rewrite(saved, arrays=lambda m: m.update(params=m["params"][:-1]))
    with pytest.raises(ValueError, match="'params' has shape"):
        cymlp.load(saved)
    _rewrite(saved, arrays=lambda m: m.update(params=m["params"].astype(np.complex128)))
    with pytest.raises(ValueError, match="disallowed dtype"):
        cymlp.load(saved)


def test_unstorable_numpy_scalar_parameter_is_saved_as_none(tmp_path, iris):
    X, y = iris
    clf = _fit(MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0), X, y)
    clf.set_params(alpha=np.datetime64("2026-01-01"))  # a numpy scalar, but not a number
    with pytest.warns(UserWarning, match="cannot be stored"):
        clf.save(tmp_path / "m")
    assert cymlp.load(tmp_path / "m").alpha is None
