"""ONNX export (cymlp.onnx): onnxruntime's outputs match cymlp's predict / predict_proba
for every hidden activation, output head, batch normalization on and off, label types,
float and double graphs, and the skl2onnx options; what cannot be converted raises."""

import warnings

import numpy as np
import pytest

skl2onnx = pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

import cymlp.onnx  # noqa: E402, F401  (registers the converters)
from cymlp import MLPClassifier, MLPRegressor  # noqa: E402

ACTIVATIONS = [
    "identity", "logistic", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu",
    "softplus",
]  # fmt: skip
HEADS = ["binary", "multiclass", "multilabel", "regression1", "regression3", "poisson"]
TOL = dict(rtol=1e-4, atol=1e-4)
# Rows whose top two probabilities (or whose p and 0.5) are closer than this are ties
# that float rounding may break either way: labels are compared on the other rows.
TIE = 1e-5


def make_data(head, n=80, n_features=5, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_features))
    W = rng.normal(size=(n_features, 3))
    Z = X @ W
    if head == "binary":
        y = np.where(Z[:, 0] > 0, "yes", "no")
    elif head == "multiclass":
        y = np.array(["cat", "dog", "emu"])[np.argmax(Z, axis=1)]
    elif head == "multilabel":
        y = (Z > 0).astype(int)
    elif head == "regression1":
        y = Z[:, 0] + 0.1 * rng.normal(size=n)
    elif head == "regression3":
        y = Z + 0.1 * rng.normal(size=Z.shape)
    else:  # poisson
        y = rng.poisson(np.exp(0.3 * Z[:, 0])).astype(float)
    return X, y


def fit(head, X, y, **params):
    params = {"hidden_layer_sizes": (6, 4), "max_iter": 40, "random_state": 0, **params}
    if head.startswith("regression"):
        model = MLPRegressor(**params)
    elif head == "poisson":
        model = MLPRegressor(loss="poisson", **params)
    else:
        model = MLPClassifier(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: few iterations on purpose
        return model.fit(X, y)


def run(onx, X):
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def margin(proba, multilabel):
    """Per row (multilabel: per entry), how far the decision is from a tie."""
    if multilabel:
        return np.abs(proba - 0.5)
    if proba.shape[1] == 2:
        return np.abs(proba[:, 1] - 0.5)
    top = np.sort(proba, axis=1)
    return top[:, -1] - top[:, -2]


def check_classifier(model, onx, X, multilabel=False):
    label, proba = run(onx, X)
    expected_proba = model.predict_proba(X)
    np.testing.assert_allclose(proba, expected_proba, **TOL)
    expected = model.predict(X)
    assert label.shape == expected.shape
    clear = margin(expected_proba, multilabel) > TIE
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(label[clear], expected[clear])


def check_regressor(model, onx, X):
    (out,) = run(onx, X)
    expected = model.predict(X)
    assert out.shape == (X.shape[0], model.n_outputs_)  # (N, 1) for one target
    np.testing.assert_allclose(out.reshape(expected.shape), expected, **TOL)


def convert(model, X, **kwargs):
    options = {"zipmap": False} if isinstance(model, MLPClassifier) else None
    onx = skl2onnx.to_onnx(model, X[:1], options=options, **kwargs)
    onnx.checker.check_model(onx, full_check=True)  # valid, and the declared types infer
    return onx


@pytest.mark.parametrize("batch_normalization", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_float_graph_matches_predict(activation, head, batch_normalization):
    X, y = make_data(head)
    model = fit(head, X, y, activation=activation, batch_normalization=batch_normalization)
    X32 = X.astype(np.float32)
    onx = convert(model, X32)
    if batch_normalization:  # folded into the dense layers
        assert "BatchNormalization" not in {n.op_type for n in onx.graph.node}
    if isinstance(model, MLPClassifier):
        check_classifier(model, onx, X32, multilabel=head == "multilabel")
    else:
        check_regressor(model, onx, X32)


@pytest.mark.parametrize("head", ["binary", "multiclass", "multilabel", "regression3", "poisson"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_double_graph_matches_float64_predict(activation, head):
    X, y = make_data(head)
    model = fit(head, X, y, activation=activation, batch_normalization=True)
    onx = convert(model, X)
    assert onx.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    outputs = run(onx, X)
    # gelu's erf runs in float in onnxruntime; the rest is float64 throughout
    tol = dict(rtol=1e-6, atol=1e-6) if activation == "gelu" else dict(rtol=1e-10, atol=1e-12)
    if isinstance(model, MLPClassifier):
        assert outputs[1].dtype == np.float64
        np.testing.assert_allclose(outputs[1], model.predict_proba(X), **tol)
        np.testing.assert_array_equal(outputs[0], model.predict(X))
    else:
        assert outputs[0].dtype == np.float64
        np.testing.assert_allclose(
            outputs[0].reshape(model.predict(X).shape), model.predict(X), **tol
        )


@pytest.mark.parametrize("head", ["multiclass", "regression3"])
def test_float32_model(head):
    X, y = make_data(head)
    X32 = X.astype(np.float32)
    model = fit(head, X32, y, activation="gelu", batch_normalization=True)
    assert model.coefs_[0].dtype == np.float32
    onx = convert(model, X32)
    if head == "multiclass":
        check_classifier(model, onx, X32)
    else:
        check_regressor(model, onx, X32)
    onx64 = convert(model, X)  # float64 X: cymlp computes in float64 too
    out = run(onx64, X)[-1]
    expected = model.predict_proba(X) if head == "multiclass" else model.predict(X)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


LABELS = {
    "int": [3, 7, 11],
    "negative-int": [-1, 0, 1],
    "bool": [False, True],
    "integral-float": [0.0, 1.0, 2.0],
    "str": ["a", "bb", "ccc"],
    "unicode": ["ü", "日本", "x"],
}


@pytest.mark.parametrize(
    "kind, n_classes",
    [(kind, n) for kind in LABELS for n in (2, 3) if n <= len(LABELS[kind])],
)
def test_label_types(kind, n_classes):
    labels = np.array(LABELS[kind][:n_classes])
    X, _ = make_data("multiclass")
    codes = np.argmax(X[:, :n_classes], axis=1)
    model = fit("multiclass", X, labels[codes])
    X32 = X.astype(np.float32)
    onx = convert(model, X32)
    label, proba = run(onx, X32)
    expected = model.predict(X32)
    if labels.dtype.kind in "biuf":
        assert label.dtype == np.int64
    else:
        assert label.dtype == object
    np.testing.assert_allclose(proba, model.predict_proba(X32), **TOL)
    clear = margin(model.predict_proba(X32), False) > TIE
    assert list(label[clear]) == list(expected[clear])


def test_regressor_single_output_shape():
    X, y = make_data("regression1")
    model = fit("regression1", X, y)
    (out,) = run(convert(model, X.astype(np.float32)), X.astype(np.float32))
    assert out.shape == (len(X), 1)
    np.testing.assert_allclose(out.ravel(), model.predict(X), **TOL)


def test_zipmap_default_and_options():
    X, y = make_data("multiclass")
    model = fit("multiclass", X, y)
    X32 = X.astype(np.float32)
    expected = model.predict_proba(X32)

    onx = skl2onnx.to_onnx(model, X32[:1])  # skl2onnx's default: zipmap
    label, maps = run(onx, X32)
    assert maps[0].keys() == set(model.classes_)
    np.testing.assert_allclose([m["dog"] for m in maps], expected[:, 1], **TOL)

    onx = skl2onnx.to_onnx(model, X32[:1], options={"zipmap": False, "nocl": True})
    label, proba = run(onx, X32)
    np.testing.assert_array_equal(label, np.argmax(expected, axis=1))

    onx = skl2onnx.to_onnx(model, X32[:1], options={"zipmap": False, "output_class_labels": True})
    label, proba, class_labels = run(onx, X32)
    assert list(class_labels) == list(model.classes_)

    onx = skl2onnx.to_onnx(model, X32[:1], options={"zipmap": "columns"})
    label, *columns = run(onx, X32)
    np.testing.assert_allclose(np.column_stack(columns), expected, **TOL)


def test_multilabel_labels_are_indicator_matrix():
    X, y = make_data("multilabel")
    model = fit("multilabel", X, y)
    X32 = X.astype(np.float32)
    label, proba = run(convert(model, X32), X32)
    assert label.dtype == np.int64 and label.shape == y.shape
    check_classifier(model, convert(model, X32), X32, multilabel=True)


def test_gelu_operator_by_opset():
    X, y = make_data("regression1")
    model = fit("regression1", X, y, activation="gelu")
    X32 = X.astype(np.float32)
    new = convert(model, X32, target_opset=20)
    old = convert(model, X32, target_opset=17)
    assert "Gelu" in {n.op_type for n in new.graph.node}
    assert "Gelu" not in {n.op_type for n in old.graph.node}
    assert "Erf" in {n.op_type for n in old.graph.node}
    for onx in (new, old):
        onnx.checker.check_model(onx)
        check_regressor(model, onx, X32)


def test_activation_attributes():
    X, y = make_data("regression1")
    onx = convert(fit("regression1", X, y, activation="leaky_relu"), X.astype(np.float32))
    nodes = [n for n in onx.graph.node if n.op_type == "LeakyRelu"]
    assert len(nodes) == 2  # one per hidden layer
    for node in nodes:
        assert onnx.helper.get_attribute_value(node.attribute[0]) == pytest.approx(0.01)


def test_large_inputs_stay_finite():
    """softplus / elu / exp-free heads on inputs far out: no overflow in the graph."""
    X, y = make_data("multiclass")
    model = fit("multiclass", X, y, activation="softplus")
    X_far = (100 * X).astype(np.float32)
    check_classifier(model, convert(model, X_far), X_far)


def test_in_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_data("multiclass")
    pipe = make_pipeline(StandardScaler(), MLPClassifier((5,), max_iter=30, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    X32 = X.astype(np.float32)
    check_classifier(pipe, skl2onnx.to_onnx(pipe, X32[:1], options={"zipmap": False}), X32)


def test_integer_input_is_cast():
    X, y = make_data("regression3")
    Xi = np.round(3 * X).astype(np.int64)
    model = fit("regression3", Xi, y)
    (out,) = run(skl2onnx.to_onnx(model, Xi[:1]), Xi)
    np.testing.assert_allclose(out, model.predict(Xi), **TOL)


def test_partial_fit_and_assigned_weights():
    """The graph holds the current weights, assigned ones included."""
    X, y = make_data("regression1")
    model = fit("regression1", X, y)
    model.coefs_[0] = model.coefs_[0] * 2  # a new array: synced before conversion
    X32 = X.astype(np.float32)
    check_regressor(model, convert(model, X32), X32)


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_unfitted_raises(Estimator):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(Estimator(), np.zeros((1, 3), dtype=np.float32))


@pytest.mark.parametrize(
    "classes, match",
    [
        (np.array([0.5, 1.5, 2.5]), "not integers"),
        (np.array([1, "a", 2.5], dtype=object), "all integers or all strings"),
        (np.array(["a"]), "at least two"),
        (np.array([0, 2**63 + 5, 7], dtype=np.uint64), "outside int64's range"),
        (np.array([0.0, 1e19, 3.0]), "outside int64's range"),
    ],
)
def test_inexpressible_labels_raise(classes, match):
    """scikit-learn's classifiers refuse such targets; classes_ set by hand must not give
    a wrong graph either."""
    X, y = make_data("multiclass")
    model = fit("multiclass", X, y)
    model.classes_ = classes
    with pytest.raises(ValueError, match=match):
        convert(model, X.astype(np.float32))


def test_unknown_activation_raises():
    """An activation a newer engine might add, unknown here: a clear error."""
    with pytest.raises(NotImplementedError, match="swish"):
        cymlp.onnx._activation(None, None, "swish", "x", onnx.TensorProto.FLOAT, np.float32)


def test_set_params_after_fit_does_not_change_the_graph():
    """The graph is the fitted network's, as predict is."""
    X, y = make_data("regression1")
    model = fit("regression1", X, y, activation="elu", batch_normalization=True)
    model.set_params(activation="relu", batch_normalization=False)
    X32 = X.astype(np.float32)
    check_regressor(model, convert(model, X32), X32)


def test_register_again_is_harmless():
    cymlp.onnx.register()
    X, y = make_data("regression1")
    model = fit("regression1", X, y)
    check_regressor(model, convert(model, X.astype(np.float32)), X.astype(np.float32))
