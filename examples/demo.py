"""cymlp next to scikit-learn on the bundled digits data: same parameters, same seed.

Run: python examples/demo.py
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP

from cymlp import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0)
params = dict(hidden_layer_sizes=(100,), solver="adam", batch_size=32, max_iter=50, random_state=0)

print(f"digits: {X_train.shape[0]} training rows, {X.shape[1]} features, 10 classes")
print(f"parameters: {params}\n")
results = {}
for name, cls in [("scikit-learn", SklearnMLP), ("cymlp", MLPClassifier)]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model = cls(**params).fit(X_train, y_train)
        seconds = time.perf_counter() - start
    results[name] = model
    print(
        f"{name:>12}: fit {seconds:6.3f} s, test accuracy {model.score(X_test, y_test):.4f}, "
        f"final loss {model.loss_:.6f}"
    )

sk, cy = results["scikit-learn"], results["cymlp"]
diff = max(np.max(np.abs(a - b)) for a, b in zip(sk.coefs_, cy.coefs_))
print(f"\nlargest difference between the two models' weights: {diff:.2e}")
print("predictions identical:", bool(np.all(sk.predict(X_test) == cy.predict(X_test))))
