"""Fitted models from and to scikit-learn: `cymlp.from_sklearn` and `estimator.to_sklearn()`.

Both directions copy the parameters (scikit-learn's names; cymlp's own parameters stay at
their defaults when coming from scikit-learn), the weights in their dtype, the classes
(the label binarizer), and every fitted attribute scikit-learn has: n_features_in_,
feature_names_in_, n_layers_, n_outputs_, out_activation_, n_iter_, t_, loss_,
loss_curve_, best_loss_, validation_scores_, best_validation_score_, the stopping counter
and the best weights kept for early stopping. The converted model predicts the same to
rounding, and both can train on (`partial_fit`, `warm_start`).

The optimizer state (SGD's velocities, Adam's moments and step count) is carried over for
the solvers both libraries have, so `partial_fit` continues as the source model would.
scikit-learn keeps it in private classes (`sklearn.neural_network._stochastic_optimizers`);
should a scikit-learn release change them, the state is not transferred (with a warning)
and the next `partial_fit` starts a fresh optimizer, as a `fit` always does.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._engine import Network

if TYPE_CHECKING:
    from ._base import BaseMLP
    from ._classes import MLPClassifier, MLPRegressor

# What scikit-learn's MLP has; the rest of cymlp's choices cannot be represented there.
SKLEARN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
SKLEARN_SOLVERS = ("lbfgs", "sgd", "adam")
SKLEARN_LOSSES = ("squared_error", "poisson")
_ACTIVATION_NAMES = {"sigmoid": "logistic"}
_OUTPUT_ACTIVATIONS = ("softmax", "logistic", "identity", "exp")

# The fitted scalars and lists scikit-learn's MLP leaves behind (where the solver sets
# them): copied both ways when the source has them, and kept in model files (_persistence).
FITTED_SCALARS = (
    "n_features_in_",
    "n_outputs_",
    "n_layers_",
    "out_activation_",
    "n_iter_",
    "t_",
    "loss_",
    "best_loss_",
    "best_validation_score_",
    "_no_improvement_count",
)
FITTED_CURVES = ("loss_curve_", "validation_scores_")


def _sklearn_classes():
    from sklearn.neural_network import MLPClassifier as SkClassifier
    from sklearn.neural_network import MLPRegressor as SkRegressor

    return SkClassifier, SkRegressor


def _copy_fitted_state(source, target):
    """The fitted attributes both libraries share, copied (lists and arrays are new)."""
    for name in FITTED_SCALARS:
        if hasattr(source, name):
            setattr(target, name, getattr(source, name))
    for name in FITTED_CURVES:
        if hasattr(source, name):
            value = getattr(source, name)
            setattr(target, name, None if value is None else list(value))
    if hasattr(source, "feature_names_in_"):
        target.feature_names_in_ = np.array(source.feature_names_in_, copy=True)
    if hasattr(source, "_label_binarizer"):
        target._label_binarizer = copy.deepcopy(source._label_binarizer)
        target.classes_ = target._label_binarizer.classes_


def _pack(arrays, dtype):
    """Flat copy of `arrays` in scikit-learn's packing order (the order given)."""
    return np.concatenate([np.asarray(a, dtype=dtype).ravel() for a in arrays])


def _unpack(flat, shapes):
    """Copies of consecutive pieces of `flat` with the given shapes."""
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(flat[start : start + size].reshape(shape).copy())
        start += size
    return out


def _layer_units(est):
    """The layer widths of a fitted scikit-learn MLP, its weights checked for consistency."""
    coefs, intercepts = list(est.coefs_), list(est.intercepts_)
    if not coefs or len(coefs) != len(intercepts):
        raise ValueError(
            f"The scikit-learn model has {len(coefs)} coefs_ and {len(intercepts)} intercepts_; "
            "they must be as many, at least one."
        )
    units = [np.shape(coefs[0])[0]] + [np.shape(c)[1] for c in coefs]
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        if np.shape(W) != (units[i], units[i + 1]) or np.shape(b) != (units[i + 1],):
            raise ValueError(
                f"The scikit-learn model's coefs_[{i}] {np.shape(W)} and intercepts_[{i}] "
                f"{np.shape(b)} do not chain into a network of layer widths {units}."
            )
    if est.n_layers_ != len(units):
        raise ValueError(f"n_layers_ is {est.n_layers_}, the weights have {len(units)} layers.")
    if getattr(est, "n_features_in_", units[0]) != units[0]:
        raise ValueError(f"n_features_in_ is {est.n_features_in_}, the weights take {units[0]}.")
    return units


# --------------------------------------------------------------------- from scikit-learn
def from_sklearn(estimator: Any) -> MLPClassifier | MLPRegressor:
    """Convert a fitted scikit-learn MLP into the equivalent fitted cymlp estimator.

    The parameters are scikit-learn's (cymlp's own parameters keep their defaults); the
    weights are copied in their dtype (a model trained on float32 data stays float32);
    the classes, feature names, curves and every other fitted attribute are copied. The
    result predicts what `estimator` predicts, to rounding, and can train on: for
    solver 'sgd' and 'adam' the optimizer state (velocities; moments and step count) is
    carried over, so ``partial_fit`` continues exactly as scikit-learn's would (should a
    scikit-learn release store it differently, a fresh optimizer starts, with a warning).
    `estimator` is not modified.

    Parameters
    ----------
    estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
        A fitted scikit-learn MLP.

    Returns
    -------
    converted : cymlp.MLPClassifier or cymlp.MLPRegressor
        The fitted cymlp estimator of the same kind.

    Raises
    ------
    TypeError
        If `estimator` is not a scikit-learn MLPClassifier or MLPRegressor.
    sklearn.exceptions.NotFittedError
        If `estimator` has not been fitted.
    ValueError
        If its fitted weights are inconsistent (shapes that do not chain, an unknown
        output activation).

    See Also
    --------
    MLPClassifier.to_sklearn, MLPRegressor.to_sklearn : The other direction.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.neural_network import MLPClassifier
    >>> import cymlp
    >>> X, y = load_iris(return_X_y=True)
    >>> sk = MLPClassifier(hidden_layer_sizes=(10,), max_iter=2000, random_state=0).fit(X, y)
    >>> clf = cymlp.from_sklearn(sk)
    >>> np.allclose(clf.predict_proba(X), sk.predict_proba(X), rtol=1e-10)
    True
    >>> back = clf.to_sklearn()
    >>> np.array_equal(back.predict(X), sk.predict(X))
    True
    """
    from ._base import BaseMLP
    from ._classes import MLPClassifier, MLPRegressor
    from ._training import make_optimizer

    SkClassifier, SkRegressor = _sklearn_classes()
    cls: type[MLPClassifier] | type[MLPRegressor]
    if isinstance(estimator, BaseMLP):
        raise TypeError(
            f"from_sklearn expects a scikit-learn MLP; got a cymlp {type(estimator).__name__} "
            "(use sklearn.base.clone or copy.deepcopy to copy it)."
        )
    if isinstance(estimator, SkClassifier):
        cls = MLPClassifier
    elif isinstance(estimator, SkRegressor):
        cls = MLPRegressor
    else:
        raise TypeError(
            "from_sklearn expects a fitted sklearn.neural_network.MLPClassifier or "
            f"MLPRegressor; got {type(estimator).__module__}.{type(estimator).__qualname__}."
        )
    check_is_fitted(estimator, ["coefs_", "intercepts_", "n_layers_", "out_activation_"])

    sk_params = estimator.get_params(deep=False)
    names = cls._get_param_names()
    unknown = sorted(name for name in sk_params if name not in names)
    if unknown:
        warnings.warn(
            f"cymlp has no parameters {', '.join(unknown)} (a newer scikit-learn?): they are "
            "dropped.",
            UserWarning,
            stacklevel=2,
        )
    converted = cls(**{k: copy.deepcopy(v) for k, v in sk_params.items() if k in names})
    converted._validate_params()

    units = _layer_units(estimator)
    out_activation = estimator.out_activation_
    if out_activation not in _OUTPUT_ACTIVATIONS:
        raise ValueError(f"Unknown out_activation_ {out_activation!r} of the scikit-learn model.")
    dtype = np.result_type(*estimator.coefs_, *estimator.intercepts_)
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    network = Network(
        units,
        converted.activation,
        out_activation,
        dtype,
        dropout=converted._dropout_rates(len(units) - 2),
        batch_norm=False,
        loss="squared_error",
        huber_delta=1.0,
    )
    for view, value in zip(
        network.coefs + network.intercepts, estimator.coefs_ + estimator.intercepts_
    ):
        view[...] = value
    converted._network = network
    converted._bind_views()
    _copy_fitted_state(estimator, converted)

    best = network.params.copy()
    if hasattr(estimator, "_best_coefs") and hasattr(estimator, "_best_intercepts"):
        packed = _pack(list(estimator._best_coefs) + list(estimator._best_intercepts), dtype)
        if packed.shape == best.shape:
            best = packed
    converted._best_params = best

    sk_optimizer = getattr(estimator, "_optimizer", None)
    if sk_optimizer is not None and converted.solver in ("sgd", "adam"):
        optimizer = make_optimizer(converted, network)
        try:
            _optimizer_from_sklearn(sk_optimizer, optimizer, network.params.shape)
        except (AttributeError, TypeError, ValueError) as exc:
            warnings.warn(
                f"The optimizer state of the scikit-learn model could not be read ({exc}); "
                "the next partial_fit starts a fresh optimizer.",
                UserWarning,
                stacklevel=2,
            )
        else:
            converted._optimizer = optimizer
    return converted


def _optimizer_from_sklearn(sk_optimizer, optimizer, shape):
    if optimizer.kind == "sgd":
        sources = [sk_optimizer.velocities]
    else:
        sources = [sk_optimizer.ms, sk_optimizer.vs]
        optimizer.t = int(sk_optimizer.t)
    for target, source in zip(optimizer.state_arrays(), sources):
        flat = _pack(source, target.dtype)
        if flat.shape != shape:
            raise ValueError(f"{flat.size} optimizer values for {shape[0]} parameters")
        target[...] = flat
    optimizer.learning_rate_init = float(sk_optimizer.learning_rate_init)
    optimizer.learning_rate = float(sk_optimizer.learning_rate)


# ----------------------------------------------------------------------- to scikit-learn
def _differs(value, default):
    if value is default:
        return False
    try:
        return bool(np.any(np.asarray(value) != np.asarray(default)))
    except (TypeError, ValueError):
        return True


def to_sklearn(est: BaseMLP) -> Any:
    """The fitted scikit-learn MLP equivalent to the fitted cymlp estimator `est`
    (see BaseMLP.to_sklearn)."""
    SkClassifier, SkRegressor = _sklearn_classes()
    sk_cls = SkClassifier if hasattr(est, "_label_binarizer") else SkRegressor
    if not hasattr(est, "_network"):
        raise NotFittedError(
            f"This {type(est).__name__} instance is not fitted yet; fit it before converting "
            "it to scikit-learn."
        )
    est._sync_params()
    network = est._network
    params = est.get_params(deep=False)
    sk_names = sk_cls._get_param_names()

    problems = []
    if network.batch_norm:
        problems.append("batch_normalization=True (scikit-learn's MLP has no batch normalization)")
    activation = _ACTIVATION_NAMES.get(network.hidden_activation, network.hidden_activation)
    if activation not in SKLEARN_ACTIVATIONS:
        problems.append(
            f"activation={network.hidden_activation!r} (scikit-learn has "
            f"{', '.join(map(repr, SKLEARN_ACTIVATIONS))})"
        )
    if est.solver not in SKLEARN_SOLVERS:
        problems.append(
            f"solver={est.solver!r} (scikit-learn has {', '.join(map(repr, SKLEARN_SOLVERS))}; "
            "set_params(solver='adam') first to hand the weights over anyway)"
        )
    loss = params.get("loss")
    if sk_cls is SkRegressor and (
        loss not in SKLEARN_LOSSES or ("loss" not in sk_names and loss != "squared_error")
    ):
        problems.append(f"loss={loss!r} (scikit-learn has 'squared_error' and 'poisson')")
    if problems:
        raise ValueError(
            f"This {type(est).__name__} cannot be converted to scikit-learn: it uses "
            + "; ".join(problems)
            + "."
        )

    defaults = {k: p.default for k, p in inspect.signature(type(est)).parameters.items()}
    dropped = [
        f"{name}={value!r}"
        for name, value in params.items()
        if name not in sk_names and name != "loss" and _differs(value, defaults[name])
    ]
    if dropped:
        warnings.warn(
            f"scikit-learn's {sk_cls.__name__} has no parameters {', '.join(dropped)}: they only "
            "act in training (or fix the compute dtype) and are dropped. The converted model "
            "predicts the same; training it further runs without them.",
            UserWarning,
            stacklevel=3,
        )
    sk_params = {name: copy.deepcopy(params[name]) for name in sk_names if name in params}
    sk_params["activation"] = activation
    converted = sk_cls(**sk_params)
    try:
        converted._validate_params()
    except ValueError as exc:
        raise ValueError(
            f"This {type(est).__name__} cannot be converted to this scikit-learn: {exc}"
        ) from None

    converted.coefs_ = [np.array(c, copy=True) for c in est.coefs_]
    converted.intercepts_ = [np.array(b, copy=True) for b in est.intercepts_]
    _copy_fitted_state(est, converted)
    shapes = [c.shape for c in converted.coefs_] + [b.shape for b in converted.intercepts_]
    best = _unpack(getattr(est, "_best_params", network.params), shapes)
    n_layers = len(converted.coefs_)
    converted._best_coefs, converted._best_intercepts = best[:n_layers], best[n_layers:]
    if est.early_stopping and all(
        np.array_equal(a, b) for a, b in zip(best, converted.coefs_ + converted.intercepts_)
    ):
        # scikit-learn's state after an early-stopped fit: it restores the best weights by
        # making them the coefs_ / intercepts_ lists themselves (a warm-started fit then
        # trains them in place); keep that, so that it continues as it would have.
        converted._best_coefs, converted._best_intercepts = (
            converted.coefs_,
            converted.intercepts_,
        )

    optimizer = getattr(est, "_optimizer", None)
    if optimizer is not None and optimizer.kind in ("sgd", "adam"):
        sk_optimizer = _optimizer_to_sklearn(optimizer, converted, shapes)
        if sk_optimizer is not None:
            converted._optimizer = sk_optimizer
    return converted


def _optimizer_to_sklearn(optimizer, converted, shapes):
    try:
        from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer
    except ImportError:  # pragma: no cover - a scikit-learn that moved its optimizers
        warnings.warn(
            "This scikit-learn has no sklearn.neural_network._stochastic_optimizers: the "
            "optimizer state is not transferred (the next partial_fit starts afresh).",
            UserWarning,
            stacklevel=4,
        )
        return None
    params = converted.coefs_ + converted.intercepts_
    if optimizer.kind == "sgd":
        sk_optimizer = SGDOptimizer(
            params,
            optimizer.learning_rate_init,
            optimizer.lr_schedule,
            optimizer.momentum,
            optimizer.nesterov,
            optimizer.power_t,
        )
        sk_optimizer.velocities = _unpack(optimizer.velocity, shapes)
    else:
        sk_optimizer = AdamOptimizer(
            params, optimizer.learning_rate_init, optimizer.beta_1, optimizer.beta_2,
            optimizer.epsilon,
        )  # fmt: skip
        sk_optimizer.t = int(optimizer.t)
        sk_optimizer.ms = _unpack(optimizer.m, shapes)
        sk_optimizer.vs = _unpack(optimizer.v, shapes)
    sk_optimizer.learning_rate = float(optimizer.learning_rate)
    return sk_optimizer
