"""Every row of docs/input_handling.md: which inputs work (and give the float64 answer)
and which get which error.

References are scikit-learn (the same input given to sklearn.neural_network) and
arithmetic: a lossless conversion of X (list, Fortran order, a strided view, integers,
bool, float16, big-endian, read-only, a sparse matrix holding the same numbers) cannot
change the model, so the fit must equal the fit on the converted float64 array.
"""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as sknn
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from threadpoolctl import threadpool_limits

import cymlp

from _common import assert_same_params, iris, quiet_fit, regression

NAMES = ["MLPClassifier", "MLPRegressor"]

# A lossless conversion may still reach BLAS through a differently aligned buffer: allow
# last-bit differences, nothing more.
TIGHT = dict(rtol=1e-12, atol=1e-14)


def _data(name):
    return iris() if name == "MLPClassifier" else regression()


def _params(**params):
    return {"hidden_layer_sizes": (7,), "random_state": 0, "max_iter": 5, **params}


def _cy(name, **params):
    return getattr(cymlp, name)(**_params(**params))


def _sk(name, **params):
    return getattr(sknn, name)(**_params(**params))


def _outputs(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def assert_same_model(a, b, X, X_b=None, **tol):
    """Two fitted estimators have the same parameters and give the same outputs on X
    (b on X_b where given: the same numbers in another container)."""
    tol = tol or TIGHT
    X_b = X if X_b is None else X_b
    assert len(a.coefs_) == len(b.coefs_)
    for i, (u, v) in enumerate(zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_)):
        assert u.dtype == v.dtype, f"parameter {i}: {u.dtype} != {v.dtype}"
        assert_allclose(u, v, err_msg=f"parameter {i}", **tol)
    assert_allclose(_outputs(a, X), _outputs(b, X_b), **tol)


# --------------------------------------------------------------------------------------
# X variants that work: the same model as the float64 C-contiguous array
# --------------------------------------------------------------------------------------


def _int_X(X):
    return np.round(3 * X).astype(np.int64)


# name -> (variant of X, the float64 array it stands for)
X_VARIANTS = {
    "list": lambda X: (X.tolist(), np.array(X, dtype=np.float64)),
    "fortran": lambda X: (np.asfortranarray(X), X),
    "transposed-view": lambda X: (np.ascontiguousarray(X.T).T, X),
    "row-strided": lambda X: (np.repeat(X, 2, axis=0)[::2], X),
    "column-strided": lambda X: (np.repeat(X, 3, axis=1)[:, ::3], X),
    "negative-strides": lambda X: (X[::-1, ::-1], np.ascontiguousarray(X[::-1, ::-1])),
    "int64": lambda X: (_int_X(X), _int_X(X).astype(np.float64)),
    "int8": lambda X: (_int_X(X).astype(np.int8), _int_X(X).astype(np.float64)),
    "uint8": lambda X: ((_int_X(X) + 20).astype(np.uint8), (_int_X(X) + 20).astype(np.float64)),
    "bool": lambda X: (X > 0, (X > 0).astype(np.float64)),
    "float16": lambda X: (X.astype(np.float16), X.astype(np.float16).astype(np.float64)),
    "object-numbers": lambda X: (X.astype(object), X),
    "big-endian": lambda X: (X.astype(">f8"), X),
    "read-only": lambda X: (_read_only(X.copy()), X),
}


def _read_only(a):
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("variant", list(X_VARIANTS))
@pytest.mark.parametrize("name", NAMES)
def test_X_variant_fits_like_float64(name, variant):
    X, y = _data(name)
    Xv, X64 = X_VARIANTS[variant](np.array(X))
    est = quiet_fit(_cy(name), Xv, y)
    ref = quiet_fit(_cy(name), np.ascontiguousarray(X64, dtype=np.float64), y)
    # scikit-learn computes every one of these in float64 (float16 included)
    assert est.coefs_[0].dtype == np.float64
    assert_same_model(est, ref, X64)
    # and the variant itself gives scikit-learn's model
    sk = quiet_fit(_sk(name), Xv, y)
    assert_same_params(est, sk)


@pytest.mark.parametrize("variant", list(X_VARIANTS))
@pytest.mark.parametrize("name", NAMES)
def test_X_variant_predicts_like_float64(name, variant):
    X, y = _data(name)
    est = quiet_fit(_cy(name), X, y)
    Xv, X64 = X_VARIANTS[variant](np.array(X))
    out = _outputs(est, Xv)
    assert out.dtype == np.float64
    assert_allclose(out, _outputs(est, np.ascontiguousarray(X64, dtype=np.float64)), **TIGHT)
    assert_array_equal(est.predict(Xv), est.predict(X64))


@pytest.mark.parametrize("name", NAMES)
def test_float32_X_stays_float32_as_in_sklearn(name):
    X, y = _data(name)
    X32 = np.asarray(X, dtype=np.float32)
    est = quiet_fit(_cy(name), X32, y)
    sk = quiet_fit(_sk(name), X32, y)
    assert est.coefs_[0].dtype == sk.coefs_[0].dtype == np.float32
    assert_same_params(est, sk, rtol=1e-4, atol=1e-5)
    assert _outputs(est, X32).dtype == _outputs(sk, X32).dtype == np.float32
    # float64 X on a float32 model: numpy's promotion, float64 out (as scikit-learn)
    assert _outputs(est, np.asarray(X)).dtype == _outputs(sk, np.asarray(X)).dtype


@pytest.mark.parametrize(
    "x_dtype",
    [np.int8, np.int16, np.int64, np.uint8, bool, np.float16, np.float32, np.float64],
    ids=str,
)
@pytest.mark.parametrize("name", NAMES)
def test_predict_dtype_on_float32_model_as_sklearn(name, x_dtype):
    """A float32 model predicts in numpy's promotion of X's dtype and float32, as
    scikit-learn's forward pass does (int8 / bool / float16 -> float32, int64 ->
    float64)."""
    X, y = _data(name)
    X32 = np.asarray(X, dtype=np.float32)
    est = quiet_fit(_cy(name), X32, y)
    sk = quiet_fit(_sk(name), X32, y)
    kind = np.dtype(x_dtype).kind
    if kind == "b":
        Xp = X > 0
    elif kind in "iu":
        Xp = (np.round(3 * X) + (20 if kind == "u" else 0)).astype(x_dtype)
    else:
        Xp = X.astype(x_dtype)
    out, ref = _outputs(est, Xp), _outputs(sk, Xp)
    assert out.dtype == ref.dtype == np.result_type(Xp.dtype, np.float32)
    assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float16_X_with_forced_dtype(dtype):
    X, y = iris()
    X16 = np.asarray(X, dtype=np.float16)
    est = quiet_fit(_cy("MLPClassifier", dtype=dtype), X16, y)
    ref = quiet_fit(_cy("MLPClassifier", dtype=dtype), X16.astype(dtype), y)
    assert est.coefs_[0].dtype == dtype
    assert_same_model(est, ref, X16.astype(dtype))


@pytest.mark.parametrize("name", NAMES)
def test_big_endian_and_read_only_y_and_sample_weight(name):
    X, y = _data(name)
    sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    ref = quiet_fit(_cy(name), X, y, sample_weight=sw)
    y_be = y.astype(">i8") if name == "MLPClassifier" else y.astype(">f8")
    est = quiet_fit(_cy(name), X, y_be, sample_weight=sw.astype(">f8"))
    assert_same_model(est, ref, X)
    est = quiet_fit(
        _cy(name),
        _read_only(np.array(X)),
        _read_only(np.array(y)),
        sample_weight=_read_only(sw.copy()),
    )
    assert_same_model(est, ref, X)


# --------------------------------------------------------------------------------------
# sparse X
# --------------------------------------------------------------------------------------

SPARSE_FORMATS = {
    "csr_matrix": sp.csr_matrix,
    "csc_matrix": sp.csc_matrix,
    "coo_matrix": sp.coo_matrix,
    "csr_array": sp.csr_array,
    "csc_array": sp.csc_array,
    "coo_array": sp.coo_array,
    "lil_matrix": sp.lil_matrix,
}


def _sparsify(X, seed=0):
    """X with about half its entries set to zero (so sparsity means something)."""
    X = np.array(X)
    X[np.random.RandomState(seed).rand(*X.shape) < 0.5] = 0
    return X


@pytest.mark.parametrize("fmt", list(SPARSE_FORMATS))
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("name", NAMES)
def test_sparse_X_fits_like_dense(name, solver, fmt):
    X, y = _data(name)
    Xd = _sparsify(X)
    Xs = SPARSE_FORMATS[fmt](Xd)
    est = quiet_fit(_cy(name, solver=solver), Xs, y)
    ref = quiet_fit(_cy(name, solver=solver), Xd, y)
    assert_same_model(est, ref, Xd)
    assert_allclose(_outputs(ref, Xs), _outputs(ref, Xd), **TIGHT)


def _csr_from_rows(rows, shape, dtype=np.float64):
    """A CSR matrix from per-row lists of (column, value), stored exactly as given (no
    sorting, no summing)."""
    indptr, indices, data = [0], [], []
    for row in rows:
        for j, v in row:
            indices.append(j)
            data.append(v)
        indptr.append(len(indices))
    return sp.csr_matrix(
        (
            np.array(data, dtype=dtype),
            np.array(indices, dtype=np.int32),
            np.array(indptr, dtype=np.int32),
        ),
        shape=shape,
    )


def test_sparse_unsorted_indices_explicit_zeros_and_int64_indices():
    X, y = iris()
    Xd = _sparsify(X)
    n, m = Xd.shape
    # reversed column order, and an explicit zero stored where column 0 is zero
    rows = []
    for i in range(n):
        row = [(j, Xd[i, j]) for j in reversed(range(m)) if Xd[i, j] != 0]
        if Xd[i, 0] == 0:
            row.append((0, 0.0))
        rows.append(row)
    Xu = _csr_from_rows(rows, (n, m))
    assert not Xu.has_sorted_indices
    X64 = sp.csr_matrix(Xd)
    X64.indices = X64.indices.astype(np.int64)
    X64.indptr = X64.indptr.astype(np.int64)
    ref = quiet_fit(_cy("MLPClassifier"), Xd, y)
    for Xs in (Xu, X64):
        assert_same_model(quiet_fit(_cy("MLPClassifier"), Xs, y), ref, Xd)
        assert_allclose(ref.predict_proba(Xs), ref.predict_proba(Xd), **TIGHT)


def _duplicated(Xd):
    """The same matrix as Xd in non-canonical CSR: every stored entry split in two
    halves (scipy's semantics: duplicate entries add up)."""
    n, m = Xd.shape
    rows = [[(j, Xd[i, j] / 2) for j in range(m) if Xd[i, j] != 0] * 2 for i in range(n)]
    Xs = _csr_from_rows(rows, (n, m))
    assert not Xs.has_canonical_format
    assert_allclose(Xs.toarray(), Xd)  # scipy sums the halves back
    return Xs


# Regression tests: the dense gather used to assign duplicates (o[indices[p]] = data[p]),
# so only the last one counted, a silent wrong answer in fit and predict (fixed in 071f38d).
@pytest.mark.parametrize("name", NAMES)
def test_sparse_duplicate_entries_fit(name):
    X, y = _data(name)
    Xd = _sparsify(X)
    ref = quiet_fit(_cy(name), Xd, y)
    est = quiet_fit(_cy(name), _duplicated(Xd), y)
    assert_same_model(est, ref, Xd, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_sparse_duplicate_entries_predict(name):
    X, y = _data(name)
    Xd = _sparsify(X)
    est = quiet_fit(_cy(name), Xd, y)
    sk = quiet_fit(_sk(name), Xd, y)
    Xs = _duplicated(Xd)
    # scikit-learn gets it right ...
    assert_allclose(_outputs(sk, Xs), _outputs(sk, Xd), rtol=1e-10, atol=1e-12)
    # ... cymlp must too
    assert_allclose(_outputs(est, Xs), _outputs(est, Xd), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------
# pandas and y variants that work
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_pandas_dataframe(name):
    pd = pytest.importorskip("pandas")
    X, y = _data(name)
    cols = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    df[cols[0]] = np.round(3 * df[cols[0]]).astype(np.int64)  # mixed column dtypes
    X64 = df.to_numpy(dtype=np.float64)
    est = quiet_fit(_cy(name), df, pd.Series(y))
    assert_array_equal(est.feature_names_in_, cols)
    ref = quiet_fit(_cy(name), X64, y)
    assert_same_model(est, ref, df, X64)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(df[cols[::-1]])


def test_pandas_missing_value_is_nan_error():
    pd = pytest.importorskip("pandas")
    X, y = iris()
    df = pd.DataFrame({"a": pd.array([1, None] + [3] * (len(y) - 2), dtype="Int64"), "b": X[:, 1]})
    with pytest.raises(ValueError, match="NaN"):
        _cy("MLPClassifier").fit(df, y)


def test_classifier_y_variants():
    X, y = iris()
    ref = quiet_fit(_cy("MLPClassifier"), X, y)
    names = np.array(["setosa", "versicolor", "virginica"])
    # list, string labels, a column vector (DataConversionWarning, as scikit-learn)
    est = quiet_fit(_cy("MLPClassifier"), X, list(y))
    assert_same_model(est, ref, X)
    est = quiet_fit(_cy("MLPClassifier"), X, names[y])
    assert_array_equal(est.classes_, names)
    assert_allclose(est.predict_proba(X), ref.predict_proba(X), **TIGHT)
    assert_array_equal(est.predict(X), names[ref.predict(X)])
    with pytest.warns(DataConversionWarning):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = _cy("MLPClassifier").fit(X, y.reshape(-1, 1))
    assert_same_model(est, ref, X)


def test_regressor_y_variants():
    X, y = regression()
    ref = quiet_fit(_cy("MLPRegressor"), X, y)
    assert_same_model(quiet_fit(_cy("MLPRegressor"), X, list(y)), ref, X)
    yi = np.round(3 * y).astype(np.int64)
    assert_same_model(
        quiet_fit(_cy("MLPRegressor"), X, yi),
        quiet_fit(_cy("MLPRegressor"), X, yi.astype(np.float64)),
        X,
    )


# --------------------------------------------------------------------------------------
# inputs that get errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_3d_X(name):
    X, y = _data(name)
    X3 = np.asarray(X)[:, :4].reshape(len(y), 2, 2)
    with pytest.raises(ValueError, match="dim 3"):
        _cy(name).fit(X3, y)
    est = quiet_fit(_cy(name), np.asarray(X)[:, :4], y)
    with pytest.raises(ValueError, match="dim 3"):
        est.predict(X3)


@pytest.mark.parametrize("name", NAMES)
def test_1d_X(name):
    X, y = _data(name)
    with pytest.raises(ValueError, match="Expected 2D array"):
        _cy(name).fit(X[:, 0], y)
    est = quiet_fit(_cy(name), X, y)
    with pytest.raises(ValueError, match="Expected 2D array"):
        est.predict(X[0])


@pytest.mark.parametrize("name", NAMES)
def test_string_X(name):
    X, y = _data(name)
    Xs = np.asarray(X).astype(str)
    Xs[3, 1] = "abc"
    with pytest.raises(ValueError, match="abc"):
        _cy(name).fit(Xs, y)
    Xo = np.asarray(X).astype(object)
    Xo[3, 1] = "abc"
    with pytest.raises(ValueError, match="abc"):
        _cy(name).fit(Xo, y)
    Xo[3, 1] = None
    with pytest.raises((ValueError, TypeError)):
        _cy(name).fit(Xo, y)
    est = quiet_fit(_cy(name), X, y)
    with pytest.raises(ValueError, match="(?i)string"):
        est.predict(Xs)


@pytest.mark.parametrize("name", NAMES)
def test_complex_X(name):
    X, y = _data(name)
    with pytest.raises(ValueError, match="Complex"):
        _cy(name).fit(np.asarray(X) + 0j, y)


@pytest.mark.parametrize("name", NAMES)
def test_empty_X(name):
    X, y = _data(name)
    with pytest.raises(ValueError, match="0 sample"):
        _cy(name).fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="0 feature"):
        _cy(name).fit(X[:, :0], y)
    with pytest.raises(ValueError, match="0 feature"):
        _cy(name).fit(sp.csr_matrix(X[:, :0]), y)
    est = quiet_fit(_cy(name), X, y)
    with pytest.raises(ValueError, match="0 sample"):
        est.predict(X[:0])


@pytest.mark.parametrize("name", NAMES)
def test_wrong_number_of_features_at_predict(name):
    X, y = _data(name)
    est = quiet_fit(_cy(name), X, y)
    m = X.shape[1]
    for Xb in (X[:, :-1], sp.csr_matrix(X[:, :-1]), np.hstack([X, X[:, :1]])):
        with pytest.raises(ValueError, match=f"expecting {m} features"):
            est.predict(Xb)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", NAMES)
def test_non_finite_X(name, bad):
    X, y = _data(name)
    Xb = np.array(X)
    Xb[3, 1] = bad
    with pytest.raises(ValueError, match="(?i)(nan|infinity)"):
        _cy(name).fit(Xb, y)
    with pytest.raises(ValueError, match="(?i)(nan|infinity)"):
        _cy(name).fit(sp.csr_matrix(Xb), y)
    est = quiet_fit(_cy(name), X, y)
    with pytest.raises(ValueError, match="(?i)(nan|infinity)"):
        est.predict(Xb)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_deep_in_a_large_X(dtype):
    # X large enough for the threaded scan (_kernels.all_finite): the error is
    # scikit-learn's, from fit, predict and fit's validation data
    rng = np.random.RandomState(0)
    X = rng.standard_normal((20_000, 60)).astype(dtype)
    y = (X[:, 0] > 0).astype(int)
    est = cymlp.MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    quiet_fit(est, X, y)
    for bad, word in [(np.nan, "NaN"), (np.inf, "infinity")]:
        Xb = X.copy()
        Xb[17_001, 59] = bad
        with pytest.raises(ValueError, match=f"Input X contains {word}"):
            cymlp.MLPClassifier(max_iter=1).fit(Xb, y)
        with pytest.raises(ValueError, match=f"Input X contains {word}"):
            est.predict(Xb)
        with pytest.raises(ValueError, match=f"Input X contains {word}"):
            cymlp.MLPClassifier(max_iter=1).fit(X, y, X_val=Xb, y_val=y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hidden", [(64,), ()], ids=["hidden", "no-hidden"])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_prediction_watches_the_first_layer(dtype, hidden, n_threads):
    # Prediction does not scan dense X up front: the network flags a NaN or infinite
    # first-layer product, anywhere in the chunks and the threads' blocks: with 256-row
    # chunks each thread takes whole chunks (20 chunks, from 4 per thread), with one
    # chunk the threads share the products.
    rng = np.random.RandomState(0)
    X = rng.standard_normal((5000, 30)).astype(dtype)
    y = (X[:, 0] > 0).astype(int)
    est = quiet_fit(
        cymlp.MLPClassifier(hidden_layer_sizes=hidden, max_iter=1, random_state=0), X, y
    )
    net = est._network
    with threadpool_limits(limits=n_threads, user_api="openmp"):
        for chunk in (256, 5000):
            clean, flagged = net.predict_watched(X, chunk)
            assert not flagged
            assert_array_equal(clean, net.predict(X, chunk))
            for row in (0, 255, 256, 2600, 4999):
                for bad in (np.nan, np.inf, -np.inf):
                    Xb = X.copy()
                    Xb[row, 29] = bad
                    assert net.predict_watched(Xb, chunk)[1], (chunk, row, bad)
        for row in (0, 4999):
            Xb = X.copy()
            Xb[row, 29] = np.nan
            with pytest.raises(ValueError, match="Input X contains"):
                est.predict_proba(Xb)
    # an infinity meeting only zero weights still gives NaN products
    est.coefs_[0][7] = 0
    assert not np.any(net.coefs[0][7])
    Xb = X.copy()
    Xb[123, 7] = np.inf
    assert net.predict_watched(Xb)[1]
    with pytest.raises(ValueError, match="Input X contains infinity"):
        est.predict(Xb)


def test_overflowing_products_are_not_an_error():
    # Finite X whose first-layer products overflow: the watch sees infinities, the scan
    # of X finds none, and the outputs stand (as they did with the scan first).
    X, y = regression()
    est = quiet_fit(cymlp.MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0), X, y)
    est.coefs_[0][:] = 10.0
    Xbig = np.abs(X) / np.abs(X).max() * 1e308
    assert np.all(np.isfinite(Xbig))
    assert est._network.predict_watched(Xbig)[1]
    out = est.predict(Xbig)
    assert_array_equal(out, est._forward_pass_fast(Xbig, check_input=False).ravel())
    assert not np.all(np.isfinite(out))


@pytest.mark.parametrize("name", NAMES)
def test_length_mismatch(name):
    X, y = _data(name)
    n = len(y)
    with pytest.raises(ValueError, match=rf"inconsistent numbers of samples: \[{n}, {n - 1}\]"):
        _cy(name).fit(X, y[:-1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        _cy(name, solver="sgd").partial_fit(
            X[:-1], y, **({"classes": np.unique(y)} if name == "MLPClassifier" else {})
        )


@pytest.mark.parametrize(
    "bad, word",
    [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")],
    ids=["nan", "inf", "-inf"],
)
@pytest.mark.parametrize("name", NAMES)
def test_non_finite_y(name, bad, word):
    X, y = _data(name)
    yb = np.array(y, dtype=np.float64)
    yb[5] = bad
    with pytest.raises(ValueError, match=rf"Input y contains {word}"):
        _cy(name).fit(X, yb)
    with pytest.raises(ValueError, match=rf"Input y contains {word}"):
        _cy(name, solver="lbfgs").fit(X, yb)


def test_continuous_y_for_classifier():
    X, y = regression()
    with pytest.raises(ValueError, match="Unknown label type"):
        _cy("MLPClassifier").fit(X, y)


def test_regressor_string_y():
    X, y = iris()
    with pytest.raises(ValueError, match="could not convert string to float"):
        _cy("MLPRegressor").fit(X, np.array(["a", "b", "c"])[y])


@pytest.mark.parametrize("name", NAMES)
def test_3d_y(name):
    X, y = _data(name)
    with pytest.raises(ValueError, match="dim 3"):
        _cy(name).fit(X, np.zeros((len(y), 2, 2)))


@pytest.mark.parametrize(
    "y",
    [
        np.array([3, 7, 3, 3, 7]),  # binary: one column
        np.array([2, -1, 9, 2, -1, 5], dtype=np.int8),
        np.arange(12, dtype=np.uint16) % 10,
        np.array([True, False, False, True, True]),
        np.array(["b", "a", "c", "a", "b"]),  # not integers: the binarizer itself
        np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]]),  # multilabel
    ],
    ids=["binary", "int8", "uint16", "bool", "str", "multilabel"],
)
def test_targets_are_the_label_binarizers(y):
    # integer labels are one-hot encoded without the binarizer's transform; the targets
    # must be its own, for fit and for partial_fit batches holding some of the classes
    from sklearn.preprocessing import LabelBinarizer

    X = np.zeros((len(y), 2))
    est = cymlp.MLPClassifier()
    _, Y = est._validate_input(X, y, incremental=False, reset=True)
    assert_array_equal(est.classes_, np.unique(y) if y.ndim == 1 else [0, 1])
    assert_array_equal(Y, LabelBinarizer().fit(y).transform(y).astype(bool))
    assert Y.dtype == bool
    _, Y = est._validate_input(X[1:3], y[1:3], incremental=True, reset=False)
    assert_array_equal(Y, LabelBinarizer().fit(y).transform(y[1:3]).astype(bool))


def test_partial_fit_unknown_classes():
    X, y = iris()
    est = _cy("MLPClassifier", solver="sgd")
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(X, y)
    quiet_fit_partial = est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
    assert quiet_fit_partial is est
    before = [c.copy() for c in est.coefs_]
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`.*\[0 1\]"):
        est.partial_fit(X, y)
    with pytest.raises(ValueError, match="classes not in"):
        est.partial_fit(X[:3], np.array(["a", "b", "a"]))
    # the failed calls changed nothing, and training goes on
    for a, b in zip(est.coefs_, before):
        assert_array_equal(a, b)
    est.partial_fit(X[y < 2], y[y < 2])
    assert est.predict_proba(X).shape == (len(y), 2)


def test_partial_fit_classes_not_covering_first_y():
    X, y = iris()
    with pytest.raises(ValueError, match="classes not in"):
        _cy("MLPClassifier", solver="sgd").partial_fit(X, y, classes=[0, 1])


# --------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------

# (parameters, what the message must name); all are scikit-learn's InvalidParameterError,
# a subclass of both ValueError and TypeError
BAD_PARAMETERS = [
    (dict(alpha=-1.0), "alpha"),
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=-3), "batch_size"),
    (dict(batch_size=1.5), "batch_size"),
    (dict(hidden_layer_sizes=0), "hidden_layer_sizes"),
    (dict(hidden_layer_sizes=None), "hidden_layer_sizes"),
    (dict(hidden_layer_sizes="abc"), "hidden_layer_sizes"),
    (dict(activation="foo"), "activation"),
    (dict(solver="foo"), "solver"),
    (dict(learning_rate="foo"), "learning_rate"),
    (dict(learning_rate_init=0), "learning_rate_init"),
    (dict(learning_rate_init=-0.1), "learning_rate_init"),
    (dict(momentum=2), "momentum"),
    (dict(momentum=-0.5), "momentum"),
    (dict(validation_fraction=1.0), "validation_fraction"),
    (dict(validation_fraction=1.0, early_stopping=True), "validation_fraction"),
    (dict(validation_fraction=-0.1, early_stopping=True), "validation_fraction"),
    (dict(n_iter_no_change=0), "n_iter_no_change"),
    (dict(max_iter=0), "max_iter"),
    (dict(max_iter=-1), "max_iter"),
    (dict(tol=-1.0), "tol"),
    (dict(power_t=-1.0), "power_t"),
    (dict(beta_1=1.0), "beta_1"),
    (dict(beta_2=-0.1), "beta_2"),
    (dict(epsilon=0.0), "epsilon"),
    (dict(max_fun=0), "max_fun"),
    (dict(shuffle="yes"), "shuffle"),
    (dict(random_state="seed"), "random_state"),
]


@pytest.mark.parametrize("params, word", BAD_PARAMETERS, ids=lambda p: repr(p))
@pytest.mark.parametrize("name", NAMES)
def test_bad_parameter(name, params, word):
    X, y = _data(name)
    with pytest.raises(ValueError, match=re.escape(f"'{word}' parameter")) as cy_err:
        _cy(name, **params).fit(X, y)
    with pytest.raises(ValueError) as sk_err:  # scikit-learn rejects them the same way
        _sk(name, **params).fit(X, y)
    assert type(cy_err.value) is type(sk_err.value)
    # the message names the parameter (matched above) and the offending value
    value = params[word]
    assert f"Got {value!r} instead" in str(cy_err.value)


def test_bad_regression_loss():
    X, y = regression()
    with pytest.raises(ValueError, match="'loss' parameter"):
        _cy("MLPRegressor", loss="foo").fit(X, y)


@pytest.mark.parametrize("sizes", [(2**31,), (4, 2**62), (2**64,)], ids=str)
def test_huge_hidden_layer_sizes(sizes):
    # (2**62,) failed with "Python int too large to convert to C ssize_t"
    X, y = iris()
    with pytest.raises(ValueError, match=r"hidden_layer_sizes must be below 2\*\*31"):
        _cy("MLPClassifier", hidden_layer_sizes=sizes).fit(X, y)


@pytest.mark.parametrize("dropout", [["0.5"], [0.1, "0.2"]], ids=str)
def test_dropout_rates_given_as_strings(dropout):
    X, y = iris()
    with pytest.raises(TypeError, match="dropout must be a rate"):
        _cy("MLPClassifier", hidden_layer_sizes=(4, 4), dropout=dropout).fit(X, y)


@pytest.mark.parametrize("sizes", [(0,), (5, 0), (5, -1)], ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_non_positive_hidden_layer_sizes(name, sizes):
    X, y = _data(name)
    with pytest.raises(ValueError, match=r"hidden_layer_sizes must be > 0"):
        _cy(name, hidden_layer_sizes=sizes).fit(X, y)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sizes", [(2.5,), (True,), True, (4, np.float64(3.0))], ids=str)
def test_non_integer_hidden_layer_size(name, sizes):
    # scikit-learn raises a TypeError that does not name the parameter; cymlp's does
    X, y = _data(name)
    with pytest.raises(TypeError):
        _sk(name, hidden_layer_sizes=sizes).fit(X, y)
    with pytest.raises(TypeError, match=r"hidden_layer_sizes must be integers"):
        _cy(name, hidden_layer_sizes=sizes).fit(X, y)


@pytest.mark.parametrize(
    "dtype", ["int32", np.int64, np.float16, np.complex128, "float16", np.uint8], ids=str
)
@pytest.mark.parametrize("name", NAMES)
def test_bad_dtype_value(name, dtype):
    X, y = _data(name)
    with pytest.raises(ValueError, match=rf"dtype must be .*got {np.dtype(dtype)}"):
        _cy(name, dtype=dtype).fit(X, y)


@pytest.mark.parametrize("dtype", ["foo", object(), [np.float32]], ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_bad_dtype_type(name, dtype):
    X, y = _data(name)
    with pytest.raises((TypeError, ValueError), match="dtype must be"):
        _cy(name, dtype=dtype).fit(X, y)


@pytest.mark.parametrize("dtype", ["float32", "float64", np.dtype("float32"), "f8"])
def test_dtype_spellings_that_work(dtype):
    X, y = iris()
    est = quiet_fit(_cy("MLPClassifier", dtype=dtype), X, y)
    assert est.coefs_[0].dtype == np.dtype(dtype)
    assert est.predict_proba(X).dtype == np.dtype(dtype)


def test_hidden_layer_sizes_spellings_that_work():
    X, y = iris()
    ref = quiet_fit(_cy("MLPClassifier", hidden_layer_sizes=(7,)), X, y)
    for sizes in (7, [7], np.array([7]), (np.int64(7),)):
        assert_same_model(quiet_fit(_cy("MLPClassifier", hidden_layer_sizes=sizes), X, y), ref, X)


# --------------------------------------------------------------------------------------
# sample_weight
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("name", NAMES)
def test_sample_weight_errors(name, solver):
    X, y = _data(name)
    n = len(y)
    est = _cy(name, solver=solver)
    cases = [
        (np.ones(n - 1), rf"sample_weight.shape == \({n - 1},\), expected \({n},\)"),
        (np.ones(n + 1), rf"sample_weight.shape == \({n + 1},\), expected \({n},\)"),
        (np.ones((n, 2)), "Sample weights must be 1D"),
        (np.where(np.arange(n) == 4, np.nan, 1.0), "sample_weight contains NaN"),
        (np.where(np.arange(n) == 4, np.inf, 1.0), "sample_weight contains infinity"),
        (np.zeros(n), "Sample weights must contain at least one non-zero number"),
        (np.array(["a"] * n), "could not convert string to float"),
    ]
    for sw, message in cases:
        with pytest.raises(ValueError, match=message):
            est.fit(X, y, sample_weight=sw)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("name", NAMES)
def test_negative_sample_weight_is_accepted_like_sklearn(name, solver):
    # scikit-learn 1.9 accepts negative weights (no check); the drop-in follows it and
    # gives the same model
    X, y = _data(name)
    sw = np.random.RandomState(1).uniform(0.5, 2.0, len(y))
    sw[::7] *= -0.1
    est = quiet_fit(_cy(name, solver=solver), X, y, sample_weight=sw)
    sk = quiet_fit(_sk(name, solver=solver), X, y, sample_weight=sw)
    assert_same_params(est, sk)


@pytest.mark.parametrize("name", NAMES)
def test_scalar_sample_weight(name):
    X, y = _data(name)
    est = quiet_fit(_cy(name), X, y, sample_weight=2.5)
    sk = quiet_fit(_sk(name), X, y, sample_weight=2.5)
    assert_same_params(est, sk)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_zero_weight_mini_batch_names_sample_weight(solver):
    """A mini-batch whose sample weights sum to zero (zeros with batch_size=1) cannot be
    normalised: the error must name sample_weight (it used to blame divergence and the
    data scale; fixed in 071f38d). scikit-learn raises ZeroDivisionError here."""
    X, y = regression()
    sw = np.ones(len(y))
    sw[::2] = 0.0
    with pytest.raises(ValueError, match="(?i)sample.?weight"):
        _cy("MLPRegressor", solver=solver, batch_size=1, shuffle=False).fit(X, y, sample_weight=sw)


# --------------------------------------------------------------------------------------
# a few more rows of the table
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_read_only_memmap(name, tmp_path):
    X, y = _data(name)
    path = tmp_path / "X.dat"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    mm[...] = X
    mm.flush()
    del mm
    Xm = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
    ref = quiet_fit(_cy(name), X, y)
    est = quiet_fit(_cy(name), Xm, y)
    assert_same_model(est, ref, Xm, np.asarray(X))


@pytest.mark.parametrize("name", NAMES)
def test_validation_fraction_zero_with_early_stopping(name):
    X, y = _data(name)
    with pytest.raises(ValueError, match="test_size=0.0"):
        _cy(name, early_stopping=True, validation_fraction=0.0).fit(X, y)


@pytest.mark.parametrize("name", NAMES)
def test_batch_size_larger_than_n_is_clipped(name):
    X, y = _data(name)
    with pytest.warns(UserWarning, match="batch_size"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = _cy(name, solver="sgd", batch_size=10 * len(y)).fit(X, y)
    ref = quiet_fit(_cy(name, solver="sgd", batch_size=len(y)), X, y)
    assert_same_model(est, ref, X)
