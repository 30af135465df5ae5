"""
Overfitting: dropout and early stopping
=======================================

A network much larger than its data memorises the training set: its training loss
keeps falling towards zero while the validation loss, after a first dip, climbs
again. That climb is overfitting. Two classic remedies are compared here on a
deliberately small, noisy problem (100 training points of two interleaved half
moons, 17,000 weights): **dropout**, which switches off a random half of the hidden
units at every training step so that no unit can rely on another, and **early
stopping**, which stops once the validation loss has not improved for a while and
keeps the weights of its best epoch. The four loss curves are drawn side by side,
then the decision boundaries.
"""

# %%
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons
from sklearn.exceptions import ConvergenceWarning

from cymlp import MLPClassifier
from cymlp.callbacks import EarlyStopping
from cymlp.plot import plot_history

# CYMLP_EXAMPLES_QUICK=1 (the documentation build, the tests) trains briefly
QUICK = os.environ.get("CYMLP_EXAMPLES_QUICK", "0") not in ("", "0")
EPOCHS = 120 if QUICK else 300
# a set number of epochs: no warning when training ends before it has converged
warnings.simplefilter("ignore", ConvergenceWarning)

X, y = make_moons(n_samples=1100, noise=0.35, random_state=0)
X_train, y_train = X[:100], y[:100]
X_val, y_val = X[100:600], y[100:600]
X_test, y_test = X[600:], y[600:]

# %%
# The same too-large network four times: two hidden layers of 128 ReLU units, no L2
# penalty (``alpha=0``). ``n_iter_no_change=np.inf`` turns scikit-learn's own
# stopping rule off, so that training runs all the epochs unless the
# :class:`~cymlp.callbacks.EarlyStopping` callback stops it.
common = dict(
    hidden_layer_sizes=(128, 128),
    alpha=0.0,
    batch_size=16,
    learning_rate_init=0.003,
    max_iter=EPOCHS,
    n_iter_no_change=np.inf,
    random_state=0,
)


def early_stopping():
    return [EarlyStopping(monitor="val_loss", patience=20, restore_best_weights=True)]


models = {
    "no regularisation": MLPClassifier(**common),
    "dropout 0.5": MLPClassifier(dropout=0.5, **common),
    "early stopping": MLPClassifier(callbacks=early_stopping(), **common),
    "dropout + early stopping": MLPClassifier(dropout=0.5, callbacks=early_stopping(), **common),
}
for name, model in models.items():
    model.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    loss, val_loss = model.history_["loss"], model.history_["val_loss"]
    print(
        f"{name:>25}: {model.n_iter_:3d} epochs, training loss {loss[-1]:.3f}, "
        f"validation loss lowest {min(val_loss):.3f} / last {val_loss[-1]:.3f}, "
        f"test accuracy {model.score(X_test, y_test):.3f}"
    )

# %%
# Loss curves. Without regularisation the two curves part ways: the training loss
# goes to zero while the validation loss climbs far above its lowest point. Dropout
# (its training loss is measured with units dropped, hence noisier and higher)
# slows the climb, but with 100 training points it does not stop it. Early stopping
# ends training 20 epochs (its ``patience``) after the lowest validation loss and
# puts back the weights of that epoch.
fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), layout="constrained", sharey=True)
for ax, (name, model) in zip(axes, models.items()):
    plot_history(model, ax=ax)
    ax.set_title(name)
    ax.set_xlim(0, EPOCHS)
fig.savefig("plot_overfitting.png", dpi=70)

# %%
# Decision boundaries: the networks trained to the end bend around single noisy
# points of the training set (the dots); the early-stopped ones stay smooth.
xx, yy = np.meshgrid(np.linspace(-2, 3, 150), np.linspace(-1.6, 2.1, 150))
grid = np.column_stack([xx.ravel(), yy.ravel()])
fig, axes = plt.subplots(1, 4, figsize=(16, 3.4), layout="constrained", sharey=True)
for ax, (name, model) in zip(axes, models.items()):
    proba = model.predict_proba(grid)[:, 1].reshape(xx.shape)
    ax.contourf(xx, yy, proba, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
    ax.contour(xx, yy, proba, levels=[0.5], colors="k", linewidths=1)
    ax.scatter(*X_train.T, c=y_train, cmap="RdBu_r", edgecolors="k", linewidths=0.3, s=14)
    ax.set_title(f"{name}: test accuracy {model.score(X_test, y_test):.2f}")
fig.savefig("plot_overfitting_boundaries.png", dpi=70)
plt.show()
