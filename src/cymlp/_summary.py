"""`estimator.summary()`: a Keras-like table of the fitted network.

One row per layer: the input, every hidden dense layer (its activation, dropout rate and
batch normalization), the output layer (its output activation); then the parameter
counts and the memory the parameters take in the compute dtype. As in Keras, the batch
normalization running means and variances are non-trainable parameters, and the learned
scales and shifts trainable ones.
"""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import NotFittedError

# column titles and widths (the last column is right-aligned)
_COLUMNS = [
    ("Layer (type)", 22),
    ("Output Shape", 15),
    ("Activation", 12),
    ("Dropout / Normalization", 26),
    ("Param #", 12),
]
_WIDTH = sum(width for _, width in _COLUMNS)


def network_config(network):
    """The network's construction arguments (`Network.config()`), with the defaults of
    an engine that predates dropout and batch normalization."""
    config = dict(network.config()) if hasattr(network, "config") else {}
    config.setdefault("layer_units", list(network.layer_units))
    config.setdefault("hidden_activation", network.hidden_activation)
    config.setdefault("output_activation", network.output_activation)
    config.setdefault("dtype", np.dtype(network.dtype).str)
    config.setdefault("dropout", None)
    config.setdefault("batch_norm", False)
    return config


def layer_rows(config):
    """[(name, type, units, activation, note, trainable, non_trainable)] per layer."""
    units = list(config["layer_units"])
    n_hidden = len(units) - 2
    dropout = config.get("dropout") or [0.0] * n_hidden
    batch_norm = bool(config.get("batch_norm"))
    rows = [("input", "InputLayer", units[0], "", "", 0, 0)]
    for i in range(1, len(units)):
        fan_in, fan_out = units[i - 1], units[i]
        hidden = i <= n_hidden
        trainable = fan_in * fan_out
        non_trainable = 0
        notes = []
        if hidden and batch_norm:
            # dense without bias -> batch normalization (scale and shift trainable,
            # running mean and variance not). The network still keeps a zero intercept
            # per hidden unit in its flat buffer; it is never used, so it is not counted.
            trainable += 2 * fan_out
            non_trainable += 2 * fan_out
            notes.append("batch norm")
        else:
            trainable += fan_out  # biases
        if hidden and dropout[i - 1] > 0:
            notes.append(f"dropout {float(dropout[i - 1]):g}")
        name = f"hidden_{i}" if hidden else "output"
        activation = config["hidden_activation"] if hidden else config["output_activation"]
        rows.append(
            (name, "Dense", fan_out, activation, ", ".join(notes), trainable, non_trainable)
        )
    return rows


def readable_size(n_bytes):
    """Bytes as Keras writes them: B, KB, MB, GB in powers of 1024, two decimals."""
    size = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _line(cells):
    out = ""
    for (_, width), cell in zip(_COLUMNS[:-1], cells[:-1]):
        cell = str(cell)
        out += (cell if len(cell) < width else cell[: width - 2] + "…").ljust(width)
    return " " + out + str(cells[-1]).rjust(_COLUMNS[-1][1] - 1)


def summary(estimator):
    """The summary table of a fitted estimator, as a string."""
    network = getattr(estimator, "_network", None)
    if network is None:
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet: the width of its "
            "input layer is only known after fit. Call fit before summary()."
        )
    config = network_config(network)
    dtype = np.dtype(config["dtype"])
    rows = layer_rows(config)
    lines = [
        f'Model: "{type(estimator).__name__}"',
        "_" * _WIDTH,
        _line([title for title, _ in _COLUMNS]),
        "=" * _WIDTH,
    ]
    for k, (name, kind, units, activation, note, trainable, non_trainable) in enumerate(rows):
        if k:
            lines.append("_" * _WIDTH)
        count = f"{trainable + non_trainable:,}"
        lines.append(_line([f"{name} ({kind})", f"(None, {units})", activation, note, count]))
    lines.append("=" * _WIDTH)
    trainable = sum(row[5] for row in rows)
    non_trainable = sum(row[6] for row in rows)
    total = trainable + non_trainable
    for title, count in (
        ("Total params", total),
        ("Trainable params", trainable),
        ("Non-trainable params", non_trainable),
    ):
        lines.append(f"{title}: {count:,} ({readable_size(count * dtype.itemsize)})")
    n_bytes = total * dtype.itemsize
    lines.append(f"Parameter memory: {n_bytes:,} bytes ({readable_size(n_bytes)} in {dtype.name})")
    lines.append("_" * _WIDTH)
    return "\n".join(lines)
