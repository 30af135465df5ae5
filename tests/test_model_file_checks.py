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
        (b'{"format": "cymlp-model", "format_version": true}', "invalid format version"),
        (b"[" * 100_000 + b"]" * 100_000, "damaged header"),  # deeper than Python recurses
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
        (_set_state("n_iter_", -1), "n_iter_ is not a count"),
        (lambda h: h["state"]["optimizer"].update(t=2**70), "step count is not a count"),
        (lambda h: h["state"]["optimizer"].update(t=-1), "step count is not a count"),
        (
            lambda h: h["state"]["network"].update(layer_units=[4, 10**6, 10**6, 3]),
            "the layers need",  # refused before a network of 10**12 weights is allocated
        ),
        (
            lambda h: h["state"]["network"].update(output_activation="identity"),
            "out_activation_ is not the network's 'identity'",
        ),
        (
            lambda h: (
                h["state"].update(out_activation_="logistic")
                or h["state"]["network"].update(output_activation="logistic")
            ),
            "'multiclass' targets do not fit the output activation 'logistic'",
        ),
        (_set_param("alpha", {"np_scalar": "<U3", "value": "abc"}), "not a numeric scalar"),
        (
            _set_param("callbacks", [{"callback": "ModelCheckpoint", "args": {"dict": []}}]),
            "unknown callback 'ModelCheckpoint'",  # a file does not choose what fit writes
        ),
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


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: m.update(params=m["params"].astype(np.int64)), "'params' has a disallowed"),
        (lambda m: m.update(params=m["params"].astype("<U6")), "'params' has a disallowed"),
        (lambda m: m["params"].__setitem__(0, np.nan), "the weights are not all finite"),
        (lambda m: m.update(optimizer_0=m["optimizer_0"] > 0), "'optimizer_0' has a disallowed"),
    ],
)
def test_arrays_of_the_wrong_kind(saved, change, match):
    # they were cast into the weights (text parsed by numpy, booleans as 0 and 1)
    _rewrite(saved, arrays=change)
    with pytest.raises(ValueError, match=match):
        cymlp.load(saved)


def test_members_the_header_does_not_list(saved, tmp_path):
    # never read: a few bytes that inflate to gigabytes were decompressed before any check
    import zipfile

    with zipfile.ZipFile(saved, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("extra.npy", b"\0" * 10_000_000)
    with pytest.raises(ValueError, match="members its header does not list"):
        cymlp.load(saved)
    with zipfile.ZipFile(tmp_path / "raw", "w") as z:  # a header that is no .npy array
        z.writestr("header", b'{"format": "cymlp-model"}')
    with pytest.raises(ValueError, match="damaged header"):
        cymlp.load(tmp_path / "raw")


def test_members_that_would_take_more_memory_than_the_file(saved, tmp_path):
    # a compressed member can inflate far beyond the file; a .npy header can claim an
    # array far beyond its data (numpy allocates it before reading): both are refused
    import io
    import zipfile

    with zipfile.ZipFile(saved) as z:
        members = {info.filename: z.read(info) for info in z.infolist()}
    with zipfile.ZipFile(tmp_path / "deflated", "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(ValueError, match="compressed member"):
        cymlp.load(tmp_path / "deflated")

    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    )
    members["loss_curve_.npy"] = out.getvalue()  # a header with no data after it
    with zipfile.ZipFile(tmp_path / "claims", "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(ValueError, match="claims more data than it holds"):
        cymlp.load(tmp_path / "claims")


def test_feature_names_of_the_wrong_shape(tmp_path, iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    _fit(MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0), df, y).save(
        tmp_path / "m"
    )
    _rewrite(
        tmp_path / "m",
        arrays=lambda m: m.update(feature_names_in_=m["feature_names_in_"].reshape(2, 2)),
    )
    with pytest.raises(ValueError, match="does not name each feature once"):
        cymlp.load(tmp_path / "m")


def test_array_with_wrong_shape_or_dtype(saved):
    _rewrite(saved, arrays=lambda m: m.update(params=m["params"][:-1]))
    with pytest.raises(ValueError, match="the weights hold 34 values, the layers need 35"):
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
