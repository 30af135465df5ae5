"""cymlp.plot.plot_history: the lines it draws carry history_'s values (training and
validation curves, the learning rate on a twin axis or in a panel of its own), where it
draws (new figure, given Axes), and its errors (unfitted, lbfgs, unknown metric, no
matplotlib)."""

import doctest
import importlib
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import cymlp  # noqa: E402
import cymlp.plot  # noqa: E402
from cymlp import MLPClassifier, MLPRegressor  # noqa: E402
from cymlp.callbacks import LearningRateScheduler  # noqa: E402
from cymlp.plot import plot_history  # noqa: E402

from _common import iris, regression  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


@pytest.fixture(scope="module")
def clf_val():
    """A classifier trained with validation data (X_val / y_val)."""
    X, y = iris()
    est = MLPClassifier((8,), max_iter=12, learning_rate_init=0.01, random_state=0)
    return _fit(est, X[::2], y[::2], X_val=X[1::2], y_val=y[1::2])


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_loss_and_validation_loss_lines_carry_the_history(clf_val):
    ax = plot_history(clf_val)
    history = clf_val.history_
    lines = _lines(ax)
    assert list(lines) == ["training loss", "validation loss"]
    for label, key in [("training loss", "loss"), ("validation loss", "val_loss")]:
        assert_array_equal(lines[label].get_xdata(), np.arange(12))
        assert_array_equal(lines[label].get_ydata(), history[key])
    assert ax.get_xlabel() == "epoch"
    assert ax.get_ylabel() == "loss"
    # constant learning rate: no learning-rate axis ('auto'), one Axes in the figure
    assert ax.figure.axes == [ax]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(lines)


def test_several_metrics_make_one_panel_each(clf_val):
    axes = plot_history(clf_val, metrics=("loss", "score"))
    assert isinstance(axes, list) and len(axes) == 2
    assert axes[0].figure is axes[1].figure
    score = _lines(axes[1])
    assert list(score) == ["training accuracy", "validation accuracy"]
    assert_array_equal(score["training accuracy"].get_ydata(), clf_val.history_["score"])
    assert_array_equal(score["validation accuracy"].get_ydata(), clf_val.history_["val_score"])
    assert axes[1].get_ylabel() == "accuracy"
    # a val_* key alone, and the epoch times
    ax = plot_history(clf_val, metrics="val_score")
    assert list(_lines(ax)) == ["validation accuracy"]
    ax = plot_history(clf_val, metrics=["epoch_time"])[0]
    assert list(_lines(ax)) == ["epoch time (s)"]
    assert_array_equal(ax.get_lines()[0].get_ydata(), clf_val.history_["epoch_time"])


def test_regressor_without_validation_data():
    X, y = regression()
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=6, learning_rate_init=0.01, random_state=0)
    _fit(reg, X, y)
    axes = plot_history(reg, metrics=["loss", "score"])
    assert list(_lines(axes[0])) == ["training loss"]
    assert list(_lines(axes[1])) == ["training R²"]
    assert_array_equal(axes[1].get_lines()[0].get_ydata(), reg.history_["score"])
    with pytest.raises(ValueError, match="'val_loss' is not recorded"):
        plot_history(reg, metrics="val_loss")


def test_early_stopping_split_gives_validation_curves():
    X, y = iris()
    est = _fit(MLPClassifier((8,), max_iter=8, early_stopping=True, random_state=0), X, y)
    lines = _lines(plot_history(est))
    assert_array_equal(lines["validation loss"].get_ydata(), est.history_["val_loss"])


def test_learning_rate_on_a_twin_axis_when_it_changes():
    X, y = iris()
    schedule = LearningRateScheduler(lambda epoch, lr: 0.05 * 0.5 ** (epoch // 3))
    est = MLPClassifier((8,), solver="sgd", max_iter=9, callbacks=[schedule], random_state=0)
    _fit(est, X, y)
    ax = plot_history(est)
    fig_axes = ax.figure.axes
    assert len(fig_axes) == 2
    twin = fig_axes[1]
    (line,) = twin.get_lines()
    assert line.get_label() == "learning rate"
    assert_array_equal(line.get_ydata(), est.history_["learning_rate"])
    assert_array_equal(line.get_ydata(), 0.05 * 0.5 ** (np.arange(9) // 3))
    assert twin.get_yscale() == "log"
    # one legend for both axes
    assert [t.get_text() for t in twin.get_legend().get_texts()] == [
        "training loss",
        "learning rate",
    ]
    # False leaves it out; a learning_rate panel replaces the twin axis
    assert plot_history(est, learning_rate=False).figure.axes[1:] == []
    axes = plot_history(est, metrics=["loss", "learning_rate"])
    assert len(axes[0].figure.axes) == 2
    assert axes[1].get_yscale() == "log"
    assert list(_lines(axes[1])) == ["learning rate"]
    assert_array_equal(axes[1].get_lines()[0].get_ydata(), est.history_["learning_rate"])


def test_learning_rate_true_draws_a_constant_rate(clf_val):
    ax = plot_history(clf_val, learning_rate=True)
    (line,) = ax.figure.axes[1].get_lines()
    assert_array_equal(line.get_ydata(), clf_val.history_["learning_rate"])
    with pytest.raises(ValueError, match="learning_rate must be"):
        plot_history(clf_val, learning_rate="yes")


def test_draws_on_given_axes(clf_val):
    fig, axes = plt.subplots(1, 3)
    assert plot_history(clf_val, ax=axes[2]) is axes[2]
    assert len(axes[2].get_lines()) == 2 and not axes[0].get_lines()
    drawn = plot_history(clf_val, ax=axes[:2], metrics=("loss", "score"))
    assert drawn == [axes[0], axes[1]]
    assert len(axes[1].get_lines()) == 2
    with pytest.raises(ValueError, match="ax holds 3 Axes for 2 metrics"):
        plot_history(clf_val, ax=axes, metrics=("loss", "score"))


def test_partial_fit_epochs_without_validation_are_gaps():
    X, y = iris()
    est = MLPClassifier((8,), random_state=0)
    est.partial_fit(X, y, classes=np.unique(y))
    est.partial_fit(X[::2], y[::2], X_val=X[1::2], y_val=y[1::2])
    lines = _lines(plot_history(est))
    val = lines["validation loss"].get_ydata()
    assert np.isnan(val[0]) and np.isfinite(val[1])


def test_errors(clf_val):
    with pytest.raises(NotFittedError):
        plot_history(MLPClassifier())
    X, y = iris()
    lbfgs = _fit(MLPClassifier((4,), solver="lbfgs", max_iter=20, random_state=0), X, y)
    with pytest.raises(ValueError, match="solver='lbfgs' trains without epochs"):
        plot_history(lbfgs)
    with pytest.raises(ValueError, match="'accuracy' is not recorded"):
        plot_history(clf_val, metrics="accuracy")
    with pytest.raises(ValueError, match="metrics is empty"):
        plot_history(clf_val, metrics=[])


def test_not_a_cymlp_estimator_says_what_to_pass():
    from sklearn.neural_network import MLPClassifier as SklearnMLP
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris()
    pipe = _fit(make_pipeline(StandardScaler(), MLPClassifier((4,), max_iter=3)), X, y)
    with pytest.raises(TypeError, match=r"got a sklearn.pipeline.Pipeline.*pipeline\[-1\]"):
        plot_history(pipe)
    plot_history(pipe[-1])
    sk = _fit(SklearnMLP((4,), max_iter=3, random_state=0), X, y)
    with pytest.raises(TypeError, match="fitted cymlp estimator.*got a sklearn.neural_network"):
        plot_history(sk)


def test_bad_metrics_and_ax_types(clf_val):
    with pytest.raises(TypeError, match="metrics must be .* got None"):
        plot_history(clf_val, metrics=None)
    with pytest.raises(TypeError, match="metrics must be .* got 5"):
        plot_history(clf_val, metrics=5)
    with pytest.raises(TypeError, match="metrics must hold history_ keys .* got 3"):
        plot_history(clf_val, metrics=["loss", 3])
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes.* got 5"):
        plot_history(clf_val, ax=5)
    _, ax = plt.subplots()
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes.* got 'x'"):
        plot_history(clf_val, ax=[ax, "x"], metrics=["loss", "score"])
    with pytest.raises(ValueError, match="learning_rate must be True, False or 'auto'"):
        plot_history(clf_val, ax=ax, learning_rate="yes")
    assert ax.get_lines() == []  # nothing drawn before the check


def test_import_without_matplotlib(monkeypatch):
    """`import cymlp.plot` works without matplotlib; calling it says what to install."""
    loaded = sys.modules["cymlp.plot"]
    monkeypatch.setattr(cymlp, "plot", loaded)  # restored afterwards
    monkeypatch.delitem(sys.modules, "cymlp.plot")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    fresh = importlib.import_module("cymlp.plot")
    # the module ran anew, with matplotlib unimportable (not the one loaded above)
    assert fresh is not loaded and fresh.plot_history is not plot_history
    assert sys.modules["cymlp.plot"] is fresh and sys.modules["matplotlib"] is None
    with pytest.raises(ImportError, match=r'pip install "cymlp\[plot\]"'):
        fresh.plot_history(MLPClassifier())


def test_documented():
    """numpydoc: every parameter documented, in order; the example runs."""
    from test_docstrings import documented_parameters, sections, signature_parameters

    assert cymlp.plot.__all__ == ["plot_history"]
    assert cymlp.plot.__doc__.strip()
    doc = plot_history.__doc__
    assert documented_parameters(doc) == signature_parameters(plot_history)
    assert {"Returns", "Raises", "Examples"} <= set(sections(doc))
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for test in finder.find(plot_history, "plot_history", globs={}):
            runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
