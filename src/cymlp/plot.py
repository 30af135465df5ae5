"""Plots of training: the per-epoch curves an estimator records in ``history_``.

Needs matplotlib, the ``plot`` extra: ``pip install "cymlp[plot]"``. matplotlib is
imported when a function here is called, not when this module is imported, so
``import cymlp.plot`` works without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

__all__ = ["plot_history"]

# how each history_ key is named on a plot (the score depends on the estimator)
_LABELS = {"loss": "loss", "learning_rate": "learning rate", "epoch_time": "epoch time (s)"}


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            'cymlp.plot needs matplotlib: pip install "cymlp[plot]" (or pip install matplotlib).'
        ) from exc
    return matplotlib


def _label(key: str, estimator: Any) -> str:
    if key == "score":
        return "accuracy" if is_classifier(estimator) else "R²"
    return _LABELS.get(key, key.replace("_", " "))


def _recorded(history: dict[str, list[float]], key: str) -> bool:
    """Whether `key` has at least one finite value (val_* are NaN for epochs without
    validation data)."""
    return key in history and bool(np.isfinite(np.asarray(history[key], dtype=float)).any())


def plot_history(
    estimator: Any,
    ax: Any = None,
    *,
    metrics: str | Sequence[str] = "loss",
    learning_rate: bool | str = "auto",
) -> Any:
    """Draw the training curves recorded in an estimator's ``history_``.

    One panel per metric: the training curve, and the validation curve (``'val_'``
    + the metric) in the same panel when validation data were given (``X_val`` /
    ``y_val`` in `fit`, or ``early_stopping=True``). The learning rate of every epoch
    goes on a second y axis (log scale) of the first panel, or in a panel of its own
    when ``'learning_rate'`` is one of the `metrics`. Epochs are numbered as in
    ``history_`` and in the callbacks: the first is 0.

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor
        A fitted estimator with a ``history_`` (solvers 'sgd', 'adam', 'adamw' and
        'rmsprop'; 'lbfgs' has no epochs and records none). For a pipeline, pass its
        last step (``pipeline[-1]``).
    ax : matplotlib Axes or sequence of Axes, default=None
        Where to draw: one Axes per metric. None makes a new figure with the
        panels side by side.
    metrics : str or sequence of str, default='loss'
        The ``history_`` keys to draw, each in its own panel: 'loss', 'score'
        (accuracy or R²), 'learning_rate', 'epoch_time', or a 'val_*' key alone.
        For 'loss' and 'score' the validation curve is drawn too when recorded.
    learning_rate : bool or 'auto', default='auto'
        Draw the learning rate on a second y axis of the first panel: True always,
        False never, 'auto' when it changed during training (a schedule or
        ReduceLROnPlateau) and is not one of the `metrics` already.

    Returns
    -------
    ax : matplotlib Axes or list of Axes
        The Axes drawn on: one if `metrics` is a string, else a list with one per
        metric. ``ax.figure`` is the figure; the learning-rate axis, when drawn, is
        its twin (``ax.figure.axes``).

    Raises
    ------
    TypeError
        If `estimator` is not a cymlp estimator (a pipeline, scikit-learn's own
        MLP), `metrics` is not a string or a sequence of strings, or `ax` is not
        a matplotlib Axes or a sequence of them.
    sklearn.exceptions.NotFittedError
        If the estimator has not been fitted.
    ValueError
        If it has no history (solver='lbfgs', or no epoch recorded), a metric is not
        recorded, `ax` does not hold one Axes per metric, or `learning_rate` is not
        True, False or 'auto'.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from cymlp import MLPClassifier
    >>> from cymlp.plot import plot_history
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier((16,), max_iter=20, random_state=0)
    >>> clf = clf.fit(X[::2], y[::2], X_val=X[1::2], y_val=y[1::2])
    >>> ax = plot_history(clf)
    >>> [line.get_label() for line in ax.get_lines()]
    ['training loss', 'validation loss']
    >>> ax.figure.savefig("history.png")  # doctest: +SKIP
    """
    _matplotlib()
    from matplotlib.axes import Axes

    from ._base import BaseMLP

    if not isinstance(estimator, BaseMLP):
        kind = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
        hint = (
            " For a pipeline, pass its fitted cymlp step, e.g. plot_history(pipeline[-1])."
            if hasattr(estimator, "steps")
            else ""
        )
        raise TypeError(
            "plot_history draws the history_ of a fitted cymlp estimator "
            f"(cymlp.MLPClassifier or cymlp.MLPRegressor), got a {kind}.{hint}"
        )
    single = isinstance(metrics, str)
    if not single and not isinstance(metrics, Iterable):
        raise TypeError(
            "metrics must be a history_ key (str) or a sequence of them, got "
            f"{metrics!r} of type {type(metrics).__name__}."
        )
    names: list[str] = [metrics] if isinstance(metrics, str) else list(metrics)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(
                f"metrics must hold history_ keys (str), got {name!r} of type "
                f"{type(name).__name__}."
            )
    if not (
        (isinstance(learning_rate, str) and learning_rate == "auto")
        or isinstance(learning_rate, (bool, np.bool_))
    ):
        raise ValueError(f"learning_rate must be True, False or 'auto', got {learning_rate!r}.")
    check_is_fitted(estimator)
    history = getattr(estimator, "history_", None)
    if not history or not history.get("loss"):
        solver = getattr(estimator, "solver", None)
        why = (
            "solver='lbfgs' trains without epochs and records no history_"
            if solver == "lbfgs"
            else "it has no recorded epochs in history_"
        )
        raise ValueError(
            f"Cannot plot the history of this {type(estimator).__name__}: {why}. "
            "Train it with a stochastic solver ('sgd', 'adam', 'adamw', 'rmsprop')."
        )
    if not names:
        raise ValueError("metrics is empty: name at least one history_ key.")
    for name in names:
        if not _recorded(history, name):
            raise ValueError(
                f"{name!r} is not recorded in this estimator's history_; it has {list(history)}."
            )

    axes: list[Any]
    if ax is None:
        import matplotlib.pyplot as plt

        _, grid = plt.subplots(
            1, len(names), figsize=(5 * len(names), 3.8), layout="constrained", squeeze=False
        )
        axes = list(grid[0])
    else:
        given = [ax] if single or not isinstance(ax, (Sequence, np.ndarray)) else ax
        axes = list(np.ravel(np.asarray(given, dtype=object)))
        for axis in axes:
            if not isinstance(axis, Axes):
                raise TypeError(
                    "ax must be a matplotlib Axes or a sequence of Axes (one per metric), "
                    f"got {axis!r} of type {type(axis).__name__}."
                )
        if len(axes) != len(names):
            raise ValueError(f"ax holds {len(axes)} Axes for {len(names)} metrics.")

    epochs = np.arange(len(history["loss"]))
    for axis, name in zip(axes, names):
        base = name.removeprefix("val_")
        label = _label(base, estimator)
        if name.startswith("val_"):
            axis.plot(epochs, history[name], label=f"validation {label}")
        elif name in ("learning_rate", "epoch_time"):  # of the epoch, not of a data set
            axis.plot(epochs, history[name], label=label)
        else:
            axis.plot(epochs, history[name], label=f"training {label}")
            if _recorded(history, "val_" + name):
                axis.plot(epochs, history["val_" + name], label=f"validation {label}")
        if name == "learning_rate":
            axis.set_yscale("log")
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)

    lr = np.asarray(history.get("learning_rate", []), dtype=float)
    if learning_rate == "auto":
        changed = lr.size > 0 and np.nanmax(lr) != np.nanmin(lr)
        draw_lr = changed and "learning_rate" not in names
    else:
        draw_lr = bool(learning_rate) and lr.size > 0
    first = axes[0]
    if draw_lr:
        twin = first.twinx()
        twin.plot(epochs, lr, color="0.45", linestyle=":", label="learning rate")
        twin.set_yscale("log")
        twin.set_ylabel("learning rate")
        handles, labels = first.get_legend_handles_labels()
        more_handles, more_labels = twin.get_legend_handles_labels()
        twin.legend(handles + more_handles, labels + more_labels, loc="best")
    else:
        first.legend(loc="best")
    for axis in axes[1:]:
        axis.legend(loc="best")
    return axes[0] if single else axes
