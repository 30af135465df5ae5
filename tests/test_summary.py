"""`summary()`: the Keras-like table. Expected counts are computed here from the layer
sizes, independently of the engine's buffers."""

import re
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError

from cymlp import MLPClassifier, MLPRegressor, _summary


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _rows(text):
    """{layer name: (cells of its line)} of a summary table."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^ (input|hidden_\d+|output) \((\w+)\)\s+(\(None, \d+\))(.*?)([\d,]+)$", line)
        if m:
            name, kind, shape, middle, count = m.groups()
            rows[name] = (kind, shape, middle.split(), int(count.replace(",", "")))
    return rows


def _totals(text):
    found = {}
    for title in ("Total params", "Trainable params", "Non-trainable params"):
        m = re.search(rf"^{title}: ([\d,]+) \(([\d.]+) (B|KB|MB|GB)\)$", text, re.M)
        found[title] = int(m.group(1).replace(",", ""))
    m = re.search(r"^Parameter memory: ([\d,]+) bytes", text, re.M)
    found["bytes"] = int(m.group(1).replace(",", ""))
    return found


def _dense_counts(units, batch_norm=False):
    """(trainable, non-trainable) per dense layer, from the layer sizes alone."""
    counts = []
    for i in range(1, len(units)):
        hidden = i < len(units) - 1
        if hidden and batch_norm:
            counts.append((units[i - 1] * units[i] + 2 * units[i], 2 * units[i]))
        else:
            counts.append((units[i - 1] * units[i] + units[i], 0))
    return counts


def test_unfitted_raises():
    for est in (MLPClassifier(), MLPRegressor()):
        with pytest.raises(NotFittedError, match="summary"):
            est.summary()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_classifier_table(dtype):
    X, y = load_iris(return_X_y=True)
    clf = _fit(MLPClassifier((10, 5), activation="tanh", max_iter=3, dtype=dtype), X, y)
    text = clf.summary()
    assert isinstance(text, str)
    assert text.splitlines()[0] == 'Model: "MLPClassifier"'
    rows = _rows(text)
    assert list(rows) == ["input", "hidden_1", "hidden_2", "output"]
    units = [4, 10, 5, 3]
    assert [r[1] for r in rows.values()] == [f"(None, {u})" for u in units]
    assert rows["input"] == ("InputLayer", "(None, 4)", [], 0)
    assert rows["hidden_1"][2] == ["tanh"] and rows["hidden_2"][2] == ["tanh"]
    assert rows["output"][2] == ["softmax"]
    expected = _dense_counts(units)
    assert [rows[n][3] for n in ("hidden_1", "hidden_2", "output")] == [t for t, _ in expected]
    totals = _totals(text)
    total = sum(t for t, _ in expected)
    assert total == 4 * 10 + 10 + 10 * 5 + 5 + 5 * 3 + 3 == 123
    assert totals["Total params"] == totals["Trainable params"] == total
    assert totals["Non-trainable params"] == 0
    assert totals["bytes"] == total * np.dtype(dtype).itemsize
    # the same count as the fitted arrays
    assert total == sum(a.size for a in clf.coefs_ + clf.intercepts_)


def test_binary_multioutput_and_poisson_heads():
    X, y = load_iris(return_X_y=True)
    rows = _rows(_fit(MLPClassifier((6,), max_iter=2), X, y == 1).summary())
    assert rows["output"][1:3] == ("(None, 1)", ["logistic"])
    Y = np.column_stack([X[:, 0], X[:, 1]])
    rows = _rows(_fit(MLPRegressor(hidden_layer_sizes=(7,), max_iter=2), X[:, 2:], Y).summary())
    assert rows["output"][1:] == ("(None, 2)", ["identity"], 7 * 2 + 2)
    rows = _rows(
        _fit(MLPRegressor(hidden_layer_sizes=(), loss="poisson", max_iter=2), X, X[:, 0]).summary()
    )
    assert list(rows) == ["input", "output"]
    assert rows["output"][1:] == ("(None, 1)", ["exp"], 4 + 1)


def test_big_counts_and_sizes_are_readable():
    X = np.zeros((4, 300))
    reg = _fit(MLPRegressor(hidden_layer_sizes=(1000, 500), max_iter=1), X, np.arange(4.0))
    text = reg.summary()
    total = 300 * 1000 + 1000 + 1000 * 500 + 500 + 500 + 1
    assert _totals(text)["Total params"] == total
    assert f"Total params: {total:,} ({total * 8 / 1024**2:.2f} MB)" in text
    assert _summary.readable_size(512) == "512.00 B"
    assert _summary.readable_size(1536) == "1.50 KB"
    assert _summary.readable_size(3 * 1024**3) == "3.00 GB"


def test_batch_norm_and_dropout_counts_from_config():
    """Batch normalization: no dense bias in hidden layers, 2 units trainable (scale,
    shift) and 2 units non-trainable (running mean, variance); dropout is noted."""
    config = dict(
        layer_units=[20, 64, 32, 3],
        hidden_activation="gelu",
        output_activation="softmax",
        dtype="<f4",
        dropout=[0.5, 0.0],
        batch_norm=True,
    )
    rows = _summary.layer_rows(config)
    counts = [(r[5], r[6]) for r in rows[1:]]
    assert counts == _dense_counts([20, 64, 32, 3], batch_norm=True)
    assert counts == [(20 * 64 + 128, 128), (64 * 32 + 64, 64), (32 * 3 + 3, 0)]
    assert rows[1][4] == "batch norm, dropout 0.5"
    assert rows[2][4] == "batch norm"
    assert rows[3][4] == ""
    config.update(batch_norm=False, dropout=[0.25, 0.1])
    rows = _summary.layer_rows(config)
    assert [(r[5], r[6]) for r in rows[1:]] == _dense_counts([20, 64, 32, 3])
    assert [r[4] for r in rows[1:]] == ["dropout 0.25", "dropout 0.1", ""]


def test_fitted_batch_norm_dropout_model():
    """A fitted model with batch normalization and dropout: counts from the layer sizes,
    and consistent with the engine's buffers (whose unused zero hidden intercepts are
    not counted)."""
    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier((12, 6), batch_normalization=True, dropout=[0.25, 0.0], max_iter=2)
    text = _fit(clf, X, y).summary()
    rows = _rows(text)
    units = [4, 12, 6, 3]
    expected = _dense_counts(units, batch_norm=True)
    for name, (t, n) in zip(("hidden_1", "hidden_2", "output"), expected):
        assert rows[name][3] == t + n
    assert rows["hidden_1"][2] == ["relu", "batch", "norm,", "dropout", "0.25"]
    assert rows["hidden_2"][2] == ["relu", "batch", "norm"]
    totals = _totals(text)
    assert totals["Trainable params"] == sum(t for t, _ in expected)
    assert totals["Non-trainable params"] == 2 * (12 + 6)
    net = clf._network
    assert totals["Total params"] == net.params.size - (12 + 6) + net.running.size
    assert totals["Non-trainable params"] == net.running.size
