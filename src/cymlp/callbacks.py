"""Callbacks: objects the epoch loop calls at the start and end of training and after
every epoch (Keras's callback protocol, on scikit-learn estimators)."""


class Callback:
    """Base class of the callbacks: override the hooks you need."""

    def on_train_begin(self, estimator, logs):
        """Called once before the first epoch of `fit`."""

    def on_epoch_end(self, estimator, epoch, logs):
        """Called after every epoch; return True to stop training after it."""
        return False

    def on_train_end(self, estimator, logs):
        """Called once after the last epoch of `fit`."""
