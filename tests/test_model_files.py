"""Model files: save / load round trips, types of parameters, continued training, version
policy, damaged files, atomic saves."""

import json
import os
import pickle
import warnings
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_diabetes, load_iris
from sklearn.exceptions import NotFittedError

import cymlp
from cymlp import MLPClassifier, MLPRegressor, _persistence


def _quiet_fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y, **kw)


def _iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _fitted_classifier(**kw):
    X, y = _iris()
    params = dict(hidden_layer_sizes=(8, 4), max_iter=15, random_state=0)
    params.update(kw)
    return _quiet_fit(MLPClassifier(**params), X, y), X, y


CASES = [
    dict(solver="adam"),
    dict(solver="sgd", learning_rate="invscaling"),
    dict(solver="lbfgs"),
    dict(solver="adam", early_stopping=True),
    dict(solver="sgd", dtype=np.float32),
    dict(solver="adam", hidden_layer_sizes=(), activation="tanh"),
]


@pytest.mark.parametrize("kw", CASES)
def test_round_trip_predicts_identically(tmp_path, kw):
    clf, X, y = _fitted_classifier(**kw)
    path = tmp_path / "model.cymlp"
    clf.save(path)
    loaded = cymlp.load(path)
    assert type(loaded) is MLPClassifier
    assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert_array_equal(loaded.predict(X), clf.predict(X))
    assert_array_equal(loaded.classes_, clf.classes_)
    for a, b in zip(loaded.coefs_ + loaded.intercepts_, clf.coefs_ + clf.intercepts_):
        assert a.dtype == b.dtype
        assert_array_equal(a, b)
    for name in (
        "n_iter_",
        "t_",
        "loss_",
        "n_layers_",
        "n_outputs_",
        "out_activation_",
        "n_features_in_",
    ):
        assert getattr(loaded, name) == getattr(clf, name)
    for name in ("loss_curve_", "validation_scores_", "best_loss_", "best_validation_score_"):
        assert hasattr(loaded, name) == hasattr(clf, name)
        if hasattr(clf, name):
            assert getattr(loaded, name) == getattr(clf, name)


def test_regressor_round_trip_multioutput_and_poisson(tmp_path):
    X, y = load_diabetes(return_X_y=True)
    Y = np.column_stack([y, y / 2])
    for est, target in [
        (MLPRegressor(max_iter=5, random_state=0), Y),
        (MLPRegressor(loss="poisson", max_iter=5, random_state=0), y / 100),
    ]:
        _quiet_fit(est, X, target)
        est.save(tmp_path / "r.cymlp")
        loaded = cymlp.load(tmp_path / "r.cymlp")
        assert type(loaded) is MLPRegressor
        assert_array_equal(loaded.predict(X), est.predict(X))


def test_get_params_keep_values_and_types(tmp_path):
    X, y = _iris()
    params = dict(
        hidden_layer_sizes=[np.int64(6), 5],
        batch_size=np.int32(16),
        n_iter_no_change=np.inf,
        alpha=np.float32(0.001),
        dtype=np.dtype("float32"),
        random_state=7,
        verbose=0,
        tol=0.0,
    )
    est = _quiet_fit(MLPClassifier(max_iter=3, **params), X, y)
    est.save(tmp_path / "m")
    loaded = cymlp.load(tmp_path / "m")
    for name, value in est.get_params().items():
        other = loaded.get_params()[name]
        assert type(other) is type(value), name
        if isinstance(value, list):
            assert [type(v) for v in other] == [type(v) for v in value]
        assert other == value or (value != value and other != other), name


def test_tuple_and_dtype_type_parameters(tmp_path):
    X, y = _iris()
    est = _quiet_fit(MLPClassifier(hidden_layer_sizes=(5,), dtype=np.float32, max_iter=2), X, y)
    est.save(tmp_path / "m")
    loaded = cymlp.load(tmp_path / "m")
    assert loaded.hidden_layer_sizes == (5,)
    assert type(loaded.hidden_layer_sizes) is tuple
    assert loaded.dtype is np.float32


def test_typed_values_encode_and_decode():
    values = [
        None,
        True,
        3,
        2.5,
        -np.inf,
        "x",
        (1, (2, 3)),
        [1, [2]],
        {1: "a", "b": (2,)},
        np.float32(1.5),
        np.int64(4),
        np.dtype("float64"),
        np.float32,
    ]
    for value in values:
        encoded = json.loads(json.dumps(_persistence._encode(value)))
        decoded = _persistence._decode(encoded)
        assert type(decoded) is type(value)
        assert decoded == value or decoded is value
    assert np.isnan(_persistence._decode(json.loads(json.dumps(_persistence._encode(np.nan)))))


def test_random_state_instance_is_stored_as_none_with_warning(tmp_path):
    X, y = _iris()
    est = _quiet_fit(MLPClassifier(max_iter=2, random_state=np.random.RandomState(0)), X, y)
    with pytest.warns(UserWarning, match="random_state"):
        est.save(tmp_path / "m")
    assert cymlp.load(tmp_path / "m").random_state is None


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_continues_with_saved_optimizer_state(tmp_path, solver):
    clf, X, y = _fitted_classifier(solver=solver)
    twin = pickle.loads(pickle.dumps(clf))  # pickle keeps the optimizer state too
    clf.save(tmp_path / "m")
    loaded = cymlp.load(tmp_path / "m")
    for est in (twin, loaded):
        est.partial_fit(X, y)
        est.partial_fit(X, y)
    for a, b in zip(loaded.coefs_ + loaded.intercepts_, twin.coefs_ + twin.intercepts_):
        assert_array_equal(a, b)
    assert loaded._optimizer.learning_rate == twin._optimizer.learning_rate
    assert loaded.t_ == twin.t_


def test_warm_start_fit_continues_from_saved_weights(tmp_path):
    clf, X, y = _fitted_classifier(solver="sgd", warm_start=True)
    twin = pickle.loads(pickle.dumps(clf))
    clf.save(tmp_path / "m")
    loaded = cymlp.load(tmp_path / "m")
    _quiet_fit(loaded, X, y)
    _quiet_fit(twin, X, y)
    for a, b in zip(loaded.coefs_, twin.coefs_):
        assert_array_equal(a, b)


def test_saving_unfitted_raises(tmp_path):
    with pytest.raises(NotFittedError):
        MLPClassifier().save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_failed_save_leaves_existing_file_intact(tmp_path, monkeypatch):
    clf, X, y = _fitted_classifier()
    path = tmp_path / "m"
    clf.save(path)
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        clf.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no temporary file left behind


@pytest.mark.parametrize("moment", ["after open", "after the rename"])
def test_ctrl_c_during_save(tmp_path, monkeypatch, moment):
    # a KeyboardInterrupt as open() returns left the temporary file behind; one as the
    # rename returns became a FileNotFoundError from removing the renamed file
    clf, X, y = _fitted_classifier()
    path = tmp_path / "m"
    clf.save(path)
    real_open, real_replace = open, os.replace

    def interrupted(real):
        def call(*args, **kwargs):
            real(*args, **kwargs)  # done (the file it opens is closed when collected)
            raise KeyboardInterrupt

        return call

    if moment == "after open":
        monkeypatch.setattr(_persistence, "open", interrupted(real_open), raising=False)
    else:
        monkeypatch.setattr(_persistence.os, "replace", interrupted(real_replace))
    with pytest.raises(KeyboardInterrupt):
        clf.save(path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no temporary file left behind
    assert_array_equal(cymlp.load(path).predict_proba(X), clf.predict_proba(X))


def test_save_under_a_file_and_a_long_file_name(tmp_path):
    clf, X, y = _fitted_classifier()
    (tmp_path / "afile").write_text("")
    with pytest.raises(NotADirectoryError) as raised:  # open()'s, not the clean-up's
        clf.save(tmp_path / "afile" / "m")
    assert ".tmp" not in str(raised.value) and "afile" in str(raised.value)
    long = tmp_path / ("m" * 246)  # a valid name, which the temporary one made too long
    clf.save(long)
    assert_array_equal(cymlp.load(long).predict_proba(X), clf.predict_proba(X))


def test_save_errors_name_the_given_path(tmp_path):
    clf, X, y = _fitted_classifier()
    missing = tmp_path / "no_such_folder" / "m.cymlp"
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        clf.save(missing)
    with pytest.raises(IsADirectoryError, match=str(tmp_path.name)):
        clf.save(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        clf.save("")
    assert os.listdir(tmp_path) == []


def test_save_file_permissions_and_symbolic_links(tmp_path):
    clf, X, y = _fitted_classifier()
    umask = os.umask(0o022)
    try:
        clf.save(tmp_path / "new")  # a new file: what open() would create
        assert (tmp_path / "new").stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "kept"
        kept.write_bytes(b"old")
        kept.chmod(0o640)
        clf.save(kept)  # a replaced file keeps its permissions
        assert kept.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(umask)
    target = tmp_path / "target.cymlp"
    clf.save(target)
    link = tmp_path / "link.cymlp"
    link.symlink_to(target)
    clf.set_params(alpha=0.5).save(link)  # writes the link's target, as open() would
    assert link.is_symlink()
    assert cymlp.load(target).alpha == 0.5
    assert sorted(os.listdir(tmp_path)) == ["kept", "link.cymlp", "new", "target.cymlp"]


def test_cymlps_callbacks_are_stored_by_their_arguments(tmp_path):
    import pathlib

    from cymlp.callbacks import (
        EarlyStopping,
        LearningRateScheduler,
        ModelCheckpoint,
        ReduceLROnPlateau,
        TerminateOnNaN,
    )

    clf, X, y = _fitted_classifier()
    kept = [
        EarlyStopping(monitor="loss", patience=3, min_delta=0.01, restore_best_weights=True),
        ReduceLROnPlateau(monitor="loss", factor=0.5, cooldown=2),
        TerminateOnNaN(),
    ]
    clf.set_params(callbacks=kept)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is "saved as None"
        clf.save(tmp_path / "m")
    loaded = cymlp.load(tmp_path / "m")
    assert [repr(cb) for cb in loaded.callbacks] == [repr(cb) for cb in kept]
    assert all(a is not b for a, b in zip(loaded.callbacks, kept))
    assert _header(tmp_path / "m")["format_version"] == 3
    # code is not stored: a schedule function, or a subclass; nor is a checkpoint's path
    # (a file from elsewhere would choose what the next fit overwrites)
    for unstorable in (
        LearningRateScheduler(lambda e, lr: lr),
        type("Mine", (TerminateOnNaN,), {})(),
        ModelCheckpoint(pathlib.Path(tmp_path / "ck-{epoch}.cymlp"), monitor="loss"),
    ):
        clf.set_params(callbacks=[kept[0], unstorable])
        with pytest.warns(UserWarning, match="callbacks=.*saved as None"):
            clf.save(tmp_path / "m2")
        assert cymlp.load(tmp_path / "m2").callbacks is None
        assert _header(tmp_path / "m2")["format_version"] == 2


def test_file_from_newer_format_version_names_both_versions(tmp_path):
    clf, X, y = _fitted_classifier()
    path = tmp_path / "m"
    clf.save(path)
    _rewrite_header(path, lambda h: h.update(format_version=_persistence.FORMAT_VERSION + 1))
    with pytest.raises(
        ValueError,
        match=rf"version {_persistence.FORMAT_VERSION + 1}.*"
        rf"versions 1 to {_persistence.FORMAT_VERSION}",
    ):
        cymlp.load(path)


def _rewrite_header(path, change):
    with np.load(path, allow_pickle=False) as npz:
        members = {name: npz[name] for name in npz.files}
    header = json.loads(members["header"].tobytes().decode())
    change(header)
    members["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **members)


def test_damaged_files_raise_value_error(tmp_path):
    clf, X, y = _fitted_classifier()
    good = tmp_path / "good"
    clf.save(good)
    data = good.read_bytes()
    rng = np.random.default_rng(0)
    cases = {
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "random": rng.bytes(2000),
        "truncated_tail": data[:-10],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError):
            cymlp.load(tmp_path / name)
    # flip one bit at many places: every result is a clean error or (if the flip hit
    # bytes the format does not use) an identical model
    for pos in rng.choice(len(data), size=60, replace=False):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(8))
        (tmp_path / "flip").write_bytes(bytes(flipped))
        try:
            loaded = cymlp.load(tmp_path / "flip")
        except ValueError:
            continue
        assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_damaged_zip_fields_raise_value_error(tmp_path):
    # damage to a zip member's header can ask for a compression method or a zip version
    # zipfile does not implement (NotImplementedError) or mark the member encrypted
    # (RuntimeError): both must come out as the documented ValueError
    clf, X, y = _fitted_classifier()
    good = tmp_path / "good"
    clf.save(good)
    data = good.read_bytes()
    central = data.rfind(b"PK\x01\x02", 0, data.rfind(b"PK\x05\x06"))
    cases = {
        "method": (central + 10, b"\x63\x00"),  # compression method 99
        "version": (central + 6, b"\x50\x00"),  # needs zip version 8.0
        "encrypted": (central + 8, b"\x01\x00"),  # general purpose flag: encrypted
    }
    for name, (at, value) in cases.items():
        damaged = bytearray(data)
        damaged[at : at + 2] = value
        (tmp_path / name).write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="damaged"):
            cymlp.load(tmp_path / name)


@pytest.mark.parametrize("solver", ["adamw", "sgd"])
def test_solver_set_after_fit_saves_and_loads(tmp_path, solver):
    # partial_fit goes on with the optimizer a model has (scikit-learn's rule), so a
    # solver set after the fit may differ from it; the file keeps that optimizer (load
    # once refused such a file: "optimizer state does not match the solver parameter")
    clf, X, y = _fitted_classifier(solver=solver)
    clf.set_params(solver="adam" if solver == "adamw" else "lbfgs")
    twin = pickle.loads(pickle.dumps(clf))
    clf.save(tmp_path / "m")
    loaded = cymlp.load(tmp_path / "m")
    assert loaded._optimizer.kind == solver
    if solver == "adamw":
        for est in (twin, loaded):
            est.partial_fit(X, y)
        for a, b in zip(loaded.coefs_ + loaded.intercepts_, twin.coefs_ + twin.intercepts_):
            assert_array_equal(a, b)


def test_tampered_array_is_detected_by_checksum(tmp_path):
    clf, X, y = _fitted_classifier()
    path = tmp_path / "m"
    clf.save(path)
    with np.load(path, allow_pickle=False) as npz:
        members = {name: npz[name] for name in npz.files}
    members["params"] = members["params"] + 1  # consistent zip, wrong content
    with open(path, "wb") as f:
        np.savez(f, **members)
    with pytest.raises(ValueError, match="checksum"):
        cymlp.load(path)


def test_pickles_and_object_arrays_are_refused_unopened(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "p").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ValueError, match="not a cymlp model file"):
        cymlp.load(tmp_path / "p")
    # an .npz whose member is an object array (which would need unpickling)
    with open(tmp_path / "o", "wb") as f:
        np.savez(
            f, header=np.frombuffer(b"{}", dtype=np.uint8), params=np.array([Evil()], dtype=object)
        )
    with pytest.raises(ValueError):
        cymlp.load(tmp_path / "o")
    assert not marker.exists()


def test_wrong_content_is_refused(tmp_path):
    with open(tmp_path / "plain.npy", "wb") as f:
        np.save(f, np.arange(3))
    with pytest.raises(ValueError):
        cymlp.load(tmp_path / "plain.npy")
    with zipfile.ZipFile(tmp_path / "z", "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(ValueError):
        cymlp.load(tmp_path / "z")
    clf, X, y = _fitted_classifier()
    clf.save(tmp_path / "m")
    _rewrite_header(tmp_path / "m", lambda h: h.update(estimator="os.system"))
    with pytest.raises(ValueError):
        cymlp.load(tmp_path / "m")


def test_unsavable_class_labels_raise(tmp_path):
    X, y = _iris()
    est = _quiet_fit(
        MLPClassifier(max_iter=2, random_state=0), X, np.array(["a", "b", "c"], dtype=object)[y]
    )
    est.save(tmp_path / "ok")  # object arrays of strings are fine
    assert_array_equal(cymlp.load(tmp_path / "ok").predict(X), est.predict(X))
    est._label_binarizer.classes_ = np.array([1, "b", 2.5], dtype=object)
    with pytest.raises(ValueError, match="class labels"):
        est.save(tmp_path / "bad")


# --------------------------------------------------------------------------------------
# Format version 2: the Keras-style state; version 1 files still load
# --------------------------------------------------------------------------------------

DATA = os.path.join(os.path.dirname(__file__), "data")


def _header(path):
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(npz["header"].tobytes().decode())


def _iris_labels():
    X, y = _iris()
    return X, np.array(["setosa", "versicolor", "virginica"])[y]


def test_new_files_are_version_2_with_the_network_config(tmp_path):
    clf, X, y = _fitted_classifier()
    clf.save(tmp_path / "m")
    header = _header(tmp_path / "m")
    # version 2 until the file holds callbacks (version 3), so that releases that
    # read versions 1 and 2 still read it
    assert header["format_version"] == 2 and _persistence.FORMAT_VERSION == 3
    net = header["state"]["network"]
    assert net["layer_units"] == [4, 8, 4, 3]
    assert net["hidden_activation"] == "relu" and net["output_activation"] == "softmax"
    if hasattr(clf._network, "config"):
        assert net == {**clf._network.config(), "dtype": "<f8"}


def test_version_1_file_loads_predicts_and_continues():
    """tests/data/model_v1_iris.cymlp was written by the version 1 writer (commit
    6744f10): iris with string labels, hidden (6, 4), adam, 5 epochs, random_state=0;
    the .npy files hold its predict_proba before and after one more partial_fit."""
    path = os.path.join(DATA, "model_v1_iris.cymlp")
    assert _header(path)["format_version"] == 1
    X, labels = _iris_labels()
    loaded = cymlp.load(path)
    assert_array_equal(loaded.classes_, ["setosa", "versicolor", "virginica"])
    expected = np.load(os.path.join(DATA, "model_v1_iris_proba.npy"))
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=1e-12, atol=1e-15)
    loaded.partial_fit(X, labels)
    expected = np.load(os.path.join(DATA, "model_v1_iris_proba_after_partial_fit.npy"))
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=1e-10, atol=1e-13)
    # a version 1 file has no history: the partial_fit epoch starts one
    assert len(loaded.history_["loss"]) == 1


def test_version_1_file_from_before_the_keras_parameters(tmp_path):
    """A version 1 file whose parameters predate init, dropout, ...: they take their
    defaults."""
    path = tmp_path / "old"
    path.write_bytes(open(os.path.join(DATA, "model_v1_iris.cymlp"), "rb").read())
    new = ("init", "dropout", "batch_normalization", "weight_decay", "rho", "callbacks")
    new += ("class_weight",)
    _rewrite_header(path, lambda h: [h["params"].pop(name) for name in new])
    loaded = cymlp.load(path)
    defaults = MLPClassifier().get_params()
    for name in new:
        assert getattr(loaded, name) == defaults[name]
    X, _ = _iris_labels()
    expected = np.load(os.path.join(DATA, "model_v1_iris_proba.npy"))
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=1e-12, atol=1e-15)


def test_callbacks_are_saved_as_none_with_warning(tmp_path):
    from cymlp.callbacks import Callback

    clf, X, y = _fitted_classifier(callbacks=[Callback()])
    with pytest.warns(UserWarning, match="callbacks"):
        clf.save(tmp_path / "m")
    loaded = cymlp.load(tmp_path / "m")
    assert loaded.callbacks is None
    assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


KERAS_PARAMS = [
    dict(solver="adamw", weight_decay=0.05, init="he_normal"),
    dict(solver="rmsprop", rho=0.8, init="glorot_uniform", class_weight={0: 2.0, 2: 0.5}),
    dict(solver="adam", class_weight="balanced", init="lecun_normal"),
]


@pytest.mark.parametrize("kw", KERAS_PARAMS)
def test_keras_parameters_round_trip_and_training_continues(tmp_path, kw):
    clf, X, y = _fitted_classifier(**kw)
    clf.save(tmp_path / "m")
    loaded = cymlp.load(tmp_path / "m")
    for name, value in clf.get_params().items():
        assert type(loaded.get_params()[name]) is type(value), name
        assert loaded.get_params()[name] == value, name
    assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    if kw.get("class_weight") == "balanced":
        return  # 'balanced' does not allow partial_fit
    twin = pickle.loads(pickle.dumps(clf))
    for est in (twin, loaded):
        est.partial_fit(X, y)
    assert_array_equal(loaded._network.params, twin._network.params)


def test_changed_base_learning_rate_round_trips(tmp_path):
    """A schedule callback changes the optimizer's base step size (Adam keeps it in
    learning_rate_init): the file keeps it, not the estimator's learning_rate_init."""
    clf, X, y = _fitted_classifier(solver="adam")
    clf._optimizer.set_base_learning_rate(0.0123)
    twin = pickle.loads(pickle.dumps(clf))
    clf.save(tmp_path / "m")
    loaded = cymlp.load(tmp_path / "m")
    assert loaded._optimizer.base_learning_rate == 0.0123
    assert loaded._optimizer.learning_rate == twin._optimizer.learning_rate
    for est in (twin, loaded):
        est.partial_fit(X, y)
    assert_array_equal(loaded._network.params, twin._network.params)


def test_history_round_trips_every_key(tmp_path):
    clf, X, y = _fitted_classifier()
    history = {
        "loss": [1.5, 1.25, 1.0],
        "score": [0.5, 0.625, 0.75],
        "val_loss": [1.6, 1.4, np.nan],
        "val_score": [0.4, 0.5, 0.6],
        "learning_rate": [0.001, 0.001, 0.0005],
        "epoch_time": [0.01, 0.02, 0.015],
        "my_metric": [],
    }
    clf.history_ = history
    clf.save(tmp_path / "m")
    loaded = cymlp.load(tmp_path / "m")
    assert list(loaded.history_) == list(history)
    for key, values in history.items():
        assert all(type(v) is float for v in loaded.history_[key])
        np.testing.assert_array_equal(loaded.history_[key], values)


def test_history_entry_that_is_not_numbers_is_skipped_with_warning(tmp_path):
    clf, X, y = _fitted_classifier()
    clf.history_ = {"loss": [1.0, 0.5], "notes": ["fast", "slow"]}
    with pytest.warns(UserWarning, match="notes"):
        clf.save(tmp_path / "m")
    assert cymlp.load(tmp_path / "m").history_ == {"loss": [1.0, 0.5]}


def test_unknown_state_entries_are_not_restored(tmp_path):
    clf, X, y = _fitted_classifier()
    clf.save(tmp_path / "m")
    _rewrite_header(tmp_path / "m", lambda h: h["state"].update(predict="x", _network=1))
    loaded = cymlp.load(tmp_path / "m")
    assert callable(loaded.predict)
    assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_history_array_is_checked(tmp_path):
    clf, X, y = _fitted_classifier()
    clf.history_ = {"loss": [1.0, 0.5]}
    clf.save(tmp_path / "m")
    with np.load(tmp_path / "m", allow_pickle=False) as npz:
        members = {name: npz[name] for name in npz.files}
    members["history_0"] = members["history_0"] * 2
    with open(tmp_path / "m", "wb") as f:
        np.savez(f, **members)
    with pytest.raises(ValueError, match="checksum"):
        cymlp.load(tmp_path / "m")


NETWORK_CASES = [
    dict(batch_normalization=True),
    dict(dropout=0.3, activation="gelu"),
    dict(batch_normalization=True, dropout=[0.2, 0.1], activation="silu", solver="adamw"),
    dict(batch_normalization=True, solver="sgd", dtype=np.float32),
]


@pytest.mark.parametrize("kw", NETWORK_CASES)
def test_network_config_and_running_statistics_round_trip(tmp_path, kw):
    """Batch normalization, dropout, new activations: the loaded model predicts
    identically and partial_fit continues exactly as the original would have."""
    clf, X, y = _fitted_classifier(batch_size=32, **kw)
    net = clf._network
    if kw.get("batch_normalization"):
        assert net.running.size == 2 * (8 + 4)
        assert not np.all(net.running[:8] == 0)  # training moved the running means
    twin = pickle.loads(pickle.dumps(clf))
    clf.save(tmp_path / "m")
    loaded = cymlp.load(tmp_path / "m")
    assert loaded._network.config() == net.config()
    assert_array_equal(loaded._network.params, net.params)
    assert_array_equal(loaded._network.running, net.running)
    assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    for est in (twin, loaded):
        est.partial_fit(X, y)
        est.partial_fit(X, y)
    assert_array_equal(loaded._network.params, twin._network.params)
    assert_array_equal(loaded._network.running, twin._network.running)
    assert_array_equal(loaded.predict_proba(X), twin.predict_proba(X))
    assert not np.array_equal(loaded._network.params, net.params)  # it did train


@pytest.mark.parametrize("loss", ["absolute_error", "huber"])
def test_robust_loss_regressor_round_trip(tmp_path, loss):
    X, y = load_diabetes(return_X_y=True)
    y = (y - y.mean()) / y.std()
    reg = _quiet_fit(MLPRegressor(loss=loss, huber_delta=0.5, max_iter=5, random_state=0), X, y)
    twin = pickle.loads(pickle.dumps(reg))
    reg.save(tmp_path / "r")
    loaded = cymlp.load(tmp_path / "r")
    assert loaded._network.config()["loss"] == loss
    assert loaded._network.config()["huber_delta"] == 0.5
    assert_array_equal(loaded.predict(X), reg.predict(X))
    for est in (twin, loaded):
        est.partial_fit(X, y)
    assert_array_equal(loaded._network.params, twin._network.params)


def test_running_statistics_are_checked(tmp_path):
    clf, X, y = _fitted_classifier(batch_normalization=True, batch_size=32)
    path = tmp_path / "m"
    clf.save(path)
    with np.load(path, allow_pickle=False) as npz:
        members = {name: npz[name] for name in npz.files}
    members["running"] = members["running"] + 1
    with open(path, "wb") as f:
        np.savez(f, **members)
    with pytest.raises(ValueError, match="'running'.*checksum"):
        cymlp.load(path)
    # a file whose running statistics are missing altogether
    members["running"] = members["running"] - 1
    header = json.loads(members.pop("header").tobytes().decode())
    del members["running"], header["sha256"]["running"]
    members["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **members)
    with pytest.raises(ValueError, match="running statistics"):
        cymlp.load(path)


def test_fitted_history_round_trips(tmp_path):
    """history_ as the training loop writes it (validation keys included)."""
    X, y = _iris()
    clf = _quiet_fit(
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=6, random_state=0),
        X[::2],
        y[::2],
        X_val=X[1::2],
        y_val=y[1::2],
    )
    assert {"loss", "score", "val_loss", "val_score"} <= set(clf.history_)
    clf.save(tmp_path / "m")
    loaded = cymlp.load(tmp_path / "m")
    assert list(loaded.history_) == list(clf.history_)
    for key, values in clf.history_.items():
        assert len(values) == 6
        np.testing.assert_array_equal(loaded.history_[key], values)


def test_early_stopping_best_running_statistics_round_trip(tmp_path):
    """Early stopping keeps the best epoch's weights and running statistics; a
    warm-started fit that never beats it restores both, also after a round trip."""
    params = dict(batch_normalization=True, early_stopping=True, warm_start=True)
    clf, X, y = _fitted_classifier(batch_size=16, max_iter=20, **params)
    clf.save(tmp_path / "m")
    loaded = cymlp.load(tmp_path / "m")
    assert_array_equal(loaded._best_running, clf._best_running)
    twin = pickle.loads(pickle.dumps(clf))
    for est in (twin, loaded):
        est.set_params(learning_rate_init=5.0, max_iter=3)  # no better epoch follows
        _quiet_fit(est, X, y)
    assert_array_equal(loaded._network.running, twin._network.running)
    assert_array_equal(loaded._network.params, twin._network.params)
    assert_array_equal(loaded._network.running, clf._best_running)
