"""scikit-learn's estimator contract (`parametrize_with_checks`).

Small networks keep this quick. scikit-learn's own MLPs pass every one of these checks
with the same settings (float64), so in float64 no check is expected to fail. The
expected failures are for the estimator forced to compute in float32, and for one given
callbacks (see below).
"""

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

import cymlp
from cymlp.callbacks import EarlyStopping

ESTIMATORS = [
    cymlp.MLPClassifier(hidden_layer_sizes=(10,), max_iter=100, random_state=0),
    cymlp.MLPRegressor(max_iter=100, random_state=0),
    cymlp.MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=50, random_state=0),
    cymlp.MLPRegressor(hidden_layer_sizes=(20,), solver="sgd", max_iter=100, random_state=0),
    cymlp.MLPClassifier(hidden_layer_sizes=(10,), max_iter=100, random_state=0, dtype=np.float32),
    cymlp.MLPRegressor(
        max_iter=100, random_state=0, callbacks=[EarlyStopping(monitor="loss", patience=3)]
    ),
]


FLOAT32_REASON = (
    "the check compares a sample-weighted fit with a fit on repeated rows using "
    "assert_allclose's default rtol=1e-7, which is below float32 resolution "
    "(eps = 1.2e-7): the two fits differ only by float32 summation order"
)


CALLBACKS_REASON = (
    "callbacks keep their state on themselves, as Keras's do (EarlyStopping's best and "
    "stopped_epoch are read after fit): fit changes the callbacks parameter's objects"
)


def expected_failed_checks(estimator):
    if getattr(estimator, "dtype", None) is np.float32:
        return {
            "check_sample_weight_equivalence_on_dense_data": FLOAT32_REASON,
            "check_sample_weight_equivalence_on_sparse_data": FLOAT32_REASON,
        }
    if estimator.callbacks:
        return {"check_estimators_overwrite_params": CALLBACKS_REASON}
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
