"""BaseMLP: parameters, validation, initialisation, fit / partial_fit set-up, delegation.

The fitted network lives in `self._network` (a compiled `Network` holding every parameter
in one flat buffer); `coefs_` and `intercepts_` are lists of views into that buffer, laid
out exactly as scikit-learn's. Users may assign new arrays to `coefs_` / `intercepts_` (or
to their items): `_sync_params` copies them into the buffer before the next use.
"""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.base import BaseEstimator, is_regressor
from sklearn.utils import assert_all_finite, check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_consistent_length, validate_data

from . import _convert, _init, _persistence, _summary, _training
from ._engine import Network, _rebuild_network
from ._kernels import all_finite
from ._typing import fit_context

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray
    from typing_extensions import Self

    from ._typing import MatrixLike, PathLike

_STOCHASTIC_SOLVERS = ["sgd", "adam", "adamw", "rmsprop"]
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Hidden activations; 'sigmoid' is another name for 'logistic'.
ACTIVATIONS = (
    "identity", "logistic", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu",
    "softplus",
)  # fmt: skip
INITS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal")


def _check_fits_dtype(values, dtype, name):
    """values (already checked finite) as a contiguous array of the compute dtype, or a
    ValueError where the cast makes some infinite: float64 values beyond float32's range,
    which a float32 network would train on as infinity."""
    with np.errstate(over="ignore"):
        cast = np.ascontiguousarray(values, dtype=dtype)
    if cast.dtype != values.dtype and values.dtype.kind == "f" and not np.isfinite(cast).all():
        raise ValueError(
            f"{name} has values beyond the range of {cast.dtype}, the dtype the network "
            "computes in: scale them, or fit with dtype=np.float64."
        )
    return cast


# The estimators being fitted, by id, with the thread fitting each. Two fits of one
# estimator at once (fit, partial_fit or a warm start, from two threads) would replace
# each other's network, optimizer and history between epochs, and a failing one would
# put back the estimator under the other: the second is refused, before it changes
# anything. (The network's own guard, Network._check_idle, keeps its buffers safe from
# any second caller, a shallow copy's or a signal handler's; this one keeps the
# estimator whole.) An entry left by an interrupted fit belongs to the thread that finds
# it, which goes on.
_fitting: dict[int, int] = {}
_fitting_lock = threading.Lock()


@contextlib.contextmanager
def _fitting_alone(est):
    me = threading.get_ident()
    with _fitting_lock:
        if _fitting.setdefault(id(est), me) != me:
            raise RuntimeError(
                f"This {type(est).__name__} is being fitted in another thread: fit and "
                "partial_fit of one estimator run one at a time (fit a clone instead)."
            )
    try:
        yield
    finally:
        with _fitting_lock:
            _fitting.pop(id(est), None)


class BaseMLP(BaseEstimator, ABC):
    """Shared machinery of MLPClassifier and MLPRegressor. Not for direct use."""

    # Fitted attributes (documented in the estimators' docstrings).
    coefs_: list[NDArray[Any]]
    intercepts_: list[NDArray[Any]]
    loss_: float
    best_loss_: float | None
    loss_curve_: list[float]
    validation_scores_: list[float] | None
    best_validation_score_: float | None
    t_: int
    n_iter_: int
    n_layers_: int
    n_outputs_: int
    out_activation_: str

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", *_STOCHASTIC_SOLVERS})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dtype": "no_validation",  # checked in _requested_dtype
        "init": [None, StrOptions(set(INITS))],
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "batch_normalization": ["boolean"],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "rho": [Interval(Real, 0, 1, closed="left")],
        "callbacks": [list, tuple, None],
    }

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes,
        activation,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        power_t,
        max_iter,
        loss,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        max_fun,
        dtype,
        init,
        dropout,
        batch_normalization,
        weight_decay,
        rho,
        callbacks,
    ):
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.init = init
        self.dropout = dropout
        self.batch_normalization = batch_normalization
        self.weight_decay = weight_decay
        self.rho = rho
        self.callbacks = callbacks

    # ----------------------------------------------------------------- dtypes and input
    def _requested_dtype(self):
        """The `dtype` parameter as a numpy dtype, or None (follow X)."""
        if self.dtype is None:
            return None
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            raise TypeError(
                f"dtype must be None, np.float32 or np.float64, got {self.dtype!r}"
            ) from None
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be None, np.float32 or np.float64, got {dtype}")
        return dtype

    def _check_X_dtype(self, reset):
        """The dtypes validate_data may leave X in: scikit-learn's rule (float32 stays,
        the rest becomes float64) unless a dtype is forced or a network already exists."""
        if not reset and hasattr(self, "_network"):
            return self._network.dtype
        requested = self._requested_dtype()
        return requested if requested is not None else (np.float64, np.float32)

    def _as_network_input(self, X, network=None):
        dtype = (network or self._network).dtype
        if sp.issparse(X):
            if X.format != "csr":  # scipy's conversion trusts the indices: bad ones crashed it
                try:
                    X.check_format(full_check=True)
                except ValueError as exc:
                    raise ValueError(f"X is a malformed {X.format} matrix: {exc}") from None
            return X.tocsr().astype(dtype, copy=False)
        return np.ascontiguousarray(X, dtype=dtype)

    def _prediction_network(self, X):
        """The network to predict X with. With dtype=None, scikit-learn's forward pass
        computes in numpy's promotion of X's and the weights' dtypes (float32 weights and
        float64 X give float64): a float64 copy of a float32 network does the same. A
        forced `dtype` predicts in that dtype."""
        net = self._network
        if self.dtype is not None or net.dtype == np.float64:
            return net
        if np.result_type(X.dtype, net.dtype) == np.float32:
            return net
        return net.astype(np.float64)

    # ------------------------------------------------------------ parameters as views
    def _view_attributes(self, net=None):
        """(attribute name, the network's views) of every parameter attribute, of
        `net` (by default the estimator's network)."""
        net = self._network if net is None else net
        views = [("coefs_", net.coefs), ("intercepts_", net.intercepts)]
        if net.batch_norm:
            views += [
                ("bn_gamma_", net.bn_scales),
                ("bn_beta_", net.bn_shifts),
                ("bn_moving_mean_", net.bn_means),
                ("bn_moving_variance_", net.bn_vars),
            ]
        return views

    def _bind_views(self):
        self._install_network(self._network)

    def _install_network(self, network):
        """Make `network` the estimator's, with its views, in one step: a predict in
        another thread sees the old network with its views or the new one with its own,
        never the new network with the old views (which it would copy into it as
        assigned weights)."""
        views = {name: list(views) for name, views in self._view_attributes(network)}
        self.__dict__.update(_network=network, **views)

    def _sync_params(self):
        """Copy arrays the user assigned to coefs_ / intercepts_ into the flat buffer and
        make the attributes views of it again."""
        for name, mine in self._view_attributes():
            theirs = getattr(self, name)
            if len(theirs) != len(mine):
                raise ValueError(f"{name} has {len(theirs)} arrays, the network has {len(mine)}")
            for i, (view, value) in enumerate(zip(mine, theirs)):
                if value is view:
                    continue
                value = np.asarray(value)
                if value.dtype.kind not in "biuf":  # numpy would cast None to NaN, complex
                    raise TypeError(  # to its real part, datetimes to integers
                        f"{name}[{i}] must hold real numbers, got an array of {value.dtype}"
                    )
                if value.shape != view.shape:
                    raise ValueError(f"{name}[{i}] has shape {value.shape}, expected {view.shape}")
                with np.errstate(over="ignore"):
                    cast = value.astype(view.dtype, copy=False)
                if value.dtype.kind == "f" and (np.isfinite(value) > np.isfinite(cast)).any():
                    raise ValueError(
                        f"{name}[{i}] has values beyond the range of {view.dtype}, the dtype "
                        "the network computes in."
                    )
                view[...] = cast
        self._bind_views()

    def __getstate__(self):
        state = self.__dict__.copy()
        # The views are rebuilt from the network on unpickling, so they stay views.
        if "_network" in state:
            self._sync_params()
            for name, _ in self._view_attributes():
                state.pop(name, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "_network" in state:
            self._bind_views()

    # ------------------------------------------------------------------------ fitting
    def _initialize(self, y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        network = Network(**self._network_config(layer_units, dtype))
        # init=None: scikit-learn's draws exactly; otherwise Keras's scheme (see _init).
        _init.initialize_weights(self.init, self.activation, self._random_state, network)
        if network.batch_norm:  # beta shifts instead: the hidden biases stay unused
            for intercept in network.intercepts[:-1]:
                intercept[...] = 0
        self._install_network(network)
        self._best_params = self._network.params.copy()
        self._best_running = self._network.running.copy()
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self.history_ = {}  # a fresh fit starts a new history (warm_start continues it)
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None
        else:  # lbfgs has no epochs: no history (not one left from an earlier fit)
            self.__dict__.pop("history_", None)

    def _network_config(self, layer_units, dtype):
        """The Network arguments these parameters ask for."""
        return dict(
            layer_units=list(layer_units),
            hidden_activation=self.activation,
            output_activation=self._output_activation(),
            dtype=np.dtype(dtype).str,
            dropout=self._dropout_rates(len(layer_units) - 2),
            batch_norm=bool(self.batch_normalization) and len(layer_units) > 2,
            loss=self.loss if self.loss in ("absolute_error", "huber") else "squared_error",
            huber_delta=float(getattr(self, "huber_delta", 1.0)),
        )

    def _update_network(self, layer_units):
        """warm_start / partial_fit: carry the fitted parameters into a network built for
        the current parameters. The activation, dropout and the regression loss may change
        (as in scikit-learn, whose forward pass reads `activation` anew); what changes the
        parameters' layout or the output head cannot."""
        net = self._network
        wanted = self._network_config(layer_units, net.dtype)
        have = net.config()
        for key, what in (
            ("layer_units", "layers"),
            ("batch_norm", "batch_normalization"),
            ("output_activation", "output activation"),
        ):
            if wanted[key] != have[key]:
                raise ValueError(
                    f"The fitted network's {what} is {have[key]!r}; these data and "
                    f"parameters need {wanted[key]!r}. Use warm_start=False (or a new "
                    "estimator for partial_fit) to start afresh."
                )
        if wanted != have:
            self._install_network(_rebuild_network(wanted, net.params, net.running))

    def _fit(self, X, y, sample_weight, X_val, y_val, sample_weight_val, *, incremental):
        """fit / partial_fit, one at a time per estimator (_fitting_alone). A failure
        before training begins (an error in the data or the parameters, or from a
        callback's on_train_begin) leaves the estimator as it was, a fitted model
        included; once training has begun (_training.has_begun), the work done is kept,
        as the callers document."""
        with _fitting_alone(self):
            return self._fit_undoable(
                X, y, sample_weight, X_val, y_val, sample_weight_val, incremental=incremental
            )

    def _fit_undoable(self, X, y, sample_weight, X_val, y_val, sample_weight_val, *, incremental):
        saved = self.__dict__.copy()
        try:
            return self._fit_checked(
                X, y, sample_weight, X_val, y_val, sample_weight_val, incremental=incremental
            )
        except BaseException:
            if not _training.has_begun(self):
                self.__dict__.clear()
                self.__dict__.update(saved)
            raise
        finally:
            _training.forget_begun(self)

    def _fit_checked(self, X, y, sample_weight, X_val, y_val, sample_weight_val, *, incremental):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        # bool is an Integral, but (True,) is no layer size (scikit-learn raises too)
        if not all(isinstance(h, Integral) and not isinstance(h, bool) for h in hidden_layer_sizes):
            raise TypeError(f"hidden_layer_sizes must be integers, got {hidden_layer_sizes}")
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden_layer_sizes}.")
        if max(hidden_layer_sizes, default=0) >= 2**31:  # no memory holds such a layer
            raise ValueError(
                f"hidden_layer_sizes must be below 2**31 units, got {hidden_layer_sizes}."
            )
        self._requested_dtype()
        if (X_val is None) != (y_val is None):
            raise ValueError("X_val and y_val must be given together (validation data).")
        if sample_weight_val is not None and X_val is None:
            raise ValueError("sample_weight_val needs validation data: X_val and y_val.")
        has_validation = X_val is not None
        _training.check_controls(self, has_validation, incremental)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)

        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self._check_targets(y)
        sample_weight = self._weight_classes(y, sample_weight, incremental)
        self.n_outputs_ = y.shape[1]
        if has_validation:
            # validated as X is (same features, same dtype rule), before anything changes
            X_val = self._validate_data(
                X_val,
                accept_sparse=["csr", "csc"],
                dtype=self._check_X_dtype(first_pass),
                reset=False,
            )
            y_val, Y_val = self._validate_val_targets(y_val)
            check_consistent_length(X_val, Y_val)
            if X_val.shape[0] < 2:  # as the validation_fraction split (R^2 of one row: NaN)
                raise ValueError(
                    f"The validation set is too small: X_val has {X_val.shape[0]} row; it "
                    "needs at least 2."
                )
            if sample_weight_val is not None:
                sample_weight_val = _check_sample_weight(sample_weight_val, X_val)
        layer_units = [X.shape[1]] + hidden_layer_sizes + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)

        if first_pass:
            self._initialize(y, layer_units, X.dtype)
        else:
            self._sync_params()
            self._update_network(layer_units)
        X = self._as_network_input(X)
        dtype = self._network.dtype
        if y.dtype.kind == "f":  # regression targets (a classifier's are 0 / 1)
            _check_fits_dtype(y, dtype, "y")
        if sample_weight is not None:
            sample_weight = _check_fits_dtype(sample_weight, dtype, "sample_weight")
        validation = None
        if has_validation:
            validation = _training.Validation(
                self._as_network_input(X_val),
                y_val,
                _check_fits_dtype(np.ascontiguousarray(Y_val), dtype, "y_val"),
                None
                if sample_weight_val is None
                else _check_fits_dtype(sample_weight_val, dtype, "sample_weight_val"),
            )

        if self.solver in _STOCHASTIC_SOLVERS:
            _training.fit_stochastic(self, X, y, sample_weight, incremental, validation)
        else:
            _training.fit_lbfgs(self, X, y, sample_weight)

        if not (
            np.isfinite(self._network.params).all() and np.isfinite(self._network.running).all()
        ):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may"
                " contain large values and need to be preprocessed."
            )
        return self

    def _dropout_rates(self, n_hidden):
        """The `dropout` parameter as one rate per hidden layer."""
        if np.asarray(self.dropout).dtype.kind not in "iuf":  # not strings, bools, None
            raise TypeError(f"dropout must be a rate or a list of rates, got {self.dropout!r}")
        rates = np.atleast_1d(np.asarray(self.dropout, dtype=np.float64))
        if rates.ndim != 1 or not np.all((rates >= 0) & (rates < 1)):
            raise ValueError(f"dropout rates must lie in [0, 1), got {self.dropout!r}")
        if n_hidden == 0:
            if np.any(rates > 0):
                raise ValueError(
                    f"dropout={self.dropout!r} needs hidden layers; hidden_layer_sizes is empty."
                )
            return []
        if rates.size != 1 and rates.size != n_hidden:
            raise ValueError(
                f"dropout must be one rate or one per hidden layer ({n_hidden}), got "
                f"{self.dropout!r}"
            )
        return [float(r) for r in np.broadcast_to(rates, (n_hidden,))]

    def _validate_input(self, X, y, incremental, reset):
        """X and y checked, y 1-D where it has one column (the classifier goes on to
        its labels)."""
        X, y = self._validate_data(
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=is_regressor(self),
            dtype=self._check_X_dtype(reset),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _validate_data(self, X, y="no_validation", scan=True, **check_params):
        """scikit-learn's validate_data, with the scan of X for NaN and infinity done by
        a compiled kernel in the OpenMP threads (_kernels.all_finite: 6 ms against 11 ms
        for 60000 x 784 float32 values here), or left to the caller (scan=False)."""
        out = validate_data(self, X, y, ensure_all_finite=False, **check_params)
        if scan:
            self._check_finite(out if isinstance(y, str) and y == "no_validation" else out[0])
        return out

    def _check_finite(self, X):
        """Raise scikit-learn's error if X holds NaN or infinity; its own check runs
        where the kernel does not apply or finds such a value. Nothing is scanned under
        scikit-learn's assume_finite, as in scikit-learn (NaN then gives NaN outputs)."""
        if get_config()["assume_finite"]:
            return
        data = X.data if sp.issparse(X) else X
        if all_finite(data) is not True:
            assert_all_finite(data, input_name="X", estimator_name=type(self).__name__)

    def _check_targets(self, y):
        """Hook for target checks that need the 2-D y (the Poisson loss)."""

    @abstractmethod
    def _validate_val_targets(self, y_val):
        """(y_val as the score takes it, the 2-D targets the loss takes) of validation
        targets, checked against the fitted targets."""

    def _weight_classes(self, y, sample_weight, incremental):
        """Hook: the sample weights with the class weights multiplied in (classifier)."""
        return sample_weight

    @fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X: MatrixLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        X_val: MatrixLike | None = None,
        y_val: ArrayLike | None = None,
        sample_weight_val: ArrayLike | None = None,
    ) -> Self:
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {ndarray, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in
            regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        X_val : {ndarray, sparse matrix} of shape (n_val_samples, n_features), \
default=None
            Validation data (Keras's ``validation_data``): its loss and score are
            recorded in `history_` after every epoch ('val_loss', 'val_score'), where
            callbacks can monitor them; with ``early_stopping=True`` they replace the
            `validation_fraction` split (no rows of `X` are held out) for stopping and
            for restoring the best weights. Needs `y_val`; stochastic solvers only.
        y_val : array-like of shape (n_val_samples,) or (n_val_samples, n_outputs), \
default=None
            The targets of `X_val` (classifier: labels among the classes of `y`).
        sample_weight_val : array-like of shape (n_val_samples,), default=None
            Sample weights of `X_val` (`class_weight` is not applied to them, as in
            Keras).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, X_val, y_val, sample_weight_val, incremental=False)

    def save(self, path: PathLike) -> None:
        """Save the fitted estimator to a model file (no pickle inside).

        The file holds the parameters, the weights, the classes and the optimizer state,
        so that `cymlp.load(path)` gives back an estimator that predicts identically and
        can continue training with `partial_fit` (or a `warm_start` fit). The file is
        written to a temporary name in the same folder and then renamed: an existing
        file is never left half-written.

        Parameters
        ----------
        path : str or os.PathLike
            Where to write the file.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator has not been fitted.

        See Also
        --------
        cymlp.load : Read the file back.
        """
        _persistence.save(self, path)

    def summary(self) -> str:
        """A Keras-like table of the fitted network: its layers and parameter counts.

        One row per layer: the input, each hidden dense layer (output shape, activation,
        dropout rate, batch normalization) and the output layer (its output
        activation), with its parameter count; then the total, trainable and
        non-trainable parameter counts (batch normalization's running means and
        variances are non-trainable, as in Keras) and the memory the parameters take
        in the compute dtype.

        Returns
        -------
        table : str
            The table, one line per row: ``print(estimator.summary())`` shows it.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator has not been fitted (the input width is not known yet).
        """
        return _summary.summary(self)

    def to_sklearn(self) -> Any:
        """The equivalent fitted scikit-learn MLP, to serve or train on in scikit-learn.

        A :class:`sklearn.neural_network.MLPClassifier` or ``MLPRegressor`` with this
        estimator's scikit-learn parameters ('sigmoid' becomes 'logistic'), a copy of
        its weights in their dtype, its classes and its fitted attributes (curves,
        iteration and sample counts, the stopping counter, the best weights). It
        predicts what this estimator predicts, to rounding. For solver 'sgd' and
        'adam' the optimizer state goes along, so scikit-learn's ``partial_fit``
        continues the training. ``cymlp.from_sklearn`` converts back.

        Returns
        -------
        estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
            The fitted scikit-learn estimator; this one is not modified.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator has not been fitted.
        ValueError
            If the model uses what scikit-learn's MLP cannot represent: batch
            normalization, an activation other than 'identity', 'logistic' ('sigmoid'),
            'tanh' and 'relu', the 'absolute_error' or 'huber' loss, or solver 'adamw'
            or 'rmsprop' (``set_params(solver='adam')`` first hands the weights over
            anyway). The message names the problem.

        Warns
        -----
        UserWarning
            When cymlp-only parameters that act only in training (dropout, init,
            class_weight, callbacks, weight_decay, rho) or the `dtype` parameter are
            set: they are dropped.
        """
        return _convert.to_sklearn(self)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic"
                f" optimizers. {self.solver} is not stochastic."
            )
        return True

    # --------------------------------------------------------------------- prediction
    def _forward_pass_fast(self, X, check_input=True):
        """The output layer's activations for X. Dense X is not scanned for NaN and
        infinity up front: the network watches the first layer's products, which such a
        value always makes NaN or infinite (Network.predict_watched), while they are in
        cache, instead of reading X a second time (predicting 60000 x 784 float32 rows:
        the scan took 6 ms of 110). Only where it sees one is X scanned, for scikit-learn's
        error, or to find it finite (the products overflowed: the outputs stand)."""
        if check_input:
            X = self._validate_data(X, accept_sparse=["csr", "csc"], reset=False, scan=False)
            if sp.issparse(X):  # its stored values only: a short scan
                self._check_finite(X)
        self._sync_params()
        network = self._prediction_network(X)
        X = self._as_network_input(X, network)
        outputs, nonfinite = network.predict_watched(X)
        if check_input and nonfinite:
            # the values the network saw: a float64 value beyond float32's range is
            # infinite in a float32 network
            self._check_finite(X)
        return outputs

    def _predict(self, X, check_input=True):
        return self._decode(self._forward_pass_fast(X, check_input=check_input))

    @abstractmethod
    def _decode(self, outputs):
        """The predictions from the output layer's activations."""

    def _score_with_function(self, X, y, sample_weight, score_function, outputs=None):
        """Score without input validation (used for early stopping and validation data);
        `outputs`: the output layer's activations for X when already computed."""
        if outputs is None:
            y_pred = self._predict(X, check_input=False)
        else:
            y_pred = self._decode(outputs)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
