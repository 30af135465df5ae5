"""Callbacks: objects the epoch loop calls at the start and end of training and around
every epoch (Keras's callback protocol, on scikit-learn estimators).

Give them to an estimator with ``callbacks=[...]``. ``fit`` calls ``on_train_begin``
once, then ``on_epoch_begin`` and ``on_epoch_end`` around every epoch, then
``on_train_end``; a ``partial_fit`` call is one epoch and calls ``on_epoch_begin`` and
``on_epoch_end`` only. ``logs`` holds the epoch's entries of the estimator's
``history_``: ``'loss'``, ``'score'``, ``'val_loss'`` and ``'val_score'`` (when there is
validation data), ``'learning_rate'`` and ``'epoch_time'``. Epochs are numbered by their
index in ``history_``, continuing across ``warm_start`` fits and ``partial_fit`` calls.

scikit-learn's own stopping rule (``tol``, ``n_iter_no_change``) keeps running beside
the callbacks. A callback keeps its state (best value seen, epochs waited) on itself and
resets it in ``on_train_begin``, so one callback list can serve several fits (``clone``,
``GridSearchCV``); the estimator never changes its ``callbacks`` list.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
import string
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "Callback",
    "EarlyStopping",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
]


class Callback:
    """Base class of the callbacks: override the hooks you need.

    Every hook receives the estimator being trained; its fitted attributes
    (``coefs_``, ``history_``, ...) are up to date when the hook runs.
    """

    def on_train_begin(self, estimator: Any, logs: dict[str, float]) -> None:
        """Called once at the start of `fit`, before the first epoch.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being trained.
        logs : dict
            Empty.
        """

    def on_epoch_begin(self, estimator: Any, epoch: int, logs: dict[str, float]) -> None:
        """Called before every epoch (a learning-rate schedule sets the rate here).

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being trained.
        epoch : int
            The epoch's number: its index in ``estimator.history_``.
        logs : dict
            Empty.
        """

    def on_epoch_end(self, estimator: Any, epoch: int, logs: dict[str, float]) -> bool | None:
        """Called after every epoch; return True to stop training after it.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being trained.
        epoch : int
            The epoch's number: its index in ``estimator.history_``.
        logs : dict
            The epoch's entries of ``estimator.history_`` (a copy).

        Returns
        -------
        stop : bool or None
            True stops training after this epoch (in `fit`; a `partial_fit` call is
            one epoch anyway).
        """
        return False

    def on_train_end(self, estimator: Any, logs: dict[str, float]) -> None:
        """Called once at the end of `fit`, after the last epoch.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The trained estimator.
        logs : dict
            The last epoch's entries of ``estimator.history_`` (empty if no epoch
            finished).
        """

    def _monitored(self) -> str | None:
        """The history key this callback watches, if any (checked at the start of fit)."""
        return None

    def _check(self, estimator: Any, has_validation: bool) -> None:
        """Called at the start of fit and partial_fit, before anything changes: raise if
        this callback cannot work with this training (`has_validation`: whether its
        epochs have validation data)."""

    def _on_non_finite(self, estimator: Any, epoch: int) -> bool:
        """Called when an epoch's loss or weights became non-finite (the weights of the
        previous epoch have been restored); True ends training without an error."""
        return False

    def _init_args(self) -> dict[str, Any]:
        """The constructor's arguments, as the attributes of the same names hold them:
        the repr, and what a model file stores of cymlp's own callbacks."""
        return {
            name: getattr(self, name)
            for name in inspect.signature(type(self).__init__).parameters
            if name != "self" and hasattr(self, name)
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{name}={value!r}" for name, value in self._init_args().items())
        return f"{type(self).__name__}({params})"


def _can_take(function: Callable[..., Any], *args: Any) -> bool:
    """Whether function's signature takes these positional arguments (read from the
    signature, so that a TypeError raised inside the function is not mistaken for one);
    True where there is no signature to read: the call then decides. A numpy ufunc
    takes its nin inputs (its signature also lists `out`, a positional argument)."""
    if isinstance(function, np.ufunc):
        return len(args) == function.nin
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(*args)
    except TypeError:
        return False
    return True


def _check_int(name, value, minimum=0):
    """`value` must be an integer (not a bool) >= `minimum`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}.")


def _check_real(name, value):
    """`value` must be a finite real number (not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} of type {type(value).__name__}.")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}.")


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{name} must be True or False, got {value!r} of type {type(value).__name__}."
        )


def _check_monitor(monitor):
    """`monitor` must be a string (whether it is recorded is checked at the start of fit)."""
    if not isinstance(monitor, str):
        raise TypeError(
            f"monitor must be a history_ key (a string such as 'val_loss'), got {monitor!r} "
            f"of type {type(monitor).__name__}."
        )


def _resolve_mode(mode, monitor):
    """'auto': a score is maximised, everything else (losses) minimised."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "score" in monitor else "min"
    return mode


def _weights(estimator):
    """A copy of everything that defines the network's function: parameters and (batch
    normalization) running statistics."""
    network = estimator._network
    return network.params.copy(), network.running.copy()


def _set_weights(estimator, weights):
    network = estimator._network
    network.params[:] = weights[0]
    network.running[:] = weights[1]


class _MonitorCallback(Callback):
    """Base of the callbacks that watch one ``history_`` key (`monitor`, `mode`): keeps
    the best value seen in the current fit in `best` and resets it at the start of fit."""

    monitor: str
    mode: str

    def _reset(self):
        self._mode = _resolve_mode(self.mode, self.monitor)
        self.best = math.inf if self._mode == "min" else -math.inf

    def _monitored(self):
        return self.monitor

    def _improved(self, logs, min_delta):
        """Whether this epoch's `monitor` beats `best` by more than `min_delta` (then it
        becomes `best`)."""
        if self.monitor not in logs:
            raise ValueError(
                f"{type(self).__name__} monitors {self.monitor!r}, which this epoch's logs "
                f"lack; they have {sorted(logs)}."
            )
        current, delta = float(logs[self.monitor]), abs(min_delta)
        better = current < self.best - delta if self._mode == "min" else current > self.best + delta
        if better:
            self.best = current
        return better

    def on_train_begin(self, estimator, logs):
        """Reset the state kept across epochs (best value seen, epochs waited, ...).

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being trained.
        logs : dict
            Empty.
        """
        self._reset()


class EarlyStopping(_MonitorCallback):
    """Stop training when a monitored quantity has stopped improving.

    Parameters
    ----------
    monitor : str, default='val_loss'
        The ``history_`` key to watch: 'loss', 'score', 'val_loss' or 'val_score'
        (the ``val_*`` ones need validation data: ``X_val`` / ``y_val`` in `fit`, or
        ``early_stopping=True``).
    patience : int, default=0
        Epochs in a row without improvement after which training stops (as in Keras,
        0 and 1 both stop after the first such epoch).
    min_delta : float, default=0
        Smallest change that counts as an improvement.
    mode : {'auto', 'min', 'max'}, default='auto'
        Whether the quantity should decrease or increase; 'auto' maximises a
        ``*score*`` and minimises anything else.
    restore_best_weights : bool, default=False
        At the end of `fit`, put back the weights of the best epoch (whether this
        callback stopped training or not; Keras restores them only when it stops).

    Attributes
    ----------
    best : float
        Best value seen in the current fit.
    stopped_epoch : int or None
        The epoch after which this callback stopped training (None if it did not).

    Notes
    -----
    scikit-learn's own rule (``tol``, ``n_iter_no_change``) keeps running beside this
    callback; a warning at the start of `fit` says when `patience` exceeds
    ``n_iter_no_change`` (set ``n_iter_no_change=np.inf`` to leave stopping to the
    callback).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        _check_monitor(monitor)
        _check_int("patience", patience)
        _check_real("min_delta", min_delta)
        _check_bool("restore_best_weights", restore_best_weights)
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.restore_best_weights = restore_best_weights
        self._reset()

    def _reset(self):
        super()._reset()
        self.stopped_epoch = None
        self._wait = 0
        self._best_weights = None

    def on_epoch_end(self, estimator, epoch, logs):
        """Record an improvement, or count one more epoch without it.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being trained.
        epoch : int
            The epoch's number.
        logs : dict
            The epoch's history entries.

        Returns
        -------
        stop : bool
            True once `patience` epochs in a row did not improve.
        """
        if self._improved(logs, self.min_delta):
            self._wait = 0
            if self.restore_best_weights:
                self._best_weights = _weights(estimator)
            return False
        self._wait += 1
        if self._wait >= self.patience:  # Keras's count: patience=0 or 1 stop at once
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, estimator, logs):
        """Restore the best epoch's weights (with ``restore_best_weights=True``).

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The trained estimator.
        logs : dict
            The last epoch's history entries.
        """
        if self.restore_best_weights and self._best_weights is not None:
            _set_weights(estimator, self._best_weights)
        self._best_weights = None  # do not keep a copy of the weights alive


class ReduceLROnPlateau(_MonitorCallback):
    """Multiply the learning rate by `factor` when a monitored quantity stalls.

    Parameters
    ----------
    monitor : str, default='val_loss'
        The ``history_`` key to watch (see :class:`EarlyStopping`).
    factor : float, default=0.1
        Factor in (0, 1) by which the rate is multiplied.
    patience : int, default=10
        Epochs without improvement before the rate is reduced.
    min_delta : float, default=1e-4
        Smallest change that counts as an improvement.
    min_lr : float, default=0
        The rate is never reduced below this.
    mode : {'auto', 'min', 'max'}, default='auto'
        As in :class:`EarlyStopping`.
    cooldown : int, default=0
        Epochs to wait after a reduction before counting stalled epochs again.

    Attributes
    ----------
    best : float
        Best value seen in the current fit.

    Notes
    -----
    The rate is the optimizer's base step size (``learning_rate_init`` of adam, adamw
    and rmsprop, sgd's constant rate); it is recorded in ``history_['learning_rate']``.
    With ``solver='sgd'`` it cannot be combined with ``learning_rate='invscaling'``
    or ``'adaptive'`` (ValueError at the start of `fit`); the other solvers ignore
    `learning_rate`.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        min_lr: float = 0,
        mode: str = "auto",
        cooldown: int = 0,
    ) -> None:
        _check_monitor(monitor)
        _check_real("factor", factor)
        if not 0 < factor < 1:
            raise ValueError(f"factor must lie in (0, 1), got {factor!r}.")
        _check_int("patience", patience)
        _check_real("min_delta", min_delta)
        _check_real("min_lr", min_lr)
        if min_lr < 0:
            raise ValueError(f"min_lr must be >= 0, got {min_lr!r}.")
        _check_int("cooldown", cooldown)
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.min_delta = min_delta
        self.min_lr = min_lr
        self.mode = mode
        self.cooldown = cooldown
        self._reset()

    def _reset(self):
        super()._reset()
        self._wait = 0
        self._cooldown_left = 0

    def on_epoch_end(self, estimator, epoch, logs):
        """Reduce the rate once `patience` epochs in a row did not improve.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being trained.
        epoch : int
            The epoch's number.
        logs : dict
            The epoch's history entries.

        Returns
        -------
        stop : bool
            Always False.
        """
        if self._cooldown_left > 0:
            self._cooldown_left -= 1
            self._wait = 0
        if self._improved(logs, self.min_delta):
            self._wait = 0
        elif self._cooldown_left == 0:  # Keras's order: the last cooldown epoch counts
            self._wait += 1
            if self._wait >= self.patience:
                optimizer = estimator._optimizer
                lr = optimizer.base_learning_rate
                if lr > self.min_lr:
                    new_lr = max(lr * self.factor, self.min_lr)
                    optimizer.set_base_learning_rate(new_lr)
                    if estimator.verbose:  # numbered from 1, as Keras and the verbose lines
                        print(
                            f"Epoch {epoch + 1}: ReduceLROnPlateau set the learning rate to "
                            f"{new_lr}."
                        )
                    self._cooldown_left = self.cooldown
                    self._wait = 0
        return False


class LearningRateScheduler(Callback):
    """Set the learning rate before every epoch from a function of the epoch.

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch, lr) -> new_lr``: `epoch` is the epoch's number (its index in
        ``history_``), `lr` the current base rate; the returned rate is used for that
        epoch and recorded in ``history_['learning_rate']``. A function of the epoch
        alone, ``schedule(epoch)``, also works (Keras's older form).

    Notes
    -----
    With ``solver='sgd'`` it cannot be combined with ``learning_rate='invscaling'``
    or ``'adaptive'`` (ValueError at the start of `fit`); the other solvers ignore
    `learning_rate`.
    """

    def __init__(self, schedule: Callable[..., float]) -> None:
        if not callable(schedule):
            raise TypeError(
                "schedule must be a function schedule(epoch, lr) -> new_lr, got "
                f"{schedule!r} of type {type(schedule).__name__}."
            )
        self.schedule = schedule

    def on_epoch_begin(self, estimator, epoch, logs):
        """Set the rate of this epoch to ``schedule(epoch, lr)``.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being trained.
        epoch : int
            The epoch's number.
        logs : dict
            Empty.
        """
        optimizer = estimator._optimizer
        if _can_take(self.schedule, epoch, optimizer.base_learning_rate):
            lr = self.schedule(epoch, optimizer.base_learning_rate)
        else:
            lr = self.schedule(epoch)
        try:
            lr = float(lr)
        except (TypeError, ValueError):
            raise ValueError(f"The schedule returned {lr!r}, not a number.") from None
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"The schedule returned the learning rate {lr!r}; it must be > 0.")
        optimizer.set_base_learning_rate(lr)


class TerminateOnNaN(Callback):
    """End training without an error when the loss or the weights become non-finite.

    Without this callback such an epoch raises ValueError ("Training diverged"). With
    it, training stops, the weights of the last finite epoch are kept (the diverged
    epoch is not recorded in ``history_`` or ``loss_curve_``), a warning is issued and
    `fit` returns normally. With ``early_stopping=True`` training would otherwise go
    on (as in scikit-learn); this callback stops it there too, and the best weights
    are restored as usual.
    """

    def _on_non_finite(self, estimator, epoch):
        warnings.warn(
            f"TerminateOnNaN: the loss or the weights became non-finite in epoch {epoch}; "
            "training stopped, the weights of the previous epoch were kept.",
            UserWarning,
            stacklevel=2,
        )
        return True

    def on_epoch_end(self, estimator, epoch, logs):
        """Stop on a non-finite loss in the logs.

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being trained.
        epoch : int
            The epoch's number.
        logs : dict
            The epoch's history entries.

        Returns
        -------
        stop : bool
            True if ``logs['loss']`` is not finite.
        """
        return not np.isfinite(logs.get("loss", 0.0))


class ModelCheckpoint(_MonitorCallback):
    """Save the estimator to a model file after every epoch (or every improvement).

    Parameters
    ----------
    filepath : str or os.PathLike
        Where to save (``estimator.save(path)``). It may hold Keras-style format
        fields: ``{epoch}`` (the epoch's number, its index in ``history_``, so the
        first epoch is 0) and the epoch's history keys, e.g.
        ``'model-{epoch:03d}-{val_loss:.4f}.cymlp'``. The fields are checked at the
        start of `fit` and `partial_fit` (ValueError for any other field, or a
        ``val_*`` field without validation data); a missing folder is created when
        the file is saved, as in Keras.
    monitor : str, default='val_loss'
        The ``history_`` key that decides what is best (``save_best_only`` only).
    save_best_only : bool, default=False
        Save only when `monitor` improves on the best value so far.
    mode : {'auto', 'min', 'max'}, default='auto'
        As in :class:`EarlyStopping`.

    Attributes
    ----------
    best : float
        Best value of `monitor` saved in the current fit (``save_best_only`` only).

    Notes
    -----
    The estimator's `callbacks` parameter is stored as None in the file (callbacks are
    code, not data); the warning the model file writer gives about it is silenced here.
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
    ) -> None:
        if not isinstance(filepath, (str, os.PathLike)) or isinstance(os.fspath(filepath), bytes):
            raise TypeError(
                f"filepath must be a str or os.PathLike (a file path), got {filepath!r} of "
                f"type {type(filepath).__name__}."
            )
        if not os.fspath(filepath):
            raise ValueError("filepath is empty: give the model file's path.")
        _check_monitor(monitor)
        _check_bool("save_best_only", save_best_only)
        self.filepath = filepath
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.mode = mode
        self._reset()

    def _monitored(self):
        return self.monitor if self.save_best_only else None

    def _check(self, estimator, has_validation):
        """Every format field of `filepath` must be ``epoch`` or a history key, the
        ``val_*`` ones with validation data, and format a number (checked with sample
        values); the folder is made at save time, as in Keras."""
        from ._training import HISTORY_KEYS

        path = os.fspath(self.filepath)
        if "{" not in path and "}" not in path:
            return
        known = ("epoch", *HISTORY_KEYS)
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(path) if f is not None]
        except ValueError as exc:
            raise ValueError(
                f"ModelCheckpoint's filepath={path!r} is not a valid format string ({exc}); "
                "write a literal brace as '{{' or '}}'."
            ) from None
        for field in fields:
            root = field.split(".", 1)[0].split("[", 1)[0]
            if root not in known:
                raise ValueError(
                    f"ModelCheckpoint's filepath={path!r} has the format field {{{field}}}; "
                    f"the fields it can hold are {list(known)}."
                )
            if root.startswith("val_") and not has_validation:
                raise ValueError(
                    f"ModelCheckpoint's filepath={path!r} has the field {{{field}}}, which "
                    "needs validation data: pass X_val and y_val to fit, or set "
                    "early_stopping=True."
                )
        try:
            path.format(epoch=0, **dict.fromkeys(HISTORY_KEYS, 0.0))
        except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
            raise ValueError(
                f"ModelCheckpoint's filepath={path!r} cannot be formatted with the epoch "
                f"(an int) and the history values (floats): {exc}"
            ) from None

    def on_epoch_end(self, estimator, epoch, logs):
        """Save the estimator (with ``save_best_only``: if `monitor` improved).

        Parameters
        ----------
        estimator : MLPClassifier or MLPRegressor
            The estimator being trained.
        epoch : int
            The epoch's number.
        logs : dict
            The epoch's history entries.

        Returns
        -------
        stop : bool
            Always False.
        """
        if self.save_best_only and not self._improved(logs, 0.0):
            return False
        path = os.fspath(self.filepath)
        if "{" in path or "}" in path:
            path = path.format(epoch=epoch, **logs)
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)  # as Keras does
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Parameter callbacks=", category=UserWarning)
            estimator.save(path)
        return False
