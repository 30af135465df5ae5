"""Initial weights: scikit-learn's scheme (the default) or one of Keras's.

All draws come from the estimator's RandomState, layer by layer in order, so a seed gives
the same weights every time. With ``init=None`` the draws are exactly scikit-learn's
(weights, then intercepts, both uniform), which the parity tests rely on.

Keras's schemes (``keras.initializers.VarianceScaling``) with zero biases:

=================  ==================  =====================================
init               distribution        scale (n = fan_in, or the fans' mean)
=================  ==================  =====================================
'glorot_uniform'   U(-b, b)            b = sqrt(6 / (fan_in + fan_out))
'glorot_normal'    truncated normal    std = sqrt(2 / (fan_in + fan_out))
'he_uniform'       U(-b, b)            b = sqrt(6 / fan_in)
'he_normal'        truncated normal    std = sqrt(2 / fan_in)
'lecun_normal'     truncated normal    std = sqrt(1 / fan_in)
=================  ==================  =====================================

Keras's truncated normal is cut at two standard deviations and its standard deviation
is given after truncation: it draws N(0, std / 0.8796...) and redraws values beyond two
of those standard deviations (0.8796... is the standard deviation of a standard normal
truncated to [-2, 2]). The same is done here by rejection sampling.
"""

from __future__ import annotations

import numpy as np

# Standard deviation of a standard normal truncated to [-2, 2] (Keras's constant).
TRUNCATED_STD = 0.87962566103423978

# init -> (distribution, numerator, fan mode)
_SCHEMES = {
    "glorot_uniform": ("uniform", 6.0, "avg"),
    "glorot_normal": ("normal", 2.0, "avg"),
    "he_uniform": ("uniform", 6.0, "in"),
    "he_normal": ("normal", 2.0, "in"),
    "lecun_normal": ("normal", 1.0, "in"),
}


def truncated_normal(random_state, std, shape):
    """N(0, (std / TRUNCATED_STD)²) truncated to ±2 of its standard deviations, whose
    standard deviation is then `std`."""
    out = random_state.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = random_state.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * (std / TRUNCATED_STD)


def scale(init, fan_in, fan_out):
    """The bound of a uniform scheme or the standard deviation of a normal one."""
    distribution, numerator, mode = _SCHEMES[init]
    return np.sqrt(numerator / (fan_in + fan_out if mode == "avg" else fan_in))


def initialize_weights(init, activation, random_state, network):
    """Draw the initial weights and intercepts of `network` in place.

    Parameters
    ----------
    init : str or None
        None (scikit-learn's scheme) or a key of ``_SCHEMES``.
    activation : str
        The hidden activation (scikit-learn's bound is narrower for 'logistic').
    random_state : numpy.random.RandomState
        The source of every draw.
    network : Network
        Its `coefs` and `intercepts` views are written.
    """
    units = network.layer_units
    for coef, intercept, fan_in, fan_out in zip(
        network.coefs, network.intercepts, units[:-1], units[1:]
    ):
        if init is None:
            # scikit-learn's Glorot-uniform draws: the weights, then the intercepts.
            # ('sigmoid' is cymlp's other name for 'logistic': the same bound.)
            factor = 2.0 if activation in ("logistic", "sigmoid") else 6.0
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef[...] = random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept[...] = random_state.uniform(-bound, bound, fan_out)
            continue
        if _SCHEMES[init][0] == "uniform":
            b = scale(init, fan_in, fan_out)
            coef[...] = random_state.uniform(-b, b, (fan_in, fan_out))
        else:
            coef[...] = truncated_normal(
                random_state, scale(init, fan_in, fan_out), (fan_in, fan_out)
            )
        intercept[...] = 0.0
    # Batch normalization: the hidden layers' dense intercepts are unused (the shift
    # replaces them) and stay zero; scales start at 1 and shifts at 0, as in Keras.
    scales = getattr(network, "bn_scales", None) or []
    if scales:
        for intercept in network.intercepts[:-1]:
            intercept[...] = 0.0
        for gamma in scales:
            gamma[...] = 1.0
        for beta in network.bn_shifts:
            beta[...] = 0.0
