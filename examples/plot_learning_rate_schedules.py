"""
Learning-rate schedules: constant, step decay, reduce on plateau
================================================================

A learning rate large enough to make fast progress early on is too large near the
end: the weights keep jumping around the minimum and the validation loss bounces.
Lowering the rate as training goes on (learning-rate decay) settles them. Two
callbacks do it the Keras way: :class:`~cymlp.callbacks.LearningRateScheduler` sets
the rate of every epoch from a function of the epoch (here a step decay, halving it
every 10 epochs), and :class:`~cymlp.callbacks.ReduceLROnPlateau` halves it whenever
the validation loss has not improved for a few epochs. The three runs train the
same network on the digits with SGD (momentum 0.9) from the same rate, 0.2; the rate of
every epoch is drawn under each run's curves.
"""

# %%
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from cymlp import MLPClassifier
from cymlp.callbacks import LearningRateScheduler, ReduceLROnPlateau
from cymlp.plot import plot_history

# CYMLP_EXAMPLES_QUICK=1 (the documentation build, the tests) trains briefly
QUICK = os.environ.get("CYMLP_EXAMPLES_QUICK", "0") not in ("", "0")
EPOCHS = 20 if QUICK else 50
# a set number of epochs: no warning when training ends before it has converged
warnings.simplefilter("ignore", ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.2, random_state=0)
X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_size=0.25, random_state=0)

# %%
# The schedules. ``schedule(epoch, lr)`` gets the epoch's number (from 0) and the
# current rate and returns the rate for that epoch.
INITIAL_RATE = 0.2


def step_decay(epoch, lr):
    return INITIAL_RATE * 0.5 ** (epoch // 10)


schedules = {
    "constant rate": [],
    "step decay (LearningRateScheduler)": [LearningRateScheduler(step_decay)],
    "ReduceLROnPlateau": [
        ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, min_lr=1e-4)
    ],
}
models = {}
for name, callbacks in schedules.items():
    model = MLPClassifier(
        hidden_layer_sizes=(64,),
        solver="sgd",
        learning_rate_init=INITIAL_RATE,
        momentum=0.9,
        batch_size=16,
        max_iter=EPOCHS,
        n_iter_no_change=np.inf,  # train all the epochs
        callbacks=callbacks,
        random_state=0,
    )
    models[name] = model.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    val_loss = model.history_["val_loss"]
    print(
        f"{name:>35}: final rate {model.history_['learning_rate'][-1]:.2g}, "
        f"validation loss lowest {min(val_loss):.3f} / last {val_loss[-1]:.3f} "
        f"(spread over the last 10 epochs {np.std(val_loss[-10:]):.3f}), "
        f"test accuracy {model.score(X_test, y_test):.3f}"
    )

# %%
# With the constant rate the validation loss keeps jumping up and down; each
# schedule lowers the rate (bottom row) and the curves settle.
fig, axes = plt.subplots(
    2,
    3,
    figsize=(14, 5.5),
    layout="constrained",
    sharex=True,
    sharey="row",
    height_ratios=[2, 1],
)
for column, (name, model) in zip(axes.T, models.items()):
    plot_history(model, ax=column, metrics=("loss", "learning_rate"))
    column[0].set_yscale("log")
    column[0].set_title(name)
    column[0].set_xlabel("")
fig.savefig("plot_learning_rate_schedules.png", dpi=70)
plt.show()
