"""ONNX export of cymlp estimators, through skl2onnx.

Importing this module registers converters for `cymlp.MLPClassifier` and
`cymlp.MLPRegressor` with skl2onnx (parsers, shape calculators and converters), so that
``skl2onnx.to_onnx(estimator, X_sample)`` converts a fitted cymlp estimator, alone or
inside a scikit-learn pipeline, like any scikit-learn model::

    import cymlp.onnx  # noqa: F401  (registers the converters)
    from skl2onnx import to_onnx

    onx = to_onnx(estimator, X[:1].astype(np.float32))

Every fitted configuration converts:

- hidden activations: identity, logistic / sigmoid (Sigmoid), tanh, relu, leaky_relu
  (LeakyRelu, alpha 0.01), elu (Elu, alpha 1), gelu (Gelu, exact erf form, at target
  opset 20 and above; below that, the same formula from Erf), silu (x * Sigmoid(x)),
  softplus (Softplus). onnxruntime has LeakyRelu, Elu, Softplus, Gelu and Erf for float
  only, so double graphs build those from elementary operators (see `_activation`);
- batch normalization: the running statistics are folded into each hidden layer's
  weights and bias (in float64, as cymlp's own prediction does), so the graph has one
  Gemm per layer;
- output heads: softmax (multiclass), logistic (binary, multilabel), identity
  (regression), exp (``loss='poisson'``);
- classifiers give two outputs, as skl2onnx's scikit-learn classifiers do: ``label``
  (shape (N,); (N, n_labels) of 0/1 for multilabel targets) and ``probabilities``
  (shape (N, n_classes), the columns of ``predict_proba``). With skl2onnx's default
  ``zipmap`` option the probabilities become a list of {class: probability} maps; pass
  ``options={"zipmap": False}`` to keep the matrix. Options ``nocl`` (class indices
  instead of labels) and ``output_class_labels`` work as for scikit-learn classifiers;
- regressors give one output, ``variable``, of shape (N, n_outputs): (N, 1) for a single
  target, whose ravel is ``predict``'s (N,) (the convention of skl2onnx's regressors).

The graph computes in the float type of its input: a float32 ``X_sample`` gives a float
graph (the usual for serving; outputs agree with cymlp's to float32 rounding, ~1e-6
relative), a float64 one a double graph (cymlp's float64 numbers to rounding, ~1e-12;
gelu to ~1e-7, its erf being evaluated in float). Integer and bool inputs are cast to
float. The graph uses skl2onnx's target opset (by default its latest tested one: 22 for
skl2onnx 1.20); every opset from 9 to 22 gives the same outputs (tested with onnxruntime
1.32). Class labels: integer and bool classes (and float
classes holding integers) come out as int64, strings as strings.

What cannot be converted raises: an unfitted estimator (`NotFittedError`), float class
labels that are not integers, fewer than two classes, and an activation this module does
not know (`NotImplementedError`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

try:
    from onnx import TensorProto
    from skl2onnx import update_registered_converter
    from skl2onnx._parse import _parse_sklearn_classifier
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int32TensorType,
        Int64TensorType,
        StringTensorType,
    )
    from skl2onnx.common.utils import (
        check_input_and_output_numbers,
        check_input_and_output_types,
    )
except ImportError as exc:  # pragma: no cover - the extra is installed where tested
    raise ImportError(
        "cymlp.onnx needs skl2onnx (and onnxruntime to run the models): pip install 'cymlp[onnx]'"
    ) from exc

from ._classes import MLPClassifier, MLPRegressor

__all__ = ["CLASSIFIER_ALIAS", "REGRESSOR_ALIAS", "register"]

CLASSIFIER_ALIAS = "CymlpMLPClassifier"
REGRESSOR_ALIAS = "CymlpMLPRegressor"

# Batch normalization's epsilon: BN_EPSILON in _engine.pyx (Keras's default).
_BN_EPSILON = 1e-3
# The first opset with the Gelu operator; below it gelu is built from Erf.
_GELU_OPSET = 20
_INPUT_TYPES = [
    FloatTensorType,
    DoubleTensorType,
    Int64TensorType,
    Int32TensorType,
    BooleanTensorType,
]


# ----------------------------------------------------------------------------- network
def _compute_type(input_type: Any) -> tuple[int, type, Any]:
    """(ONNX element type, numpy dtype, tensor type class) the graph computes in: double
    for a double input, float for anything else."""
    if isinstance(input_type, DoubleTensorType):
        return TensorProto.DOUBLE, np.float64, DoubleTensorType
    return TensorProto.FLOAT, np.float32, FloatTensorType


def _check_fitted(model: Any) -> None:
    check_is_fitted(model)
    # The converters read the parameter attributes: copy any the user assigned into the
    # network (with predict's shape checks), as predict does.
    model._sync_params()


def _layers(model: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W, b) of every layer in float64, with batch normalization folded in: a hidden
    layer computes act(s * (X W - mean) + beta) with s = gamma / sqrt(var + eps), which is
    act(X (W s) + (beta - s * mean)) (Network._folded_params does the same)."""
    coefs = [np.asarray(w, dtype=np.float64) for w in model.coefs_]
    intercepts = [np.asarray(b, dtype=np.float64) for b in model.intercepts_]
    if model._network.batch_norm:  # the fitted network's, whatever set_params said since
        for i in range(len(coefs) - 1):
            gamma = np.asarray(model.bn_gamma_[i], dtype=np.float64)
            var = np.asarray(model.bn_moving_variance_[i], dtype=np.float64)
            mean = np.asarray(model.bn_moving_mean_[i], dtype=np.float64)
            s = gamma / np.sqrt(var + _BN_EPSILON)
            coefs[i] = coefs[i] * s
            intercepts[i] = np.asarray(model.bn_beta_[i], dtype=np.float64) - s * mean
    return list(zip(coefs, intercepts))


def _constant(scope: Any, container: Any, name: str, proto: int, value: Any) -> str:
    """An initializer holding `value` (already in the compute dtype); its name."""
    unique = scope.get_unique_variable_name(name)
    value = np.asarray(value)
    container.add_initializer(unique, proto, list(value.shape), value.ravel())
    return unique


def _node(scope: Any, container: Any, op: str, inputs: list[str], **attrs: Any) -> str:
    """One node with a fresh output name; the output's name."""
    out = scope.get_unique_variable_name(op.lower())
    container.add_node(op, inputs, out, name=scope.get_unique_operator_name(op), **attrs)
    return out


def _activation(
    scope: Any, container: Any, activation: str, x: str, proto: int, dtype: type
) -> str:
    """The nodes applying `activation` to tensor `x`; the result's name.

    Float graphs use ONNX's operators (LeakyRelu, Elu, Softplus, Gelu). onnxruntime
    implements those only for float, so double graphs build them from operators it has
    in double, with cymlp's formulas: leaky_relu = max(x, 0.01 x), elu = relu(x) +
    exp(min(x, 0)) - 1, softplus = relu(x) + log(1 + exp(-|x|)). Gelu is
    0.5 x (1 + erf(x / sqrt(2))); Erf exists in onnxruntime for float only, so a double
    graph (or a target opset below 20, which has no Gelu) evaluates erf in float
    (error ~1e-7 of the activation).
    """
    double = proto == TensorProto.DOUBLE

    def node(op: str, *inputs: str, **attrs: Any) -> str:
        return _node(scope, container, op, list(inputs), **attrs)

    def const(name: str, value: float) -> str:
        return _constant(scope, container, name, proto, dtype(value))

    if activation == "identity":
        return x
    simple = {
        "logistic": "Sigmoid",
        "sigmoid": "Sigmoid",
        "tanh": "Tanh",
        "relu": "Relu",
        "exp": "Exp",
    }
    if activation in simple:
        return node(simple[activation], x)
    if activation == "softmax":
        return node("Softmax", x, axis=1)
    if activation == "silu":
        return node("Mul", x, node("Sigmoid", x))
    if activation == "leaky_relu":
        if double:
            return node("Max", x, node("Mul", x, const("slope", 0.01)))
        return node("LeakyRelu", x, alpha=0.01)
    if activation == "elu":
        if double:
            below = node("Sub", node("Exp", node("Min", x, const("zero", 0))), const("one", 1))
            return node("Add", node("Relu", x), below)
        return node("Elu", x, alpha=1.0)
    if activation == "softplus":
        if double:
            tail = node(
                "Log", node("Add", const("one", 1), node("Exp", node("Neg", node("Abs", x))))
            )
            return node("Add", node("Relu", x), tail)
        return node("Softplus", x)
    if activation == "gelu":
        if not double and container.target_opset >= _GELU_OPSET:
            return node("Gelu", x)  # approximate="none": the erf form
        z = node("Mul", x, const("rsqrt2", np.sqrt(0.5)))
        if double:
            erf = node("Cast", node("Erf", node("Cast", z, to=TensorProto.FLOAT)), to=proto)
        else:
            erf = node("Erf", z)
        return node("Mul", x, node("Mul", node("Add", erf, const("one", 1)), const("half", 0.5)))
    raise NotImplementedError(
        f"cymlp.onnx cannot express the activation {activation!r} in ONNX (known: "
        "identity, logistic, sigmoid, tanh, relu, leaky_relu, elu, gelu, silu, softplus; "
        "output heads softmax, logistic, identity, exp)"
    )


def _network(scope: Any, operator: Any, container: Any) -> tuple[str, int, type]:
    """The nodes of the forward pass (output activation included); (the output's name,
    the ONNX element type and numpy dtype it computes in)."""
    model = operator.raw_operator
    proto, dtype, tensor_type = _compute_type(operator.inputs[0].type)
    x = operator.inputs[0].full_name
    if not isinstance(operator.inputs[0].type, tensor_type):  # integer or bool input
        x = _node(scope, container, "Cast", [x], to=proto)
    layers = _layers(model)
    for i, (w, b) in enumerate(layers):
        wname = _constant(scope, container, "coefficient", proto, w.astype(dtype))
        bname = _constant(scope, container, "intercept", proto, b.astype(dtype))
        x = _node(scope, container, "Gemm", [x, wname, bname])
        last = i == len(layers) - 1
        net = model._network  # its activations, whatever set_params said since the fit
        activation = net.output_activation if last else net.hidden_activation
        x = _activation(scope, container, activation, x, proto, dtype)
    return x, proto, dtype


# -------------------------------------------------------------------------- classifier
def _is_multilabel(model: Any) -> bool:
    return model._label_binarizer.y_type_.startswith("multilabel")


def _label_classes(model: Any, nocl: bool) -> tuple[np.ndarray, int, type]:
    """(the class labels as the graph stores them, their ONNX element type, the label
    output's tensor type class)."""
    classes = np.asarray(model.classes_)
    if len(classes) < 2:
        raise ValueError(
            f"cymlp.onnx cannot convert a classifier fitted on {len(classes)} class: "
            "it needs at least two"
        )
    if nocl:
        return np.arange(len(classes), dtype=np.int64), TensorProto.INT64, Int64TensorType
    if classes.dtype == np.bool_ or np.issubdtype(classes.dtype, np.integer):
        return _int64_labels(classes), TensorProto.INT64, Int64TensorType
    if np.issubdtype(classes.dtype, np.floating):
        if not np.all(classes == np.round(classes)):
            raise ValueError(
                "cymlp.onnx cannot convert float class labels that are not integers "
                f"({classes[:5]}...): skl2onnx's labels are int64 or strings. Encode y "
                "with integers or strings before fitting."
            )
        return _int64_labels(classes), TensorProto.INT64, Int64TensorType
    if all(isinstance(c, str) for c in classes):
        return np.array([c.encode("utf-8") for c in classes]), TensorProto.STRING, StringTensorType
    raise ValueError(
        f"cymlp.onnx cannot convert class labels of dtype {classes.dtype}: they must be "
        "all integers or all strings"
    )


def _int64_labels(classes: np.ndarray) -> np.ndarray:
    """Integer-valued labels as int64, or a ValueError where one does not fit (a cast
    would wrap a uint64 label above 2**63 - 1 into a negative one)."""
    values = [int(c) for c in classes.tolist()]
    outside = [v for v in values if not -(2**63) <= v < 2**63]
    if outside:
        raise ValueError(
            f"cymlp.onnx cannot convert class labels outside int64's range ({outside[:3]}): "
            "skl2onnx's labels are int64 or strings. Encode y with smaller integers or "
            "strings before fitting."
        )
    return np.array(values, dtype=np.int64)


def _classifier_options(scope: Any, model: Any) -> bool:
    return bool(scope.get_options(model, dict(nocl=False))["nocl"])


def parse_classifier(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> Any:
    """skl2onnx parser: outputs label and probabilities, then skl2onnx's own handling of
    the `zipmap` and `output_class_labels` options (as for scikit-learn classifiers)."""
    _check_fitted(model)
    return _parse_sklearn_classifier(scope, model, inputs, custom_parsers=custom_parsers)


def calculate_classifier_output_shapes(operator: Any) -> None:
    """skl2onnx shape calculator: label (N,) (multilabel: (N, n_labels)) and
    probabilities (N, n_classes) in the compute type."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=2)
    check_input_and_output_types(operator, good_input_types=_INPUT_TYPES)
    model = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    _, _, tensor_type = _compute_type(operator.inputs[0].type)
    n_classes = len(model.classes_)
    if _is_multilabel(model):
        operator.outputs[0].type = Int64TensorType([n, n_classes])
    else:
        nocl = _classifier_options(operator.scope_inst, model)
        operator.outputs[0].type = _label_classes(model, nocl)[2]([n])
    operator.outputs[1].type = tensor_type([n, n_classes])


def convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter: the forward pass, predict_proba's columns and predict's labels
    (the label binarizer's rules: p > 0.5 for binary and multilabel targets, the first
    largest probability for multiclass ones)."""
    model = operator.raw_operator
    label_out, proba_out = operator.outputs[0].full_name, operator.outputs[1].full_name
    y, proto, dtype = _network(scope, operator, container)
    multilabel = _is_multilabel(model)
    binary = model.n_outputs_ == 1 and not multilabel
    if binary:  # one logistic unit: predict_proba = [1 - p, p]
        one = _constant(scope, container, "one", proto, dtype(1))
        complement = _node(scope, container, "Sub", [one, y])
        container.add_node(
            "Concat",
            [complement, y],
            proba_out,
            axis=1,
            name=scope.get_unique_operator_name("Concat"),
        )
    else:
        container.add_node(
            "Identity", [y], proba_out, name=scope.get_unique_operator_name("Identity")
        )

    if binary or multilabel:
        half = _constant(scope, container, "threshold", proto, dtype(0.5))
        positive = _node(scope, container, "Greater", [y, half])
    if multilabel:
        container.add_node(
            "Cast",
            [positive],
            label_out,
            to=TensorProto.INT64,
            name=scope.get_unique_operator_name("Cast"),
        )
        return
    if binary:  # (N, 1) bool -> (N,) index
        index = _node(scope, container, "Cast", [positive], to=TensorProto.INT64)
        shape = _constant(scope, container, "shape", TensorProto.INT64, np.array([-1]))
        index = _node(scope, container, "Reshape", [index, shape])
    else:
        index = _node(scope, container, "ArgMax", [y], axis=1, keepdims=0)
    classes, class_proto, _ = _label_classes(model, _classifier_options(scope, model))
    cname = _constant(scope, container, "classes", class_proto, classes)
    container.add_node(
        "Gather",
        [cname, index],
        label_out,
        axis=0,
        name=scope.get_unique_operator_name("Gather"),
    )


# --------------------------------------------------------------------------- regressor
def parse_regressor(scope: Any, model: Any, inputs: list[Any], custom_parsers: Any = None) -> Any:
    """skl2onnx parser: one output, `variable`, in the compute type."""
    _check_fitted(model)
    operator = scope.declare_local_operator(REGRESSOR_ALIAS, model)
    operator.inputs = inputs
    variable = scope.declare_local_variable("variable", _compute_type(inputs[0].type)[2]())
    operator.outputs.append(variable)
    return operator.outputs


def calculate_regressor_output_shapes(operator: Any) -> None:
    """skl2onnx shape calculator: variable (N, n_outputs) in the compute type."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    check_input_and_output_types(operator, good_input_types=_INPUT_TYPES)
    n = operator.inputs[0].get_first_dimension()
    tensor_type = _compute_type(operator.inputs[0].type)[2]
    operator.outputs[0].type = tensor_type([n, operator.raw_operator.n_outputs_])


def convert_regressor(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter: the forward pass, (N, n_outputs)."""
    y, _, _ = _network(scope, operator, container)
    container.add_node(
        "Identity",
        [y],
        operator.outputs[0].full_name,
        name=scope.get_unique_operator_name("Identity"),
    )


# ---------------------------------------------------------------------------- register
def register() -> None:
    """Register cymlp's converters with skl2onnx (done once on import; calling it again
    is harmless, e.g. after another library replaced them)."""
    update_registered_converter(
        MLPClassifier,
        CLASSIFIER_ALIAS,
        calculate_classifier_output_shapes,
        convert_classifier,
        parser=parse_classifier,
        options={
            "zipmap": [True, False, "columns"],
            "output_class_labels": [False, True],
            "nocl": [True, False],
        },
    )
    update_registered_converter(
        MLPRegressor,
        REGRESSOR_ALIAS,
        calculate_regressor_output_shapes,
        convert_regressor,
        parser=parse_regressor,
    )


register()
