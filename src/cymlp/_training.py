"""The epoch loop: stopping rules, learning-rate schedules, early stopping, verbose lines.

Python runs once per epoch; each epoch is one call into the compiled engine
(`Network.train_epoch`) with the GIL released. The order of every random draw (validation
split, then one shuffle per epoch) is scikit-learn's, so a seed gives its results.
"""

import warnings

import numpy as np
import scipy.optimize
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ._optim import AdamOptimizer, AdamWOptimizer, RMSpropOptimizer, SGDOptimizer
from ._threads import blas_single_threaded

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


def make_optimizer(est, network):
    n, dtype = network.params.shape[0], network.dtype
    if est.solver == "sgd":
        return SGDOptimizer(
            n,
            dtype,
            est.learning_rate_init,
            est.learning_rate,
            est.momentum,
            est.nesterovs_momentum,
            est.power_t,
        )
    if est.solver == "rmsprop":
        return RMSpropOptimizer(n, dtype, est.learning_rate_init, est.rho, est.epsilon)
    if est.solver == "adamw":
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


def _diverged(est, last_good):
    """Restore the weights from before the epoch whose loss or weights went non-finite."""
    est._network.params[:] = last_good
    raise ValueError(
        "Training diverged: the loss or the weights became non-finite (inf or NaN) in "
        f"epoch {est.n_iter_ + 1}. The weights from the end of the last finite epoch were "
        "kept. Scale the input data (e.g. StandardScaler) or lower learning_rate_init."
    )


def fit_stochastic(est, X, y, sample_weight, incremental):
    """scikit-learn's _fit_stochastic, one engine call per epoch. `y` is 2-D (binarized
    labels for classifiers) and is converted to the compute dtype after the split."""
    network = est._network
    if not incremental or not hasattr(est, "_optimizer"):
        est._optimizer = make_optimizer(est, network)
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    early_stopping = est.early_stopping
    if early_stopping:
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
        if is_classifier(est):
            y_val = est._label_binarizer.inverse_transform(y_val)
    else:
        X_train, y_train, sw_train = X, y, sample_weight
        X_val = y_val = sw_val = None

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

    last_good = np.empty_like(network.params)
    network.reserve(batch_size)
    # BLAS stays at one thread for the whole fit rather than being switched back and forth
    # around every engine call (OpenBLAS threads woken in between can spin beside ours).
    blas_limit = blas_single_threaded()
    blas_limit.__enter__()
    try:
        est.n_iter_ = 0
        for _ in range(est.max_iter):
            if est.shuffle:
                # == sklearn.utils.shuffle(sample_idx, random_state=...): the same draws,
                # without its per-call validation overhead
                est._random_state.shuffle(sample_idx)
            np.copyto(last_good, network.params)
            total = network.train_epoch(
                X_train,
                Y_train,
                sw_train,
                sample_idx if est.shuffle else None,
                batch_size,
                float(est.alpha),
                est._optimizer,
            )
            loss = total / n_samples
            # A non-finite loss or non-finite weights end training at once, keeping the
            # weights of the last finite epoch. With early stopping scikit-learn trains on
            # (the validation score becomes NaN) and restores the best weights at the end
            # (its fix for issue #29504): that case keeps its behaviour.
            if not early_stopping and not (np.isfinite(loss) and np.isfinite(network.params).all()):
                _diverged(est, last_good)
            est.n_iter_ += 1
            est.loss_ = loss
            est.t_ += n_samples
            est.loss_curve_.append(est.loss_)
            if est.verbose:
                print(f"Iteration {est.n_iter_:d}, loss = {est.loss_:.8f}")

            _update_no_improvement_count(est, early_stopping, X_val, y_val, sw_val)
            est._optimizer.iteration_ends(est.t_)

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
        network.params[:] = est._best_params


def _update_no_improvement_count(est, early_stopping, X_val, y_val, sw_val):
    if early_stopping:
        val_score = est._score(X_val, y_val, sample_weight=sw_val)
        est.validation_scores_.append(val_score)
        if est.verbose:
            print(f"Validation score: {est.validation_scores_[-1]:f}")
        last_valid_score = est.validation_scores_[-1]
        if last_valid_score < (est.best_validation_score_ + est.tol):
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if last_valid_score > est.best_validation_score_:
            est.best_validation_score_ = last_valid_score
            est._best_params = est._network.params.copy()
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
