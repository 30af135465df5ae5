"""
Handwritten digits: multiclass classification with a softmax output
===================================================================

The 8×8 digits that ship with scikit-learn (1797 images, ten classes) are the
small cousin of MNIST. A network with one hidden layer and a softmax output (chosen
automatically for a multiclass target, with the cross-entropy loss) is trained on
60 % of them, watched on a validation set after every epoch (``X_val`` / ``y_val``,
Keras's ``validation_data``), and evaluated once on a test set it never saw. The
training and validation curves come from ``history_`` through
:func:`cymlp.plot.plot_history`; the confusion matrix shows which digits it mixes up.
"""

# %%
# Split the data three ways: training, validation (watched during training) and
# test (used once, at the end). Pixel values 0..16 are scaled to 0..1.
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from cymlp import MLPClassifier
from cymlp.plot import plot_history

# CYMLP_EXAMPLES_QUICK=1 (the documentation build, the tests) trains briefly
QUICK = os.environ.get("CYMLP_EXAMPLES_QUICK", "0") not in ("", "0")
EPOCHS = 10 if QUICK else 60
# a set number of epochs: no warning when training ends before it has converged
warnings.simplefilter("ignore", ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
X_train, X_val, y_train, y_val = train_test_split(X_train, y_train, test_size=0.25, random_state=0)
print(f"train {len(X_train)}, validation {len(X_val)}, test {len(X_test)} images")

# %%
# Build and train: 64 inputs -> 128 ReLU units -> 10 softmax outputs, Adam on
# mini-batches of 32. The validation loss and accuracy are recorded every epoch.
clf = MLPClassifier(
    hidden_layer_sizes=(128,),
    activation="relu",
    solver="adam",
    batch_size=32,
    max_iter=EPOCHS,
    random_state=0,
)
clf.fit(X_train, y_train, X_val=X_val, y_val=y_val)
print(clf.summary())
print(f"output activation: {clf.out_activation_}, epochs: {clf.n_iter_}")
print(f"validation accuracy after the last epoch: {clf.history_['val_score'][-1]:.3f}")
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")

# %%
# Training and validation curves. The training loss keeps falling; the validation
# loss flattens out once the network has learnt what generalises.
axes = plot_history(clf, metrics=("loss", "score"))
axes[0].figure.suptitle("digits: one hidden layer of 128 units")
axes[0].figure.savefig("plot_digits_history.png", dpi=80)

# %%
# The confusion matrix on the test set: rows are the true digits, columns the
# predicted ones; everything off the diagonal is a mistake.
y_pred = clf.predict(X_test)
disp = ConfusionMatrixDisplay.from_predictions(y_test, y_pred, colorbar=False)
disp.ax_.set_title(f"test accuracy {np.mean(y_pred == y_test):.3f}")
disp.figure_.set_size_inches(4.6, 4.6)
disp.figure_.savefig("plot_digits_confusion.png", dpi=80, bbox_inches="tight")
mistakes = np.argwhere(disp.confusion_matrix - np.diag(np.diag(disp.confusion_matrix)))
print("mixed up (true -> predicted):", [f"{i}->{j}" for i, j in mistakes])
plt.show()
