"""
XOR: why a hidden layer is needed
=================================

The XOR gate outputs 1 when exactly one of its two inputs is 1. No straight line
separates its ones from its zeros, so a single-layer perceptron (a network without
hidden layers, ``hidden_layer_sizes=()``: a logistic regression) cannot learn it,
however long it trains. One hidden layer of a few units bends the decision boundary
and learns it. Both models are trained here on noisy copies of the four XOR points,
and their decision boundaries are drawn side by side.
"""

# %%
# The data: the four corners of the unit square, labelled by XOR, each repeated
# with a little noise.
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from cymlp import MLPClassifier

# CYMLP_EXAMPLES_QUICK=1 (the documentation build, the tests) trains briefly
QUICK = os.environ.get("CYMLP_EXAMPLES_QUICK", "0") not in ("", "0")
EPOCHS = 30 if QUICK else 300
# a set number of epochs: no warning when training ends before it has converged
warnings.simplefilter("ignore", ConvergenceWarning)

truth_table = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
xor = np.array([0, 1, 1, 0])
rng = np.random.default_rng(0)
corner = rng.integers(0, 4, size=400)
X = truth_table[corner] + rng.normal(scale=0.15, size=(400, 2))
y = xor[corner]

# %%
# Two networks: no hidden layer (the perceptron) and one hidden layer of 8 ``tanh``
# units. Both have a sigmoid (logistic) output unit, as the target is binary.
models = {
    "perceptron, no hidden layer": MLPClassifier(
        hidden_layer_sizes=(),
        solver="adam",
        learning_rate_init=0.05,
        max_iter=EPOCHS,
        random_state=0,
    ),
    "one hidden layer of 8 units": MLPClassifier(
        hidden_layer_sizes=(8,),
        activation="tanh",
        solver="adam",
        learning_rate_init=0.05,
        max_iter=EPOCHS,
        random_state=0,
    ),
}
for name, model in models.items():
    model.fit(X, y)
    print(f"{name}: training accuracy {model.score(X, y):.2f}")
    print(f"    XOR truth table {xor.tolist()}, predicted {model.predict(truth_table).tolist()}")

# %%
# The decision boundaries: the perceptron can only draw a straight line, which gets
# at most three of the four corners right; the hidden layer carves out both classes.
xx, yy = np.meshgrid(np.linspace(-0.6, 1.6, 200), np.linspace(-0.6, 1.6, 200))
grid = np.column_stack([xx.ravel(), yy.ravel()])
fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), layout="constrained", sharey=True)
for ax, (name, model) in zip(axes, models.items()):
    proba = model.predict_proba(grid)[:, 1].reshape(xx.shape)
    ax.contourf(xx, yy, proba, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    ax.contour(xx, yy, proba, levels=[0.5], colors="k", linewidths=1.5)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", edgecolors="k", linewidths=0.3, s=14)
    ax.set_title(f"{name}\naccuracy {model.score(X, y):.2f}")
    ax.set_xlabel("$x_1$")
axes[0].set_ylabel("$x_2$")
fig.savefig("plot_xor.png", dpi=80)
plt.show()
