"""MLPClassifier and MLPRegressor: target handling, output heads and scoring."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import check_array, check_is_fitted

from ._base import BaseMLP
from ._typing import available_if, fit_context

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike, NDArray
    from typing_extensions import Self

    from ._typing import (
        Activation,
        Init,
        LayerSizes,
        LearningRate,
        MatrixLike,
        RandomStateLike,
        RegressionLoss,
        Solver,
    )
    from .callbacks import Callback

_COMMON_PARAMETERS = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of units of the ith hidden layer; ``()`` gives a
        network without hidden layers (a linear / logistic model).
    activation : {'identity', 'logistic', 'sigmoid', 'tanh', 'relu', 'leaky_relu', \
'elu', 'gelu', 'silu', 'softplus'}, default='relu'
        Activation of the hidden layers. 'sigmoid' is another name for 'logistic';
        'leaky_relu' has slope 0.01 below zero; 'gelu' is the exact (erf) form.
    solver : {'lbfgs', 'sgd', 'adam', 'adamw', 'rmsprop'}, default='adam'
        Weight optimizer: L-BFGS-B (full batch), SGD with momentum, Adam, Adam with
        decoupled weight decay (`weight_decay`), or RMSprop (`rho`).
    alpha : float, default=0.0001
        Strength of the L2 penalty, divided by the (weighted) batch size.
    batch_size : int or 'auto', default='auto'
        Mini-batch size; 'auto' is ``min(200, n_samples)``. Unused by lbfgs.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        SGD step-size schedule.
    learning_rate_init : float, default=0.001
        Initial step size (sgd and adam).
    power_t : float, default=0.5
        Exponent of the 'invscaling' schedule.
    max_iter : int, default=200
        Maximum number of epochs (lbfgs: iterations).
    shuffle : bool, default=True
        Shuffle the rows every epoch (sgd and adam).
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the validation split and the shuffles; the same seed gives
        scikit-learn's numbers.
    tol : float, default=1e-4
        Improvement below which an epoch counts as no progress.
    verbose : bool or int, default=False
        True / 1 prints the loss after every epoch, as scikit-learn does; 2 shows a
        live progress bar per epoch (needs tqdm) with the loss, the validation
        metrics and the time left. (Keras numbers these two the other way round.)
    warm_start : bool, default=False
        Start `fit` from the previous solution.
    momentum : float, default=0.9
        SGD momentum.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum (sgd with momentum > 0).
    early_stopping : bool, default=False
        Hold out `validation_fraction` of the data and stop when its score stalls; the
        best weights are restored at the end.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates of the first and second moment estimates.
    epsilon : float, default=1e-8
        Adam's numerical-stability constant.
    n_iter_no_change : int, default=10
        Epochs without progress (by `tol`) before stopping (sgd and adam).
    max_fun : int, default=15000
        Maximum number of loss evaluations (lbfgs).
    dtype : {None, numpy.float32, numpy.float64}, default=None
        Compute dtype. None follows X as scikit-learn does (float32 stays float32, the
        rest becomes float64); numpy.float32 trains float64 data at float32 speed.
    init : {None, 'glorot_uniform', 'glorot_normal', 'he_uniform', 'he_normal', \
'lecun_normal'}, default=None
        Weight initialisation. None is scikit-learn's scheme (uniform weights and
        biases); the others are Keras's, with zero biases.
    dropout : float or sequence of float, default=0.0
        Dropout rate in [0, 1) for every hidden layer, or one rate per hidden layer.
        Inverted dropout, in training only: prediction is deterministic. Masks come
        from a counter-based generator keyed by a seed drawn once per fit from
        `random_state` and by (epoch, row, unit), so they do not depend on the number
        of threads. Not available with solver='lbfgs'.
    batch_normalization : bool, default=False
        Make every hidden layer dense (without bias) -> batch normalization ->
        activation, as Keras's ``BatchNormalization`` (momentum 0.99, epsilon 1e-3):
        batch statistics in training, running statistics in prediction. The batch
        statistics ignore sample weights, and `alpha` does not penalise the learned
        scales and shifts. The hidden `intercepts_` then stay zero. Stochastic
        solvers only.
    weight_decay : float, default=0.01
        Decoupled weight decay of solver='adamw': every step also subtracts
        ``learning_rate * weight_decay * W`` from the weights (not the biases).
    rho : float, default=0.9
        Decay rate of the squared-gradient average of solver='rmsprop'.
    callbacks : list of Callback, default=None
        Objects from :mod:`cymlp.callbacks` called at the start and the end of
        training and around every epoch (early stopping, learning-rate schedules,
        checkpoints, TerminateOnNaN); they see the epoch's `history_` entries.
        scikit-learn's own stopping rule (`tol`, `n_iter_no_change`) keeps running
        beside them. Monitoring a 'val_*' quantity needs validation data (`X_val` in
        `fit`, or `early_stopping`). Stochastic solvers only.
"""

_COMMON_ATTRIBUTES = """
    loss_ : float
        The loss after the last epoch (training objective, L2 term included).
    best_loss_ : float or None
        The smallest training loss reached (None with early stopping).
    loss_curve_ : list of float
        The loss after every epoch (sgd and adam).
    validation_scores_ : list of float or None
        Score on the validation data (the held-out `validation_fraction`, or `X_val`)
        after every epoch (early stopping only).
    best_validation_score_ : float or None
        Best of `validation_scores_`.
    history_ : dict of str to list of float
        Per-epoch records (sgd, adam, adamw, rmsprop), as Keras's ``History``: an
        epoch's number is its index in these lists, which continue across `warm_start`
        fits and `partial_fit` calls (a fresh fit starts a new history). 'loss': the
        training data loss without the L2 term, the row-weighted mean over the epoch's
        mini-batches (so it compares with 'val_loss'; `loss_curve_` keeps
        scikit-learn's definition, with the L2 term); 'score': the training accuracy
        (classifier) or R² (regressor) of each mini-batch's predictions before its
        step, accumulated over the epoch, weighted by the training weights
        (`sample_weight` times the classifier's `class_weight`, as the loss is);
        'val_loss', 'val_score': the same on the
        validation data (`X_val`, or the `early_stopping` split) at the end of the
        epoch, when there is any (NaN for epochs without it); 'learning_rate': the
        base step size used in the epoch (before Adam's bias correction);
        'epoch_time': seconds.
    t_ : int
        Training samples seen.
    coefs_ : list of ndarray of shape (fan_in, fan_out)
        Weight matrices, views of the network's flat parameter buffer.
    intercepts_ : list of ndarray of shape (fan_out,)
        Bias vectors, views of the same buffer.
    bn_gamma_, bn_beta_ : list of ndarray of shape (units,)
        With batch_normalization=True: each hidden layer's learned scale and shift
        (views of the same buffer; `alpha` does not penalise them).
    bn_moving_mean_, bn_moving_variance_ : list of ndarray of shape (units,)
        With batch_normalization=True: each hidden layer's running statistics, used
        in prediction.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen during fit, when X has string column names.
    n_iter_ : int
        Epochs run (lbfgs: iterations).
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of output units.
    out_activation_ : str
        Output activation: 'softmax', 'logistic', 'identity' or 'exp'.
"""


def _one_hot(codes, n_classes):
    """LabelBinarizer's transform, as bool, of labels given by their index in classes_:
    one column per class, or a single column (the second class) for two classes."""
    if n_classes == 2:
        return (codes == 1).reshape(-1, 1)
    Y = np.zeros((codes.shape[0], n_classes), dtype=bool)
    Y[np.arange(codes.shape[0]), codes] = True
    return Y


class MLPClassifier(ClassifierMixin, BaseMLP):
    __doc__ = f"""Multi-layer perceptron classifier with a compiled training engine.

    A drop-in for :class:`sklearn.neural_network.MLPClassifier`: the same parameters,
    attributes and results, trained by typed Cython kernels over BLAS. Multiclass targets
    get a softmax output and log-loss; binary and multilabel targets get logistic outputs
    and binary log-loss.

    Parameters
    ----------
    {_COMMON_PARAMETERS}    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, multiplied into `sample_weight` of the training rows
        in `fit` and `partial_fit` (explicit `X_val` keeps `sample_weight_val` as
        given, as in Keras; the rows early stopping holds out of `X` keep their class
        weights, so that validation score is weighted too): a dict
        ``{{class: weight}}`` (finite numbers >= 0; missing classes weigh 1; a key
        that is not a class raises ValueError) or 'balanced',
        ``n_samples / (n_classes * bincount(y))`` computed from the `y` given to
        `fit` (the counts weighted by `sample_weight` when given, as in
        scikit-learn's ``compute_class_weight``). As in scikit-learn's
        SGDClassifier, 'balanced' raises in `partial_fit` (one call's `y` does not
        give the class frequencies: pass a dict computed once instead). Not
        supported for multilabel targets (ValueError).

    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels.
    {_COMMON_ATTRIBUTES}
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from cymlp import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(20,), max_iter=500, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        hidden_layer_sizes: LayerSizes = (100,),
        activation: Activation = "relu",
        *,
        solver: Solver = "adam",
        alpha: float = 0.0001,
        batch_size: int | Literal["auto"] = "auto",
        learning_rate: LearningRate = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: RandomStateLike = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int | float = 10,
        max_fun: int = 15000,
        dtype: DTypeLike | None = None,
        init: Init | None = None,
        dropout: float | Sequence[float] = 0.0,
        batch_normalization: bool = False,
        weight_decay: float = 0.01,
        rho: float = 0.9,
        class_weight: dict[Any, float] | Literal["balanced"] | None = None,
        callbacks: Sequence[Callback] | None = None,
    ) -> None:
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss="log_loss",
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dtype=dtype,
            init=init,
            dropout=dropout,
            batch_normalization=batch_normalization,
            weight_decay=weight_decay,
            rho=rho,
            callbacks=callbacks,
        )
        self.class_weight = class_weight

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _weight_classes(self, y, sample_weight, incremental):
        """`sample_weight` times the weight of each row's class (`y`: the binarized 2-D
        targets); a new array when `sample_weight` is None."""
        if self.class_weight is None:
            return sample_weight
        if self._label_binarizer.y_type_.startswith("multilabel"):
            raise ValueError(
                "class_weight is not supported for multilabel targets (a row has several "
                "classes); pass sample_weight instead."
            )
        if isinstance(self.class_weight, str) and incremental:
            # scikit-learn's rule (SGDClassifier): one call's y is not the class balance
            raise ValueError(
                "class_weight='balanced' is not supported for partial_fit: one batch "
                "does not give the class frequencies. Compute the weights once with "
                "sklearn.utils.class_weight.compute_class_weight('balanced', "
                "classes=classes, y=y) on (a large enough sample of) the whole training "
                "target and pass them as a dict."
            )
        # the class index of every row: binary targets have one column (1 = classes_[1])
        index = y[:, 0].astype(np.intp) if y.shape[1] == 1 else np.argmax(y, axis=1)
        classes = self.classes_
        if isinstance(self.class_weight, str):
            # scikit-learn's 'balanced' rule, n / (n_classes * count), with the counts
            # weighted by sample_weight (compute_class_weight takes sample_weight only
            # in recent scikit-learn releases)
            row_weight = np.ones(len(index)) if sample_weight is None else sample_weight
            counts = np.bincount(index, weights=row_weight, minlength=len(classes))
            # (a class whose rows all weigh zero keeps weight 1: its rows stay at zero)
            present = counts > 0
            weights = np.ones(len(classes))
            weights[present] = row_weight.sum() / (len(classes) * counts[present])
        else:
            known = set(classes.tolist())
            unknown = [k for k in self.class_weight if k not in known]
            if unknown:
                raise ValueError(
                    f"class_weight has keys {unknown} that are not classes; the classes "
                    f"are {classes.tolist()}."
                )
            for label, value in self.class_weight.items():
                if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
                    raise TypeError(
                        f"class_weight[{label!r}] must be a number, got {value!r} of type "
                        f"{type(value).__name__}."
                    )
                if not (np.isfinite(value) and value >= 0):
                    raise ValueError(
                        f"class_weight[{label!r}] must be a finite number >= 0, got {value!r}."
                    )
            weights = np.array([self.class_weight.get(c, 1.0) for c in classes.tolist()])
        row_weights = np.asarray(weights, dtype=np.float64)[index]
        if not np.any(row_weights):
            raise ValueError(
                f"class_weight={self.class_weight!r} weighs every training row 0: give "
                "at least one class present in y a non-zero weight."
            )
        return row_weights if sample_weight is None else sample_weight * row_weights

    def _validate_input(self, X, y, incremental, reset):
        X, y = super()._validate_input(X, y, incremental, reset)
        # integer labels (the common case) take one np.unique: the binarizer's type
        # checks and its own unique calls took 9 ms of a 60000-row fit
        integer = y.ndim == 1 and y.dtype.kind in "iub" and y.size > 0
        if integer:
            classes, codes = np.unique(y, return_inverse=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(classes if integer else y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = classes if integer else unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, "
                        f"`y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        # bool keeps the targets small until the engine converts them to the compute dtype
        if integer and len(self.classes_) >= 2:
            return X, _one_hot(np.searchsorted(self.classes_, classes)[codes], len(self.classes_))
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    def predict(self, X: MatrixLike) -> NDArray[Any]:
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _decode(self, outputs):
        """The predicted labels from the output layer's activations."""
        if self.n_outputs_ == 1:
            outputs = outputs.ravel()
        return self._label_binarizer.inverse_transform(outputs)

    def _score(self, X, y, sample_weight=None, outputs=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score, outputs)

    def _validate_val_targets(self, y_val):
        y_val = check_array(y_val, ensure_2d=False, dtype=None, input_name="y_val")
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val, warn=True)
        if self._label_binarizer.y_type_.startswith("multilabel"):
            if y_val.ndim != 2 or y_val.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y_val must be a label indicator matrix with {len(self.classes_)} "
                    f"columns, as y; got shape {y_val.shape}."
                )
            if not np.isin(y_val, (0, 1)).all():
                raise ValueError(
                    "y_val must be a label indicator matrix of 0s and 1s, as y; got the "
                    f"values {np.unique(y_val)[:10].tolist()}."
                )
        else:
            unknown = np.setdiff1d(unique_labels(y_val), self.classes_)
            if len(unknown):
                raise ValueError(
                    f"y_val has labels {unknown.tolist()} that are not among the classes "
                    f"{self.classes_.tolist()}."
                )
        return y_val, self._label_binarizer.transform(y_val)

    def score(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Accuracy of the predictions for `X`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Test samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True labels of `X`.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Share of the samples whose predicted class is right (multilabel targets:
            whose every label is right), weighted by `sample_weight`.
        """
        return super().score(X, y, sample_weight=sample_weight)

    @available_if(lambda est: est._check_solver())
    @fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self,
        X: MatrixLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        classes: ArrayLike | None = None,
        *,
        X_val: MatrixLike | None = None,
        y_val: ArrayLike | None = None,
        sample_weight_val: ArrayLike | None = None,
    ) -> Self:
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit; required on the first call.
        X_val : {array-like, sparse matrix} of shape (n_val_samples, n_features), \
default=None
            Validation data: its loss and score are recorded in `history_` for this
            epoch ('val_loss', 'val_score'). Needs `y_val`.
        y_val : array-like of shape (n_val_samples,) or (n_val_samples, n_classes), \
default=None
            The labels of `X_val` (among `classes`; multilabel: an indicator matrix).
        sample_weight_val : array-like of shape (n_val_samples,), default=None
            Sample weights of `X_val`.

        Returns
        -------
        self : object
            The updated estimator.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight, X_val, y_val, sample_weight_val, incremental=True)

    def predict_log_proba(self, X: MatrixLike) -> NDArray[np.floating[Any]]:
        """Log of the probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X: MatrixLike) -> NDArray[np.floating[Any]]:
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            Probability of each class, in the order of `classes_`.
        """
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, BaseMLP):
    __doc__ = f"""Multi-layer perceptron regressor with a compiled training engine.

    A drop-in for :class:`sklearn.neural_network.MLPRegressor`: identity output with
    half squared error, or exponential output with half Poisson deviance.

    Parameters
    ----------
    loss : {{'squared_error', 'poisson', 'absolute_error', 'huber'}}, \
default='squared_error'
        The loss; 'poisson' needs non-negative targets. 'absolute_error' and 'huber'
        are robust to outliers in `y`.
    {_COMMON_PARAMETERS}    huber_delta : float, default=1.0
        Threshold of the 'huber' loss: squared below it, linear above.

    Attributes
    ----------
    {_COMMON_ATTRIBUTES}
    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from cymlp import MLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=10, noise=1.0, random_state=0)
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=500,
    ...                    random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson", "absolute_error", "huber"})],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        loss: RegressionLoss = "squared_error",
        hidden_layer_sizes: LayerSizes = (100,),
        activation: Activation = "relu",
        *,
        solver: Solver = "adam",
        alpha: float = 0.0001,
        batch_size: int | Literal["auto"] = "auto",
        learning_rate: LearningRate = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: RandomStateLike = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int | float = 10,
        max_fun: int = 15000,
        dtype: DTypeLike | None = None,
        init: Init | None = None,
        dropout: float | Sequence[float] = 0.0,
        batch_normalization: bool = False,
        weight_decay: float = 0.01,
        rho: float = 0.9,
        huber_delta: float = 1.0,
        callbacks: Sequence[Callback] | None = None,
    ) -> None:
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            loss=loss,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dtype=dtype,
            init=init,
            dropout=dropout,
            batch_normalization=batch_normalization,
            weight_decay=weight_decay,
            rho=rho,
            callbacks=callbacks,
        )
        self.huber_delta = huber_delta

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _check_targets(self, y):
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' requires non-negative targets y.")

    def predict(self, X: MatrixLike) -> NDArray[Any]:
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        check_is_fitted(self)
        return self._predict(X)

    def _decode(self, outputs):
        """The predictions from the output layer's activations."""
        return outputs.ravel() if outputs.shape[1] == 1 else outputs

    def _score(self, X, y, sample_weight=None, outputs=None):
        return self._score_with_function(X, y, sample_weight, r2_score, outputs)

    def _validate_val_targets(self, y_val):
        y_val = check_array(y_val, ensure_2d=False, dtype="numeric", input_name="y_val")
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = column_or_1d(y_val, warn=True)
        Y_val = y_val.reshape(-1, 1) if y_val.ndim == 1 else y_val
        if Y_val.ndim != 2 or Y_val.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y_val has {Y_val.shape[1] if Y_val.ndim == 2 else Y_val.shape} outputs; "
                f"y has {self.n_outputs_}."
            )
        self._check_targets(Y_val)
        return y_val, Y_val

    def score(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Coefficient of determination (R²) of the predictions for `X`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Test samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True values for `X`.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            R² of ``self.predict(X)`` against `y`: 1 is a perfect fit, 0 is what
            always predicting the mean of `y` scores, and it can be negative. With
            several outputs, the mean of their R².
        """
        return super().score(X, y, sample_weight=sample_weight)

    # scikit-learn's quirk, kept: the lambda returns the bound method (always truthy), so
    # MLPRegressor.partial_fit exists even with solver='lbfgs' (and runs a full lbfgs fit).
    @available_if(lambda est: est._check_solver)
    @fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self,
        X: MatrixLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        X_val: MatrixLike | None = None,
        y_val: ArrayLike | None = None,
        sample_weight_val: ArrayLike | None = None,
    ) -> Self:
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        X_val : {array-like, sparse matrix} of shape (n_val_samples, n_features), \
default=None
            Validation data: its loss and score are recorded in `history_` for this
            epoch ('val_loss', 'val_score'). Needs `y_val`.
        y_val : array-like of shape (n_val_samples,) or (n_val_samples, n_outputs), \
default=None
            The targets of `X_val`.
        sample_weight_val : array-like of shape (n_val_samples,), default=None
            Sample weights of `X_val`.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, y, sample_weight, X_val, y_val, sample_weight_val, incremental=True)
