"""
Diabetes: regression with an identity output
============================================

Predicting a number instead of a class: the diabetes data (442 patients, 10
measurements) has as target a measure of disease progression one year later. A
regression network has no activation on its output unit (the identity) and is
trained on the mean squared error. Both the inputs and the target are standardised
(``StandardScaler`` in a pipeline for the inputs, ``TransformedTargetRegressor`` for
the target, which predicts back in the target's units), so the default learning rate
suits the problem. A linear model (ridge regression) is the baseline; the plots put
each model's predictions against the true values.
"""

# %%
import os
import warnings

import matplotlib.pyplot as plt
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cymlp import MLPRegressor

# CYMLP_EXAMPLES_QUICK=1 (the documentation build, the tests) trains briefly
QUICK = os.environ.get("CYMLP_EXAMPLES_QUICK", "0") not in ("", "0")
EPOCHS = 20 if QUICK else 500
# a set number of epochs: no warning when training ends before it has converged
warnings.simplefilter("ignore", ConvergenceWarning)

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

# %%
# The network: 10 inputs -> 16 ReLU units -> 1 identity output, squared error, a
# little L2 penalty (``alpha``) and early stopping against overfitting on 331
# training rows.
mlp = TransformedTargetRegressor(
    regressor=make_pipeline(
        StandardScaler(),
        MLPRegressor(
            hidden_layer_sizes=(16,),
            activation="relu",
            loss="squared_error",
            alpha=1e-2,
            batch_size=16,
            max_iter=EPOCHS,
            early_stopping=True,
            n_iter_no_change=20,
            random_state=0,
        ),
    ),
    transformer=StandardScaler(),
)
ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=[0.1, 1, 10, 100]))
models = {"MLP": mlp, "ridge regression": ridge}
predictions = {}
for name, model in models.items():
    model.fit(X_train, y_train)
    predictions[name] = model.predict(X_test)
    r2 = r2_score(y_test, predictions[name])
    mae = mean_absolute_error(y_test, predictions[name])
    print(f"{name}: test R² {r2:.3f}, mean absolute error {mae:.1f}")
net = mlp.regressor_[-1]
print(f"MLP output activation: {net.out_activation_}; {net.n_iter_} epochs")

# %%
# Predicted against true values on the test set: a perfect model puts every point
# on the diagonal. Neither does much better than the other here: with 10 features
# and a few hundred patients, most of the signal is linear.
fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), layout="constrained", sharey=True)
lims = [y.min() - 10, y.max() + 10]
for ax, (name, pred) in zip(axes, predictions.items()):
    ax.scatter(y_test, pred, s=14, alpha=0.7)
    ax.plot(lims, lims, color="k", linewidth=1)
    ax.set_xlim(lims)
    ax.set_ylim(lims)
    ax.set_aspect("equal")
    ax.set_title(f"{name}: R² {r2_score(y_test, pred):.2f}")
    ax.set_xlabel("true progression")
axes[0].set_ylabel("predicted progression")
fig.savefig("plot_diabetes.png", dpi=80)
plt.show()
