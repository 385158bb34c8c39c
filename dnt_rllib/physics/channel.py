"""Channel gains and OFDMA rates, eqs. (2) and (3).

h = o · d^(−a) with d the Euclidean distance to the BS floored at ``min_distance`` (SPEC:
the paper's d = sqrt(‖·‖) is read as the usual distance, a = 2 by default). Interference
I_n on each RB is drawn i.i.d. per slot from an exponential law with the configured mean
(the received power of one Rayleigh-faded out-of-cell user), or, in the ``markov`` model,
set by a quiet/loud Gilbert–Elliott chain per RB (`SystemConfig`'s docstring has the law).
"""

from __future__ import annotations

import numpy as np


def channel_gain(
    positions: np.ndarray,
    origin: np.ndarray,
    fading: np.ndarray | float,
    exponent: float,
    min_distance: float,
) -> np.ndarray:
    """h(l) = o · max(‖l − origin‖, d_min)^(−a) for each row of ``positions`` (…×2)."""
    diff = positions - origin
    dist = np.sqrt((diff * diff).sum(axis=-1))
    return fading * np.maximum(dist, min_distance) ** (-exponent)


def rates(
    gain: np.ndarray | float,
    interference: np.ndarray,
    tx_power: float,
    bandwidth: float,
    noise_psd: float,
) -> np.ndarray:
    """c_n = B log2(1 + P h / (I_n + B N0)) for every gain × RB, eq. (2)/(3).

    ``gain`` (…, U) and ``interference`` (…, N) give (…, U, N); a scalar gain (the cloud
    link) gives (…, N).
    """
    inverse = sinr_per_gain(interference, tx_power, bandwidth, noise_psd)
    sinr = inverse * gain if np.ndim(gain) == 0 else gain[..., :, None] * inverse[..., None, :]
    return bandwidth * np.log2(1.0 + sinr)


def sinr_per_gain(
    interference: np.ndarray, tx_power: float, bandwidth: float, noise_psd: float
) -> np.ndarray:
    """y_n = P / (I_n + B N0): RB n's SINR per unit channel gain, so that the SINR of user
    u on RB n is h_u y_n and c_un = B log2(1 + h_u y_n) (eq. 2)."""
    return tx_power / (interference + bandwidth * noise_psd)


def pair_rates(gain: np.ndarray, scale: np.ndarray, bandwidth: float) -> np.ndarray:
    """B log2(1 + h y) elementwise (eq. 2): the rates of given (user, RB) pairs, bit for bit
    the entries `rates` gives them."""
    return bandwidth * np.log2(1.0 + gain * scale)


def draw_interference(
    rng: np.random.Generator, mean: float, shape: int | tuple[int, ...]
) -> np.ndarray:
    """I_n ~ Exp(mean) for each RB, one slot (``shape`` N, or (B, N) for B episodes)."""
    return rng.exponential(mean, size=shape) if mean > 0 else np.zeros(shape)


def draw_fading(rng: np.random.Generator, mean: float, shape: int | tuple[int, ...]) -> np.ndarray:
    """Rayleigh power gains o_u ~ Exp(mean) for each user, one slot (``shape`` U or (B, U))."""
    return rng.exponential(mean, size=shape)


def markov_levels(mean: float, loud_share: float, loud_ratio: float) -> tuple[float, float]:
    """(I_quiet, I_loud) = (I / (1 − π + π r), r I / (1 − π + π r)): long-run mean I."""
    quiet = mean / (1.0 - loud_share + loud_share * loud_ratio)
    return quiet, loud_ratio * quiet


def markov_loud(
    uniforms: np.ndarray, loud: np.ndarray | None, loud_share: float, memory: float
) -> np.ndarray:
    """Each RB's next state (True = loud) from one U(0, 1) draw per RB.

    P(loud next) = π(1 − λ) + λ·[loud now] (p01 = π(1 − λ), 1 − p10 = π(1 − λ) + λ); with
    ``loud`` None (an episode's first slot) the stationary P(loud) = π.
    """
    if loud is None:
        return uniforms < loud_share
    return uniforms < loud_share * (1.0 - memory) + memory * loud
