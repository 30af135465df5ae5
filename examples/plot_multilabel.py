"""
Multilabel: one sigmoid output per label
========================================

In multilabel classification a sample can belong to several classes at once, like
a film that is both a comedy and a drama. Softmax would force the classes to compete
for one probability; instead the network gets one sigmoid (logistic) output per
label, each a yes/no probability of its own, trained with the binary cross-entropy
summed over the labels. cymlp chooses this head by itself when ``y`` is a 0/1
indicator matrix. The data come from ``make_multilabel_classification``: 5 labels,
about 2 per sample.
"""

# %%
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score, hamming_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from cymlp import MLPClassifier
from cymlp.callbacks import EarlyStopping

# CYMLP_EXAMPLES_QUICK=1 (the documentation build, the tests) trains briefly
QUICK = os.environ.get("CYMLP_EXAMPLES_QUICK", "0") not in ("", "0")
EPOCHS = 15 if QUICK else 200
# a set number of epochs: no warning when training ends before it has converged
warnings.simplefilter("ignore", ConvergenceWarning)

X, Y = make_multilabel_classification(
    n_samples=1500, n_features=20, n_classes=5, n_labels=2, random_state=0
)
X_train, X_test, Y_train, Y_test = train_test_split(X, Y, random_state=0)
X_train, X_val, Y_train, Y_val = train_test_split(X_train, Y_train, random_state=0)
print(f"Y is a {Y.shape} indicator matrix; labels per sample: {Y.sum(axis=1).mean():.2f}")
scaler = StandardScaler().fit(X_train)  # learnt on the training rows only
X_train, X_val, X_test = (
    scaler.transform(X_train),
    scaler.transform(X_val),
    scaler.transform(X_test),
)

# %%
# 20 inputs -> 64 ReLU units -> 5 sigmoid outputs. The validation targets are an
# indicator matrix too; an :class:`~cymlp.callbacks.EarlyStopping` callback watches
# the validation loss and puts back the weights of its best epoch.
clf = MLPClassifier(
    hidden_layer_sizes=(64,),
    batch_size=32,
    max_iter=EPOCHS,
    callbacks=[EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)],
    random_state=0,
)
clf.fit(X_train, Y_train, X_val=X_val, y_val=Y_val)
best = int(np.argmin(clf.history_["val_loss"]))
print(f"output: {clf.n_outputs_} units, {clf.out_activation_}")
print(f"{clf.n_iter_} epochs, best validation loss {clf.history_['val_loss'][best]:.3f} at {best}")

proba = clf.predict_proba(X_test)  # (n_samples, 5): one probability per label
Y_pred = clf.predict(X_test)  # each probability thresholded at 0.5
print(f"exact match (all 5 labels right): {clf.score(X_test, Y_test):.3f}")
print(f"Hamming loss (share of wrong labels): {hamming_loss(Y_test, Y_pred):.3f}")
per_label = f1_score(Y_test, Y_pred, average=None)
print("F1 per label:", np.round(per_label, 3))

# %%
# The first 30 test samples: the true labels, and the probability the network gives
# each label. Each row of probabilities is independent: they need not sum to 1.
fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained", sharey=True)
rows = slice(0, 30)
for ax, data, title in [
    (axes[0], Y_test[rows], "true labels"),
    (axes[1], proba[rows], "predicted probabilities"),
]:
    image = ax.imshow(data.T, vmin=0, vmax=1, cmap="Blues", aspect="auto")
    ax.set_title(title)
    ax.set_xlabel("test sample")
axes[0].set_yticks(range(5), [f"label {k}" for k in range(5)])
fig.colorbar(image, ax=axes[1], shrink=0.8)
fig.savefig("plot_multilabel.png", dpi=80)
plt.show()
