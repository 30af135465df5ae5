"""The epoch loop: stopping rules, learning-rate schedules, early stopping, verbose lines.

Python runs once per epoch; each epoch is one call into the compiled engine
(`Network.train_epoch`) with the GIL released. The order of every random draw (validation
split, then one shuffle per epoch) is scikit-learn's, so a seed gives its results.
"""

import inspect
import time
import warnings
from typing import Any, NamedTuple

import numpy as np
import scipy.optimize
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ._optim import AdamOptimizer, AdamWOptimizer, RMSpropOptimizer, SGDOptimizer
from ._threads import blas_single_threaded
from .callbacks import (
    Callback,
    EarlyStopping,
    LearningRateScheduler,
    ReduceLROnPlateau,
    _can_take,
)

try:  # private scikit-learn helpers: reuse them so warnings match scikit-learn's
    from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
except ImportError:  # pragma: no cover

    def _get_additional_lbfgs_options_dict(key, value):
        return {}


try:
    from sklearn.utils.optimize import _check_optimize_result
except ImportError:  # pragma: no cover

    def _check_optimize_result(solver, result, max_iter=None, extra_warning_msg=None):
        return min(result.nit, max_iter) if max_iter is not None else result.nit


OPTIMIZER_KINDS = ("sgd", "adam", "adamw", "rmsprop")


def make_optimizer(est, network, kind=None):
    """A new optimizer for est's solver (or `kind`: a model file's optimizer, which may
    differ from a solver set after the fit), with est's hyperparameters."""
    n, dtype = network.params.shape[0], network.dtype
    kind = est.solver if kind is None else kind
    if kind == "sgd":
        return SGDOptimizer(
            n,
            dtype,
            est.learning_rate_init,
            est.learning_rate,
            est.momentum,
            est.nesterovs_momentum,
            est.power_t,
        )
    if kind == "rmsprop":
        return RMSpropOptimizer(n, dtype, est.learning_rate_init, est.rho, est.epsilon)
    if kind == "adamw":
        return AdamWOptimizer(
            n,
            dtype,
            est.learning_rate_init,
            est.beta_1,
            est.beta_2,
            est.epsilon,
            est.weight_decay,
        )
    return AdamOptimizer(n, dtype, est.learning_rate_init, est.beta_1, est.beta_2, est.epsilon)


_BEGUN = "_training_has_begun"  # set on the estimator while a fit's training runs


def _begin(est):
    """From here on the fit changes the model (BaseMLP._fit keeps what it has done)."""
    setattr(est, _BEGUN, True)


def has_begun(est):
    return est.__dict__.get(_BEGUN, False)


def forget_begun(est):
    est.__dict__.pop(_BEGUN, None)


def _diverged(est, epoch):
    raise ValueError(
        "Training diverged: the loss or the weights became non-finite (inf or NaN) in "
        f"epoch {epoch}. The weights from the end of the last finite epoch were "
        "kept. Scale the input data (e.g. StandardScaler) or lower learning_rate_init."
    )


def _restore(network, params, running):
    network.params[:] = params
    if running is not None and running.shape == network.running.shape:
        network.running[:] = running


class _EpochStart:
    """What an epoch changes, as it was before the epoch: the parameters, the batch-norm
    running statistics and the optimizer (its state buffers, step count and rate), so
    that an epoch that diverges or fails part-way can be undone as a whole."""

    def __init__(self, est):
        self.params = np.empty_like(est._network.params)
        self.running = np.empty_like(est._network.running)
        self.optimizer = None

    def save(self, est):
        np.copyto(self.params, est._network.params)
        np.copyto(self.running, est._network.running)
        self.optimizer = est._optimizer.snapshot()

    def restore(self, est):
        _restore(est._network, self.params, self.running)
        est._optimizer = self.optimizer


class Validation(NamedTuple):
    """Validation data ready for the epoch loop: X in the network's input format, y as
    the estimator's score takes it (labels, values), Y the 2-D targets in the network's
    dtype (binarized labels for classifiers), the sample weights or None."""

    X: Any
    y: Any
    Y: Any
    sample_weight: Any


# The keys of history_, in order: training loss and score, validation loss and score
# (only with validation data), the epoch's base learning rate, its duration.
HISTORY_KEYS = ("loss", "score", "val_loss", "val_score", "learning_rate", "epoch_time")
# verbose=2 runs an epoch in this many pieces to move its progress bar in between
_PROGRESS_SEGMENTS = 20


def _verbose_2(est):
    """Whether verbose asks for more than scikit-learn's lines (2 or more, not True)."""
    return not isinstance(est.verbose, bool) and est.verbose >= 2


def progress_bar_wanted(est):
    """verbose=2 (or more) with a stochastic solver: a live progress bar per epoch, where
    tqdm is installed; otherwise scikit-learn's behaviour (its lines, or SciPy's output
    for lbfgs), so that scikit-learn code that passes verbose=10 runs unchanged."""
    if not _verbose_2(est) or est.solver == "lbfgs":
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


_HOOK_ARGUMENTS = {
    "on_train_begin": ("estimator", "logs"),
    "on_epoch_begin": ("estimator", "epoch", "logs"),
    "on_epoch_end": ("estimator", "epoch", "logs"),
    "on_train_end": ("estimator", "logs"),
}


def _check_hook_signatures(cb):
    """A hook that cannot take its arguments fails at the start of fit with the reason,
    not with Python's "takes 3 positional arguments but 4 were given" mid-training
    (a Keras habit: Keras's hooks take (epoch, logs) and reach the model as self.model)."""
    for hook, names in _HOOK_ARGUMENTS.items():
        method = getattr(cb, hook)
        if not _can_take(method, *names):
            raise TypeError(
                f"{type(cb).__name__}.{hook} must take ({', '.join(names)}), as "
                f"cymlp.callbacks.Callback's does; it takes {inspect.signature(method)}. "
                "(Keras's hooks take (epoch, logs) and reach the model as self.model; "
                "cymlp passes the estimator first.)"
            )


def check_controls(est, has_validation, incremental):
    """Check the Keras-style controls at the start of fit / partial_fit, before anything
    is changed: solver='lbfgs' has no epochs; callbacks must be Callback objects;
    schedules exclude scikit-learn's own ('invscaling', 'adaptive' with solver='sgd'); a
    monitored val_* quantity needs validation data; each callback's own _check (e.g.
    ModelCheckpoint's filepath fields); verbose=2 without tqdm warns."""
    callbacks = list(est.callbacks or ())
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(
                f"callbacks must be cymlp.callbacks.Callback objects, got {cb!r} of type "
                f"{type(cb).__name__}."
            )
        _check_hook_signatures(cb)
    if est.solver == "lbfgs":
        unusable = []
        if callbacks:
            unusable.append("callbacks")
        if np.any(np.asarray(est.dropout, dtype=np.float64) > 0):
            unusable.append("dropout")
        if est.batch_normalization:
            unusable.append("batch_normalization=True")
        if has_validation:
            unusable.append("validation data (X_val, y_val)")
        if unusable:
            raise ValueError(
                "solver='lbfgs' has no epochs (it minimises the full-batch objective), so "
                f"{', '.join(unusable)} cannot be used with it: choose a stochastic solver "
                "('adam', 'sgd', 'adamw' or 'rmsprop')."
            )
        return
    if est.solver == "sgd" and est.learning_rate in ("invscaling", "adaptive"):
        for cb in callbacks:
            if isinstance(cb, (LearningRateScheduler, ReduceLROnPlateau)):
                raise ValueError(
                    f"{type(cb).__name__} sets the learning rate itself; it cannot be "
                    f"combined with learning_rate={est.learning_rate!r}, scikit-learn's own "
                    "schedule. Use learning_rate='constant'."
                )
    has_validation = has_validation or (est.early_stopping and not incremental)
    for cb in callbacks:
        key = cb._monitored()
        if key is None:
            continue
        if key not in HISTORY_KEYS:
            raise ValueError(
                f"{type(cb).__name__} monitors {key!r}, which is not recorded; the history "
                f"keys are {list(HISTORY_KEYS)}."
            )
        if key.startswith("val_") and not has_validation:
            raise ValueError(
                f"{type(cb).__name__} monitors {key!r}, which needs validation data: pass "
                "X_val and y_val to fit, or set early_stopping=True (which holds out "
                "validation_fraction of the training data)."
            )
    for cb in callbacks:
        cb._check(est, has_validation)  # e.g. ModelCheckpoint's filepath fields
    if not incremental:
        for cb in callbacks:
            if isinstance(cb, EarlyStopping) and cb.patience > est.n_iter_no_change:
                warnings.warn(
                    f"EarlyStopping(patience={cb.patience}) waits longer than "
                    f"n_iter_no_change={est.n_iter_no_change}: scikit-learn's own stopping "
                    "rule (tol, n_iter_no_change) keeps running beside the callbacks and may "
                    "stop training first. Set n_iter_no_change=np.inf to leave stopping to "
                    "the callback.",
                    UserWarning,
                )
    if _verbose_2(est) and not progress_bar_wanted(est):
        warnings.warn(
            "verbose=2 shows a progress bar made with tqdm, which is not installed "
            "(pip install tqdm, or pip install 'cymlp[progress]'): showing scikit-learn's "
            "lines instead.",
            UserWarning,
        )


def data_loss(network, outputs, Y, sample_weight=None):
    """The data loss (without the L2 term) of `outputs`, the network's output activations,
    against the 2-D targets Y: the engine's per-row losses (_kernels.output_loss_backward)
    and the same reduction as history_['loss'], the sample-weighted mean over rows (the
    identity output's losses averaged over outputs as well). Probabilities are clipped to
    [eps, 1 - eps] of the network's dtype, as the engine does."""
    dtype = network.dtype
    P = np.asarray(outputs, dtype=dtype)
    Y = np.asarray(Y, dtype=dtype).reshape(P.shape)
    act = network.output_activation
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if act in ("softmax", "logistic"):
            eps = np.finfo(dtype).eps
            p = np.clip(P, eps, 1 - eps)
            terms = np.where(Y != 0, Y * np.log(p).astype(np.float64), 0.0)
            if act == "logistic":
                terms += np.where(Y != 1, (1 - Y) * np.log(1 - p).astype(np.float64), 0.0)
            rows = -np.sum(terms, axis=1)
        elif act == "exp":  # Poisson half deviance: y log(y / p) - y + p
            y64, p64 = Y.astype(np.float64), P.astype(np.float64)
            rows = np.sum(np.where(Y != 0, y64 * np.log(y64 / p64), 0.0) + p64 - y64, axis=1)
        else:
            r = (P - Y).astype(np.float64)
            if network.loss == "absolute_error":
                terms = np.abs(r)
            elif network.loss == "huber":
                delta = float(network.huber_delta)
                a = np.abs(r)
                terms = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
            else:
                terms = 0.5 * r * r
            rows = np.sum(terms, axis=1)
    if sample_weight is None:
        loss = float(np.mean(rows))
    else:
        sw = np.asarray(sample_weight, dtype=np.float64)
        loss = float(np.dot(sw, rows) / np.sum(sw))
    if act == "identity":
        loss /= P.shape[1]
    return loss


def _validation_metrics(est, validation):
    """(val_loss, val_score) from one forward pass over the validation data."""
    outputs = est._forward_pass_fast(validation.X, check_input=False)
    loss = data_loss(est._network, outputs, validation.Y, validation.sample_weight)
    score = est._score(validation.X, validation.y, validation.sample_weight, outputs=outputs)
    return loss, float(score)


def _record(history, logs):
    """Append an epoch's logs to history_. Every list keeps one entry per epoch: a key
    missing from this epoch (validation data given to one partial_fit call but not the
    next) gets NaN, a key new in it gets NaN for the earlier epochs."""
    n_epochs = max((len(v) for v in history.values()), default=0)
    if not logs.keys() <= history.keys():
        for key in logs:
            history.setdefault(key, [np.nan] * n_epochs)
        order = {key: i for i, key in enumerate(HISTORY_KEYS)}
        for key in sorted(history, key=lambda k: order.get(k, len(order))):
            history[key] = history.pop(key)  # the keys in HISTORY_KEYS order
    for key, values in history.items():
        values.append(float(logs.get(key, np.nan)))


def _train_with_progress(network, args, stats, epoch, seed, n_samples, batch_size):
    """One epoch in about _PROGRESS_SEGMENTS calls into the engine (batch ranges; the
    same steps, so the same numbers, as one call), moving a tqdm bar in between.
    Returns the open bar: the caller adds the validation metrics and closes it."""
    from tqdm import tqdm

    n_batches = network.n_batches(n_samples, batch_size)
    segments = min(_PROGRESS_SEGMENTS, n_batches)
    bounds = [k * n_batches // segments for k in range(segments + 1)]
    # numbered from 1, as Keras's bar and the verbose lines
    bar = tqdm(total=n_batches, desc=f"Epoch {epoch + 1}", unit="batch", dynamic_ncols=True)
    try:
        for k0, k1 in zip(bounds[:-1], bounds[1:]):
            network.train_epoch(*args, stats=stats, epoch=epoch, seed=seed, batches=(k0, k1))
            bar.set_postfix(loss=f"{network.finish_stats(stats)['loss']:.4g}", refresh=False)
            bar.update(k1 - k0)
    except BaseException:
        bar.close()
        raise
    return bar


def _close_progress(bar, logs):
    bar.set_postfix(
        {k: f"{v:.4g}" for k, v in logs.items() if k not in ("learning_rate", "epoch_time")},
        refresh=False,
    )
    bar.close()


def fit_stochastic(est, X, y, sample_weight, incremental, validation=None):
    """scikit-learn's _fit_stochastic, one engine call per epoch, with the Keras-style
    controls around it: validation data, history_, callbacks, dropout keys, progress bar.
    `y` is 2-D (binarized labels for classifiers) and is converted to the compute dtype
    after the split. `validation`: a Validation of explicit validation data, or None."""
    network = est._network
    if not incremental or not hasattr(est, "_optimizer"):
        est._optimizer = make_optimizer(est, network)
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    early_stopping = est.early_stopping
    if early_stopping and validation is None:
        # don't stratify in multilabel classification
        stratify = y if is_classifier(est) and est.n_outputs_ == 1 else None
        if sample_weight is None:
            X_train, X_val, y_train, y_val = train_test_split(
                X,
                y,
                random_state=est._random_state,
                test_size=est.validation_fraction,
                stratify=stratify,
            )
            sw_train = sw_val = None
        else:
            X_train, X_val, y_train, y_val, sw_train, sw_val = train_test_split(
                X,
                y,
                sample_weight,
                random_state=est._random_state,
                test_size=est.validation_fraction,
                stratify=stratify,
            )
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' "
                "or the size of your dataset."
            )
        Y_val = np.ascontiguousarray(y_val, dtype=network.dtype)
        if is_classifier(est):
            y_val = est._label_binarizer.inverse_transform(y_val)
        validation = Validation(X_val, y_val, Y_val, sw_val)
    else:
        # explicit validation data replace the validation_fraction split: no rows held out
        X_train, y_train, sw_train = X, y, sample_weight

    # The dropout masks' key: one draw per fit, after the split and before the first
    # shuffle, and only with dropout (the draws of a network without it stay
    # scikit-learn's). partial_fit rebuilds the RandomState at every call, so with an
    # integer random_state every call draws the same seed: the masks still differ, as
    # they are keyed by the epoch's number too.
    seed = 0
    if any(rate > 0 for rate in network.dropout):
        seed = int(est._random_state.randint(np.iinfo(np.int64).max))

    n_samples = X_train.shape[0]
    Y_train = np.ascontiguousarray(y_train, dtype=network.dtype)
    sample_idx = np.arange(n_samples, dtype=int)
    if est.batch_size == "auto":
        batch_size = min(200, n_samples)
    else:
        if est.batch_size > n_samples:
            warnings.warn(
                "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped"
            )
        batch_size = int(np.clip(est.batch_size, 1, n_samples))
    if network.batch_norm:
        # one row has no batch statistics: it normalizes to zero and trains nothing
        if batch_size == 1:
            raise ValueError(
                "batch_normalization=True needs mini-batches of at least 2 rows (one row's "
                f"batch variance is zero); got batch_size={batch_size} for {n_samples} "
                "training rows."
            )
        if n_samples % batch_size == 1:
            warnings.warn(
                f"The last mini-batch of each epoch has one row ({n_samples} rows, "
                f"batch_size={batch_size}): batch normalization gives it no gradient. "
                "Choose a batch_size that leaves at least 2 rows.",
                UserWarning,
            )

    callbacks = list(est.callbacks or ())
    progress = progress_bar_wanted(est)
    print_lines = bool(est.verbose) and not progress
    if getattr(est, "history_", None) is None:  # e.g. read from a version 1 model file
        est.history_ = {}
    history = est.history_
    logs = {}
    before = _EpochStart(est)
    if not incremental:
        for cb in callbacks:
            cb.on_train_begin(est, {})
        _take_assigned_weights(est, callbacks)
    # BLAS stays at one thread for the whole fit rather than being switched back and forth
    # around every engine call (OpenBLAS threads woken in between can spin beside ours).
    blas_limit = blas_single_threaded()
    try:
        blas_limit.__enter__()  # (inside: __exit__ then gives back whatever it took)
        network.reserve(batch_size)
        _begin(est)
        est.n_iter_ = 0
        for _ in range(est.max_iter):
            epoch = len(history.get("loss", ()))
            for cb in callbacks:
                cb.on_epoch_begin(est, epoch, {})
            _take_assigned_weights(est, callbacks)
            learning_rate = float(est._optimizer.base_learning_rate)
            start = time.perf_counter()
            if est.shuffle:
                # == sklearn.utils.shuffle(sample_idx, random_state=...): the same draws,
                # without its per-call validation overhead
                est._random_state.shuffle(sample_idx)
            before.save(est)
            stats = network.new_stats()
            args = (
                X_train,
                Y_train,
                sw_train,
                sample_idx if est.shuffle else None,
                batch_size,
                float(est.alpha),
                est._optimizer,
            )
            bar = None
            try:
                if progress:
                    bar = _train_with_progress(
                        network, args, stats, epoch, seed, n_samples, batch_size
                    )
                else:
                    network.train_epoch(*args, stats=stats, epoch=epoch, seed=seed)
            except KeyboardInterrupt:
                raise  # Ctrl-C keeps the steps taken so far, as scikit-learn does
            except BaseException:
                before.restore(est)  # an epoch that fails part-way is undone as a whole
                raise
            epoch_stats = network.finish_stats(stats)
            # the mean objective, scikit-learn's loss_curve_ (== the summed batch
            # objectives train_epoch returns / n_samples, bit for bit)
            loss = float(epoch_stats["objective"])
            # A non-finite loss or non-finite weights end training at once, keeping the
            # weights of the last finite epoch: with an error, or quietly where a callback
            # (TerminateOnNaN) takes it. With early stopping scikit-learn trains on (the
            # validation score becomes NaN) and restores the best weights at the end (its
            # fix for issue #29504): without such a callback that case keeps its behaviour.
            if not (np.isfinite(loss) and np.isfinite(network.params).all()):
                if bar is not None:
                    bar.close()
                handled = [cb._on_non_finite(est, epoch) for cb in callbacks]
                if any(handled):
                    before.restore(est)
                    break
                if not early_stopping:
                    before.restore(est)
                    _diverged(est, epoch)
            est.n_iter_ += 1
            est.loss_ = loss
            est.t_ += n_samples
            est.loss_curve_.append(est.loss_)
            logs = {"loss": epoch_stats["loss"], "score": epoch_stats["score"]}
            if validation is not None:
                logs["val_loss"], logs["val_score"] = _validation_metrics(est, validation)
            logs["learning_rate"] = learning_rate
            logs["epoch_time"] = time.perf_counter() - start
            logs = {k: float(v) for k, v in logs.items()}
            _record(history, logs)
            if bar is not None:
                _close_progress(bar, logs)
            if print_lines:
                print(f"Iteration {est.n_iter_:d}, loss = {est.loss_:.8f}")

            _update_no_improvement_count(est, early_stopping, logs.get("val_score"), print_lines)
            est._optimizer.iteration_ends(est.t_)

            stop = False
            for cb in callbacks:  # every callback sees the epoch, even after a stop
                stop = bool(cb.on_epoch_end(est, epoch, dict(logs))) or stop
            _take_assigned_weights(est, callbacks)
            if stop:
                break

            if est._no_improvement_count > est.n_iter_no_change:
                if early_stopping:
                    msg = (
                        "Validation score did not improve more than "
                        f"tol={est.tol:f} for {est.n_iter_no_change:d} consecutive epochs."
                    )
                else:
                    msg = (
                        f"Training loss did not improve more than tol={est.tol:f}"
                        f" for {est.n_iter_no_change:d} consecutive epochs."
                    )
                if est._optimizer.trigger_stopping(msg, est.verbose):
                    break
                est._no_improvement_count = 0

            if incremental:
                break
            if est.n_iter_ == est.max_iter:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({est.max_iter:d}) reached and "
                    "the optimization hasn't converged yet.",
                    ConvergenceWarning,
                )
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.")
    finally:
        blas_limit.__exit__(None, None, None)
        network.release()

    if early_stopping:
        _restore(network, est._best_params, getattr(est, "_best_running", None))
    if not incremental:
        for cb in callbacks:
            cb.on_train_end(est, dict(logs))
        _take_assigned_weights(est, callbacks)


def _take_assigned_weights(est, callbacks):
    """After the callbacks' hooks: arrays a hook assigned (est.coefs_[0] = W, a Keras
    set_weights or a weight constraint) go into the network, so that training goes on
    from them and coefs_ stays a view of the weights being trained."""
    if callbacks:
        est._sync_params()


def _update_no_improvement_count(est, early_stopping, val_score, print_lines):
    if early_stopping:
        est.validation_scores_.append(val_score)
        if print_lines:
            print(f"Validation score: {est.validation_scores_[-1]:f}")
        last_valid_score = est.validation_scores_[-1]
        if last_valid_score < (est.best_validation_score_ + est.tol):
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if last_valid_score > est.best_validation_score_:
            est.best_validation_score_ = last_valid_score
            est._best_params = est._network.params.copy()
            est._best_running = est._network.running.copy()
    else:
        if est.loss_curve_[-1] > est.best_loss_ - est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if est.loss_curve_[-1] < est.best_loss_:
            est.best_loss_ = est.loss_curve_[-1]


def fit_lbfgs(est, X, y, sample_weight):
    """Full-batch L-BFGS-B through scipy, fed by the compiled loss and gradient."""
    network = est._network
    Y = np.ascontiguousarray(y, dtype=network.dtype)
    alpha = float(est.alpha)

    def loss_grad(packed):
        network.params[:] = packed
        loss, grad = network.loss_and_grad(X, Y, sample_weight, alpha)
        return loss, grad.astype(np.float64)

    iprint = 1 if (est.verbose is True or est.verbose >= 1) else -1
    _begin(est)
    try:
        # L-BFGS-B's own vector work calls BLAS too: one thread keeps it deterministic.
        with blas_single_threaded():
            opt_res = scipy.optimize.minimize(
                loss_grad,
                network.params.astype(np.float64),
                method="L-BFGS-B",
                jac=True,
                options={
                    "maxfun": est.max_fun,
                    "maxiter": est.max_iter,
                    "gtol": est.tol,
                    **_get_additional_lbfgs_options_dict("iprint", iprint),
                },
            )
    finally:
        network.release()
    est.n_iter_ = _check_optimize_result("lbfgs", opt_res, est.max_iter)
    est.loss_ = opt_res.fun
    network.params[:] = opt_res.x
