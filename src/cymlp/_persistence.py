"""Model files: `estimator.save(path)` and `cymlp.load(path)`.

A model file is a zip archive of .npy arrays written by numpy (`np.savez`) and read with
`allow_pickle=False`, so loading one never executes code. One member, `header`, holds a
UTF-8 JSON document: the format version, the estimator class, its parameters and its
scalar fitted state, with the SHA-256 of every other member; the other members are plain
numeric (or fixed-width unicode) arrays: the flat parameter buffer, the optimizer state,
classes, feature names, curves, the training history, batch-normalization running
statistics.

Format versions: 2 stores the network's construction arguments (`Network.config()`:
dropout, batch normalization, robust losses) and its running statistics, the history and
the optimizer's base step size; version 1 (four network fields) is still read. Version 3
is version 2 with cymlp's own callbacks among the parameters (stored by class name and
constructor arguments); a file without them is still written as version 2, which earlier
releases read.

JSON has no tuples, typed dict keys, numpy dtypes or infinities, so values are written in
a small tagged form (`_encode` / `_decode`) that gives back the same types.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import math
import os
import pathlib
import secrets
import stat
import warnings
import zipfile
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import LabelBinarizer

from . import callbacks
from ._convert import FITTED_CURVES, FITTED_SCALARS
from ._engine import Network, parameter_count

if TYPE_CHECKING:
    from ._classes import MLPClassifier, MLPRegressor
    from ._typing import PathLike

FORMAT_NAME = "cymlp-model"
FORMAT_VERSION = 3  # the newest version read and written
# The callbacks a model file can hold: cymlp's own whose constructor arguments are data
# (LearningRateScheduler's is a function) and harmless from a file of unknown origin
# (ModelCheckpoint's path would let the file choose what the next fit overwrites).
# Subclasses are code: never stored.
STORABLE_CALLBACKS = ("EarlyStopping", "ReduceLROnPlateau", "TerminateOnNaN")


class _Unstorable(Exception):
    pass


# ------------------------------------------------------------------ typed JSON values
def _encode(value):
    """A JSON-ready form of a parameter value that _decode turns back into the same
    value of the same type. Raises _Unstorable for anything else (a RandomState, a
    function, an arbitrary object)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        if not isinstance(value, (np.bool_, np.integer, np.floating)):
            raise _Unstorable(value)
        return {"np_scalar": value.dtype.str, "value": _encode(value.item())}
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else {"float": repr(value)}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"dict": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, np.dtype):
        return {"dtype": value.str}
    if isinstance(value, type) and issubclass(value, np.generic):
        return {"scalar_type": np.dtype(value).str}
    if isinstance(value, os.PathLike):  # e.g. ModelCheckpoint's filepath
        return {"path": os.fsdecode(value)}
    if isinstance(value, callbacks.Callback):
        name = type(value).__name__
        if name not in STORABLE_CALLBACKS or type(value) is not getattr(callbacks, name):
            raise _Unstorable(value)
        return {"callback": name, "args": _encode(value._init_args())}
    raise _Unstorable(value)


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"np_scalar", "value"}:
        dtype = _numeric_dtype(value["np_scalar"])
        if dtype.kind == "U":
            raise ValueError(f"dtype {value['np_scalar']!r} is not a numeric scalar's")
        return dtype.type(_decode(value["value"]))
    if set(value) == {"float"}:
        if value["float"] not in ("inf", "-inf", "nan"):
            raise ValueError(f"bad float {value['float']!r}")
        return float(value["float"])
    if set(value) == {"tuple"}:
        return tuple(_decode(v) for v in value["tuple"])
    if set(value) == {"dict"}:
        return {_decode(k): _decode(v) for k, v in value["dict"]}
    if set(value) == {"dtype"}:
        return _numeric_dtype(value["dtype"])
    if set(value) == {"scalar_type"}:
        return _numeric_dtype(value["scalar_type"]).type
    if set(value) == {"path"}:
        return pathlib.Path(value["path"])
    if set(value) == {"callback", "args"}:
        if value["callback"] not in STORABLE_CALLBACKS:
            raise ValueError(f"unknown callback {value['callback']!r}")
        return getattr(callbacks, value["callback"])(**_decode(value["args"]))
    raise ValueError(f"unknown tagged value {sorted(value)}")


def _numeric_dtype(text):
    dtype = np.dtype(text)
    if dtype.kind not in "biufU":
        raise ValueError(f"dtype {text!r} is not allowed in a model file")
    return dtype


# ------------------------------------------------------------------------------ save
def save(estimator, path):
    """Write a fitted estimator to `path` (atomically: an existing file is only
    replaced once the new one is complete)."""
    if not hasattr(estimator, "_network"):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet; fit it before saving."
        )
    estimator._sync_params()
    params = {}
    for name, value in estimator.get_params(deep=False).items():
        try:
            params[name] = _encode(value)
        except _Unstorable:
            warnings.warn(
                f"Parameter {name}={value!r} cannot be stored in a model file; it is saved "
                "as None.",
                UserWarning,
                stacklevel=3,
            )
            params[name] = None

    arrays = {"params": estimator._network.params}
    state = {}
    for name in FITTED_SCALARS:  # stored in the header's "state"; only these are restored
        if hasattr(estimator, name):
            state[name] = _encode(_plain(getattr(estimator, name)))
    for name in FITTED_CURVES:
        if getattr(estimator, name, None) is not None:
            arrays[name] = np.asarray(getattr(estimator, name), dtype=np.float64)
    if hasattr(estimator, "_best_params"):
        arrays["best_params"] = estimator._best_params
    if getattr(estimator, "_best_running", None) is not None:
        arrays["best_running"] = estimator._best_running  # with _best_params (early stopping)
    if hasattr(estimator, "feature_names_in_"):
        arrays["feature_names_in_"] = _text_array(estimator.feature_names_in_)
    network = estimator._network
    state["network"] = _network_config(network)
    running = getattr(network, "running", None)
    if running is not None:
        arrays["running"] = running
    history = getattr(estimator, "history_", None)
    if history is not None:
        keys: list[str] = []
        for key, values in history.items():
            try:
                values = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError):
                values = None
            if not isinstance(key, str) or values is None or values.ndim != 1:
                warnings.warn(
                    f"history_[{key!r}] is not a list of numbers; it is not saved.",
                    UserWarning,
                    stacklevel=3,
                )
                continue
            arrays[f"history_{len(keys)}"] = values
            keys.append(key)
        state["history_keys"] = keys
    optimizer = getattr(estimator, "_optimizer", None)
    if optimizer is not None:
        state["optimizer"] = {
            "kind": optimizer.kind,
            "learning_rate": float(optimizer.learning_rate),
            "base_learning_rate": float(
                getattr(optimizer, "base_learning_rate", optimizer.learning_rate)
            ),
            "t": int(getattr(optimizer, "t", 0)),
        }
        for i, buf in enumerate(optimizer.state_arrays()):
            arrays[f"optimizer_{i}"] = buf
    if hasattr(estimator, "_label_binarizer"):
        lb = estimator._label_binarizer
        arrays["classes_"], kind = _classes_array(lb.classes_)
        state["label_binarizer"] = {
            "y_type_": lb.y_type_,
            "classes_kind": kind,
            "sparse_input_": bool(lb.sparse_input_),
        }

    header = {
        "format": FORMAT_NAME,
        # the lowest version that holds the file's content, so that earlier releases
        # read what they can
        "format_version": 3 if params.get("callbacks") else 2,
        "estimator": type(estimator).__name__,
        "params": params,
        "state": state,
        "sha256": {k: _digest(v) for k, v in arrays.items()},
    }
    members: dict[str, Any] = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
    members.update(arrays)

    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError("The path to save to is empty.")
    target = os.path.realpath(path)  # a symbolic link's target, which open() would write
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "Is a directory: cannot save a model as it", path)
    # written next to the target, then renamed over it: never a half-written model file
    # (the name cut so that the temporary one stays within the usual 255-byte limit)
    tmp = os.path.join(
        os.path.dirname(target), f".{os.path.basename(target)[:200]}.{secrets.token_hex(6)}.tmp"
    )
    try:
        try:
            f = open(tmp, "xb")  # new files get the permissions open() gives (the umask's)
        except OSError as exc:  # e.g. a missing folder: name the user's path, not tmp
            raise type(exc)(exc.errno, exc.strerror, path) from None
        with f:
            np.savez(f, **members)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(target):  # replacing a file keeps its permissions
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(tmp, target)
    except FileExistsError:  # tmp is another writer's (a 48-bit name taken): not ours
        raise
    except BaseException:
        # also after a Ctrl-C right after open() (tmp made, f not yet ours) or right after
        # the rename (tmp gone, the model saved)
        with contextlib.suppress(OSError):  # (none made: the error is open()'s)
            os.unlink(tmp)
        raise


def _network_config(network):
    """The network's construction arguments as JSON (dtype as its string)."""
    if hasattr(network, "config"):
        config = dict(network.config())
    else:  # an engine without Network.config: the version 1 fields
        config = {
            "layer_units": network.layer_units,
            "hidden_activation": network.hidden_activation,
            "output_activation": network.output_activation,
        }
    config["layer_units"] = [int(u) for u in config["layer_units"]]
    config["dtype"] = np.dtype(network.dtype).str
    return config


def _plain(value):
    """numpy scalars in fitted attributes as Python numbers."""
    return value.item() if isinstance(value, np.generic) else value


def _digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _text_array(values):
    return np.asarray([str(v) for v in values], dtype=np.str_)


def _classes_array(classes):
    """classes_ as an array numpy can store without pickle, and how to restore it."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "biuf":
        return classes, "numeric"
    if classes.dtype.kind == "U":
        return classes, "unicode"
    if classes.dtype == object and all(isinstance(c, str) for c in classes):
        return classes.astype(np.str_), "object_str"
    raise ValueError(
        "Only numeric or string class labels can be saved in a model file (no pickle); "
        f"got classes of dtype {classes.dtype}."
    )


# ------------------------------------------------------------------------------ load
def load(path: PathLike) -> MLPClassifier | MLPRegressor:
    """Load an estimator saved with its ``save`` method.

    A model file is a zip of plain numpy arrays and a JSON header, read with
    ``allow_pickle=False``: loading one never runs code from the file.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.

    Returns
    -------
    estimator : MLPClassifier or MLPRegressor
        The fitted estimator, as it was saved: it predicts identically, and
        ``partial_fit`` (or a ``warm_start`` fit) continues its training with the saved
        optimizer state.

    Raises
    ------
    ValueError
        If the file is not a cymlp model file, is truncated or damaged (its checksums
        do not match), or was written by a newer model-file format version. The
        message names the problem.

    See Also
    --------
    MLPClassifier.save, MLPRegressor.save : Write a model file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> import cymlp
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = cymlp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=1000,
    ...                           random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "iris.cymlp")
    >>> clf.save(path)
    >>> np.array_equal(cymlp.load(path).predict_proba(X), clf.predict_proba(X))
    True
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise ValueError(f"{path!r} is a directory, not a cymlp model file") from None
    if not data:
        raise ValueError(f"{path!r} is empty: not a cymlp model file")
    if not data.startswith(b"PK"):
        raise ValueError(
            f"{path!r} is not a cymlp model file (not a zip archive of "
            "numpy arrays; pickles are never loaded)"
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            header = _read_header(npz, path)
            # only the members the header lists (and checks) are read
            listed = header.get("sha256")
            if not isinstance(listed, dict) or set(npz.files) != set(listed) | {"header"}:
                raise ValueError(f"{path!r} has members its header does not list")
            _check_member_sizes(npz.zip, listed, path)
            members = {name: npz[name] for name in listed}
    # (zipfile raises NotImplementedError for an unknown compression method or version
    # and RuntimeError for an encrypted member: damage can make either appear)
    except (
        zipfile.BadZipFile,
        ValueError,
        OSError,
        EOFError,
        KeyError,
        NotImplementedError,
        RuntimeError,
        MemoryError,  # an array whose .npy header claims more than memory holds
    ) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(repr(path)):
            raise
        raise ValueError(f"{path!r} is damaged or truncated: {exc}") from None
    try:
        return _restore(header, members)
    except ValueError as exc:
        raise ValueError(f"{path!r} is not a valid cymlp model file: {exc}") from None
    except (
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        OverflowError,
        RecursionError,
        MemoryError,
    ) as exc:
        raise ValueError(
            f"{path!r} is not a valid cymlp model file: bad or missing {type(exc).__name__}: {exc}"
        ) from None


def _check_member_sizes(zf, names, path):
    """Each member stored uncompressed, as save writes them, and its array no larger than
    the bytes it holds (by its .npy header, read before the array): reading a model file
    then takes no more memory than its size, however it was made."""
    for name in names:
        info = zf.getinfo(f"{name}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"{path!r} has a compressed member {name!r}: not a cymlp model file")
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(f)
        if math.prod(shape) * dtype.itemsize > info.file_size:
            raise ValueError(f"{path!r}: member {name!r} claims more data than it holds")


def _read_header(npz, path):
    """The JSON header of an opened model file, checked to be a cymlp one whose version
    this release reads."""
    if "header" not in npz.files:
        raise ValueError(f"{path!r} has no header: not a cymlp model file")
    raw = npz["header"]
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{path!r} has a damaged header")
    try:
        header = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path!r} has a damaged header: {type(exc).__name__}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(f"{path!r} is not a cymlp model file")
    version = header.get("format_version")
    if type(version) is not int or version < 1:
        raise ValueError(f"{path!r} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written in model-file format version {version}; this cymlp "
            f"reads versions 1 to {FORMAT_VERSION}. Upgrade cymlp to load it."
        )
    return header


def _restore(header, arrays):
    from ._classes import MLPClassifier, MLPRegressor

    # Version 1 differs only by what it lacks: its network entry has four fields (the
    # defaults of the others give the same network), and it has no running statistics,
    # history or base step size. So both versions are read by the same code.
    for name, digest in header["sha256"].items():
        if name not in arrays or _digest(arrays[name]) != digest:
            raise ValueError(f"array {name!r} is missing or damaged (checksum mismatch)")
    for name, array in arrays.items():
        # labels may be numbers or text, feature names text, all else is floats
        kinds = "biufU" if name == "classes_" else "U" if name == "feature_names_in_" else "f"
        if array.dtype.kind not in kinds:
            raise ValueError(f"array {name!r} has a disallowed dtype {array.dtype}")
    classes = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
    cls = classes[header["estimator"]]
    params = {name: _decode(value) for name, value in header["params"].items()}
    estimator = cls(**params)
    state = header["state"]

    net = dict(state["network"])
    net["dtype"] = _numeric_dtype(net["dtype"])
    _check_network_size(net, arrays["params"])  # before allocating what the header says
    network = Network(**net)
    if not np.isfinite(arrays["params"]).all():
        raise ValueError("the weights are not all finite")
    _copy_into(network.params, arrays["params"], "params")
    if "running" in arrays:
        _copy_into(network.running, arrays["running"], "running")
    elif getattr(network, "running", np.empty(0)).size:
        raise ValueError("the running statistics of batch normalization are missing")
    estimator._network = network
    for name in FITTED_SCALARS:
        if name in state:
            setattr(estimator, name, _decode(state[name]))
    if "history_keys" in state:
        keys = state["history_keys"]
        if not all(isinstance(k, str) for k in keys):
            raise ValueError("history keys are not strings")
        estimator.history_ = {
            key: [float(v) for v in arrays[f"history_{i}"]] for i, key in enumerate(keys)
        }
    if (
        not isinstance(estimator.n_features_in_, Integral)
        or network.layer_units[0] != estimator.n_features_in_
    ):
        raise ValueError("n_features_in_ does not match the network")
    for name in FITTED_CURVES:
        if name in arrays:
            setattr(estimator, name, [float(v) for v in arrays[name]])
        elif estimator.solver != "lbfgs":
            setattr(estimator, name, None)
    if "best_params" in arrays:
        estimator._best_params = network.params.copy()
        _copy_into(estimator._best_params, arrays["best_params"], "best_params")
    if "best_running" in arrays:
        estimator._best_running = network.running.copy()
        _copy_into(estimator._best_running, arrays["best_running"], "best_running")
    if "feature_names_in_" in arrays:
        estimator.feature_names_in_ = arrays["feature_names_in_"].astype(object)
    if "label_binarizer" in state:
        info = state["label_binarizer"]
        labels = arrays["classes_"]
        if info["classes_kind"] == "object_str":
            labels = labels.astype(object)
        lb = LabelBinarizer()
        lb.classes_ = labels
        lb.y_type_ = str(info["y_type_"])
        lb.sparse_input_ = bool(info["sparse_input_"])
        estimator._label_binarizer = lb
        estimator.classes_ = labels
    if "optimizer" in state:
        from ._training import OPTIMIZER_KINDS, make_optimizer

        info = state["optimizer"]
        if info["kind"] not in OPTIMIZER_KINDS:
            raise ValueError(f"unknown optimizer {info['kind']!r} in the model file")
        # the saved optimizer's kind, which a solver set after the fit may differ from (as
        # in memory, partial_fit goes on with the optimizer it has)
        optimizer = make_optimizer(estimator, network, info["kind"])
        n_saved = sum(name.startswith("optimizer_") for name in arrays)
        if n_saved != len(optimizer.state_arrays()):
            raise ValueError(
                f"the {info['kind']} optimizer has {len(optimizer.state_arrays())} state "
                f"arrays, the model file {n_saved}"
            )
        if hasattr(optimizer, "t"):
            optimizer.t = _count(info["t"], "the optimizer's step count")
        if "base_learning_rate" in info and hasattr(optimizer, "set_base_learning_rate"):
            # a schedule or ReduceLROnPlateau may have changed it (Adam: learning_rate_init)
            optimizer.set_base_learning_rate(float(info["base_learning_rate"]))
        optimizer.learning_rate = float(info["learning_rate"])
        for i, buf in enumerate(optimizer.state_arrays()):
            _copy_into(buf, arrays[f"optimizer_{i}"], f"optimizer_{i}")
        estimator._optimizer = optimizer
    for name in ("n_iter_", "t_", "n_outputs_", "n_layers_"):
        if not isinstance(getattr(estimator, name), Integral):
            raise ValueError(f"{name} is not an integer")
        _count(getattr(estimator, name), name)
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and names.shape != (estimator.n_features_in_,):
        raise ValueError("feature_names_in_ does not name each feature once")
    if not isinstance(estimator.loss_, Real):
        raise ValueError("loss_ is not a number")
    _check_outputs(estimator, network)
    estimator._bind_views()
    return estimator


def _count(value, name):
    """A count read from a file: an int in [0, 2**62)."""
    if type(value) is bool or not isinstance(value, Integral) or not 0 <= int(value) < 2**62:
        raise ValueError(f"{name} is not a count: {value!r}")
    return int(value)


def _check_network_size(config, params):
    """The parameter count the network's layers (and batch normalization) give must be
    that of the stored weights: a header edited to huge layers is refused before the
    network is allocated."""
    units = config["layer_units"]
    if not isinstance(units, list) or not all(type(u) is int and u > 0 for u in units):
        raise ValueError(f"layer_units {units!r} are not positive integers")
    expected = parameter_count(units, bool(config.get("batch_norm")))
    if params.ndim != 1 or params.size != expected:
        raise ValueError(f"the weights hold {params.size} values, the layers need {expected}")


def _check_outputs(estimator, network):
    """n_outputs_, n_layers_ and a classifier's classes and target type agree with the
    network: a file edited by hand otherwise loads and predicts wrong labels."""
    n_out = network.layer_units[-1]
    if estimator.n_outputs_ != n_out:
        raise ValueError(f"n_outputs_ is {estimator.n_outputs_}, the network has {n_out} outputs")
    if estimator.n_layers_ != len(network.layer_units):
        raise ValueError("n_layers_ does not match the network")
    head = network.output_activation
    if head != estimator.out_activation_:
        raise ValueError(f"out_activation_ is not the network's {head!r}")
    lb = getattr(estimator, "_label_binarizer", None)
    if lb is None:  # a regressor (exp: the Poisson loss's head)
        if head not in ("identity", "exp"):
            raise ValueError(f"a regressor's network has the output activation {head!r}")
        return
    classes = np.asarray(lb.classes_)
    # as fitting leaves them: np.unique's, which the outputs' columns follow
    ordered = classes.ndim == 1 and np.array_equal(np.unique(classes), classes)
    if not ordered or not np.array_equal(getattr(estimator, "classes_", classes), classes):
        raise ValueError("the classes are not one sorted list of distinct labels")
    n_classes = len(classes)
    wanted = {"binary": 1, "multiclass": n_classes, "multilabel-indicator": n_classes}
    if lb.y_type_ not in wanted or (lb.y_type_ == "binary" and n_classes > 2):
        raise ValueError(f"the target type {lb.y_type_!r} does not fit {n_classes} classes")
    if wanted[lb.y_type_] != n_out:
        raise ValueError(
            f"{n_classes} classes of type {lb.y_type_!r} do not fit {n_out} network outputs"
        )
    if head != ("softmax" if lb.y_type_ == "multiclass" else "logistic"):
        raise ValueError(f"{lb.y_type_!r} targets do not fit the output activation {head!r}")


def _copy_into(target, source, name):
    if source.shape != target.shape:
        raise ValueError(f"array {name!r} has shape {source.shape}, expected {target.shape}")
    target[...] = source
