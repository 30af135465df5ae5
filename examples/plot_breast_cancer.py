"""
Breast cancer: binary classification next to a random forest
============================================================

The Wisconsin breast-cancer data (569 tumours, 30 measurements each, malignant or
benign) is a binary task: the network gets one sigmoid (logistic) output unit, the
probability of the positive class, trained with the binary cross-entropy. Neural
networks need scaled inputs, so the MLP sits in a pipeline behind a
``StandardScaler``, which learns the scaling on the training rows only. Early
stopping holds out 10 % of the training rows and keeps the best epoch's weights. A
random forest, which needs no scaling, is the baseline; both are compared by test
accuracy and ROC curves.
"""

# %%
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import RocCurveDisplay, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cymlp import MLPClassifier
from cymlp.plot import plot_history

# CYMLP_EXAMPLES_QUICK=1 (the documentation build, the tests) trains briefly
QUICK = os.environ.get("CYMLP_EXAMPLES_QUICK", "0") not in ("", "0")
EPOCHS = 15 if QUICK else 300
# a set number of epochs: no warning when training ends before it has converged
warnings.simplefilter("ignore", ConvergenceWarning)

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

# %%
# The MLP: 30 inputs -> 32 ReLU units -> 1 sigmoid output, in a pipeline with the
# scaler. ``early_stopping=True`` stops once the held-out accuracy has not improved
# for ``n_iter_no_change`` epochs and restores the best weights.
mlp = make_pipeline(
    StandardScaler(),
    MLPClassifier(
        hidden_layer_sizes=(32,),
        activation="relu",
        solver="adam",
        batch_size=32,
        max_iter=EPOCHS,
        early_stopping=True,
        n_iter_no_change=20,
        random_state=0,
    ),
)
forest = RandomForestClassifier(n_estimators=20 if QUICK else 200, random_state=0)
models = {"MLP (StandardScaler + MLPClassifier)": mlp, "random forest": forest}
for name, model in models.items():
    model.fit(X_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
    print(f"{name}: test accuracy {model.score(X_test, y_test):.3f}, ROC AUC {auc:.3f}")
net = mlp[-1]
print(f"MLP output: {net.n_outputs_} unit, {net.out_activation_}; {net.n_iter_} epochs")
print(f"probabilities of the first test rows: {mlp.predict_proba(X_test[:3])[:, 1].round(3)}")

# %%
# ROC curves on the test set, and the MLP's training curves: the held-out
# validation accuracy is what early stopping watched; the dotted line marks the
# best epoch, whose weights the model kept. On 43 held-out rows the accuracy soon
# reaches its ceiling and stops improving while the validation loss still falls:
# on small data, an :class:`~cymlp.callbacks.EarlyStopping` callback watching
# ``'val_loss'`` (see the overfitting example) is often the better stopping rule.
fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
for name, model in zip(["MLP", "random forest"], models.values()):
    RocCurveDisplay.from_estimator(model, X_test, y_test, name=name, ax=axes[0])
axes[0].set_title("test ROC curves")
plot_history(net, ax=axes[1:], metrics=("loss", "score"))
best = int(np.argmax(net.history_["val_score"]))
for ax in axes[1:]:
    ax.axvline(best, color="k", linestyle=":", linewidth=1)
    ax.set_title("MLP training, early stopping")
fig.savefig("plot_breast_cancer.png", dpi=80)
plt.show()
