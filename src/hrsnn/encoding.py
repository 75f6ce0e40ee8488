r"""Spike encoders: turn values and signals into network input (torch tensors in, torch tensors out).

- **Rate coding** (:func:`rate_probability`, :func:`rate_spikes`, :func:`bernoulli_spikes`): a value
  :math:`u \in [0, 1]` fires with probability :math:`p = \min(u \, r_{max} \, \Delta t, 1)` at every step.
- **Population coding** (:func:`gaussian_fields`, :func:`population_spikes`): ``M`` Gaussian receptive fields per
  variable, analog responses or Bernoulli spikes (the LNP input code, the SRNN ICONS S-MNIST RBF code).
- **Level crossing** (:func:`level_crossing`): "up"/"down" spikes when a signal moves by at least δ (the SRNN
  authors' QTDB ECG encoding, or send-on-delta with a tracking reference).
- **Threshold coding** (:func:`threshold_spikes`, :func:`ternary_spikes`): :math:`H(x - \theta)` and the SRNN GSC
  ternary conversion :math:`H(x - \theta) - H(-\theta - x)`, optionally with a surrogate gradient.

Layout: channels are the last axis and time the one before it (hrsnn's batch-first ``(N, T, C)``). Random encoders
draw from an explicit generator, a ``torch.Generator`` or a ``numpy.random.Generator``, so a seed fixes the output.
Every bad argument raises :class:`hrsnn.errors.ConfigError` naming it and the offending value.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from hrsnn._validate import check_int, check_real
from hrsnn.errors import ConfigError
from hrsnn.surrogates import Surrogate, spike

__all__ = [
    "RandomGenerator",
    "bernoulli_spikes",
    "gaussian_fields",
    "level_crossing",
    "population_spikes",
    "rate_probability",
    "rate_spikes",
    "ternary_spikes",
    "threshold_spikes",
]

RandomGenerator = torch.Generator | np.random.Generator
"""Source of the random draws: ``torch.rand(..., generator=g)`` in the dtype and on the device of the probabilities,
or ``g.random(shape)`` (float64, numpy's stream) for pipelines seeded with numpy."""

_SQRT_2PI = math.sqrt(2.0 * math.pi)


# ----------------------------------------------------------------------------------------------- validation


def _check_values(field: str, x: Any, bounds: tuple[float, float] | None = None) -> Tensor:
    """Return ``x`` if it is a floating tensor with at least one dimension, finite, and inside ``bounds`` when
    given; the error names the first bad entry (row-major), its index and how many entries are bad."""
    if not isinstance(x, Tensor):
        raise ConfigError(field, type(x).__name__, "must be a torch.Tensor")
    if not torch.is_floating_point(x):
        raise ConfigError(field, x.dtype, "must be a floating-point tensor")
    if x.dim() == 0:
        raise ConfigError(field, tuple(x.shape), "must have at least one dimension (channels last)")
    values = x.detach()
    bad = ~torch.isfinite(values)
    if bounds is not None:
        bad |= (values < bounds[0]) | (values > bounds[1])
    if not bool(bad.any()):
        return x
    flat = int(torch.argmax(bad.flatten().to(torch.uint8)))  # the first bad entry in row-major order
    index = tuple(int(i) for i in np.unravel_index(flat, tuple(x.shape)))
    rule = "finite" if bounds is None else f"finite and in [{bounds[0]:g}, {bounds[1]:g}]"
    count = int(bad.sum())
    which = "1 entry is" if count == 1 else f"{count} entries are"
    reason = f"must be {rule}; {which} not (of {tuple(x.shape)}), the first at index {index}"
    raise ConfigError(field, values.flatten()[flat].item(), reason)


def _check_positive(field: str, value: Any) -> float:
    return check_real(field, value, low=0.0, strict=True)


def _check_n_steps(n_steps: Any) -> int | None:
    return None if n_steps is None else check_int("n_steps", n_steps, 1)


# ----------------------------------------------------------------------------------------------- rate coding


def bernoulli_spikes(p: Tensor, generator: RandomGenerator, *, n_steps: int | None = None) -> Tensor:
    r"""Bernoulli spikes :math:`s = [U < p]`, :math:`U \sim \mathcal{U}(0, 1)` drawn independently per entry.

    Args:
        p: spike probabilities in ``[0, 1]``, shape ``(..., C)``.
        generator: source of ``U`` (see :data:`RandomGenerator`); a ``torch.Generator`` must be on ``p``'s device.
        n_steps: None for one draw per entry of ``p`` (``p`` is already one value per step); else ``T``: the same
            ``p`` at each of ``T`` steps, a new draw per step, output ``(..., T, C)``.

    Returns:
        spikes in {0, 1} in ``p``'s dtype, shape ``p.shape`` or ``(*p.shape[:-1], T, C)``.

    Raises:
        ConfigError: naming ``p``, ``generator`` or ``n_steps``.
    """
    p = _check_values("p", p, (0.0, 1.0))
    steps = _check_n_steps(n_steps)
    if steps is not None:
        p = p.unsqueeze(-2)
    shape = p.shape if steps is None else (*p.shape[:-2], steps, p.shape[-1])
    if isinstance(generator, torch.Generator):
        if generator.device.type != p.device.type:
            raise ConfigError("generator", str(generator.device), f"must be on the device of p ({p.device})")
        draws = torch.rand(shape, generator=generator, dtype=p.dtype, device=p.device)
    elif isinstance(generator, np.random.Generator):
        draws = torch.from_numpy(generator.random(tuple(shape))).to(p.device)
    else:
        raise ConfigError("generator", type(generator).__name__, "must be a torch.Generator or numpy.random.Generator")
    return (draws < p).to(p.dtype)


def rate_probability(u: Tensor, *, max_rate: float = 1.0, dt: float = 1.0) -> Tensor:
    r"""Per-step spike probability of rate coding, :math:`p = \min(u \, r_{max} \, \Delta t, 1)`.

    ``max_rate · dt`` is the gain: ``max_rate=200`` (Hz) with ``dt=1e-3`` (s) gives :math:`p = 0.2\,u`; the
    defaults give :math:`p = u`; ``max_rate=g`` alone gives a plain :math:`p = g\,u` (clipped at 1).

    Args:
        u: values in ``[0, 1]``, shape ``(..., C)``.
        max_rate: firing rate :math:`r_{max}` at ``u = 1`` (> 0), in spikes per unit of ``dt``.
        dt: step length :math:`\Delta t` (> 0).

    Returns:
        ``p``, same shape and dtype as ``u``.

    Raises:
        ConfigError: naming ``u`` (outside ``[0, 1]``, non-finite, not a floating tensor), ``max_rate`` or ``dt``.
    """
    u = _check_values("u", u, (0.0, 1.0))
    gain = _check_positive("max_rate", max_rate) * _check_positive("dt", dt)
    return torch.clamp(u * gain, max=1.0)


def rate_spikes(
    u: Tensor, generator: RandomGenerator, *, max_rate: float = 1.0, dt: float = 1.0, n_steps: int | None = None
) -> Tensor:
    r"""Rate-coded (Bernoulli) spikes: :math:`s_t = [U_t < \min(u \, r_{max} \, \Delta t, 1)]`.

    :func:`rate_probability` then :func:`bernoulli_spikes`; for small :math:`p` this is the discrete-time Poisson
    process of rate :math:`u \, r_{max}`, with at most one spike per step.

    Args:
        u: values in ``[0, 1]``, shape ``(..., C)``.
        generator: source of the draws (:data:`RandomGenerator`).
        max_rate, dt: as in :func:`rate_probability`.
        n_steps: as in :func:`bernoulli_spikes` (None: one draw per entry of ``u``; ``T``: output ``(..., T, C)``).

    Returns:
        spikes in {0, 1} in ``u``'s dtype.

    Raises:
        ConfigError: naming ``u``, ``max_rate``, ``dt``, ``generator`` or ``n_steps``.
    """
    return bernoulli_spikes(rate_probability(u, max_rate=max_rate, dt=dt), generator, n_steps=n_steps)


# ----------------------------------------------------------------------------------------------- population coding


def gaussian_fields(
    u: Tensor,
    n_fields: int,
    *,
    low: float = 0.0,
    high: float = 1.0,
    width: float | None = None,
    normalize: bool = False,
) -> Tensor:
    r"""Responses of ``M`` Gaussian receptive fields per variable (analog population code).

    Centres :math:`c_m = \mathrm{low} + m \, (\mathrm{high} - \mathrm{low})/(M - 1)`, :math:`m = 0..M-1`
    (evenly spaced, :math:`c_{M-1} = \mathrm{high}` exactly), width :math:`\sigma` (default
    :math:`(\mathrm{high} - \mathrm{low})/M`, i.e. the LNP spec's :math:`1/M` on ``[0, 1]``):

    .. math::

        a_{c,m} = \exp\!\Big(-\frac{(u_c - c_m)^2}{2\sigma^2}\Big)
        \quad\text{or, with ``normalize``,}\quad
        a_{c,m} = \frac{1}{\sqrt{2\pi}\,\sigma}\exp\!\Big(-\frac{(u_c - c_m)^2}{2\sigma^2}\Big)

    The plain response lies in ``(0, 1]``; the normalised pdf is not bounded. The SRNN ICONS S-MNIST encoding of a
    pixel :math:`p \in [0, 1]` (80 fields, :math:`\mu_i = (i-1)/78`, :math:`\sigma = 1/78`, peak ≈ 31.1) is
    ``gaussian_fields(p, 80, low=-1/78, high=1.0, width=1/78, normalize=True)``. Values outside
    ``[low, high]`` are allowed (their responses decay).

    Args:
        u: finite values, shape ``(..., C)``.
        n_fields: ``M >= 2``.
        low, high: first and last centre, ``low < high``.
        width: :math:`\sigma > 0`, or None for ``(high − low)/M``.
        normalize: divide by :math:`\sqrt{2\pi}\sigma` (the normalised Gaussian pdf).

    Returns:
        ``(..., C·M)`` in ``u``'s dtype; channel ``c·M + m`` is field ``m`` of variable ``c``.

    Raises:
        ConfigError: naming ``u``, ``n_fields``, ``low``, ``high``, ``width`` or ``normalize``.
    """
    u = _check_values("u", u)
    m = check_int("n_fields", n_fields, 2)
    lo, hi = check_real("low", low), check_real("high", high)
    if hi <= lo:
        raise ConfigError("high", high, f"must be > low ({low})")
    sigma = (hi - lo) / m if width is None else _check_positive("width", width)
    if not isinstance(normalize, bool):
        raise ConfigError("normalize", normalize, "must be a bool")
    centres = lo + torch.arange(m, dtype=u.dtype, device=u.device) * ((hi - lo) / (m - 1))
    centres[-1] = hi
    act = torch.exp(-((u.unsqueeze(-1) - centres) ** 2) / (2.0 * sigma**2))
    if normalize:
        act = act / (_SQRT_2PI * sigma)
    return act.reshape(*u.shape[:-1], u.shape[-1] * m)


def population_spikes(
    u: Tensor,
    n_fields: int,
    generator: RandomGenerator,
    *,
    low: float = 0.0,
    high: float = 1.0,
    width: float | None = None,
    max_rate: float = 1.0,
    dt: float = 1.0,
    n_steps: int | None = None,
) -> Tensor:
    r"""Bernoulli spikes of a Gaussian population code: field ``m`` of variable ``c`` fires with probability

    .. math::

        p_{c,m} = \min\!\Big(\Delta t \, r_{max} \exp\!\Big(-\frac{(u_c - c_m)^2}{2\sigma^2}\Big), 1\Big)

    per step (centres and width as in :func:`gaussian_fields`). The LNP spec §1.5 code is ``n_fields=20``,
    ``width=None`` (σ = 1/20 on ``[0, 1]``), ``max_rate=200`` (Hz), ``dt=1e-3`` (s), ``n_steps=20`` per sample.

    Args:
        u, n_fields, low, high, width: as in :func:`gaussian_fields`.
        generator: source of the draws (:data:`RandomGenerator`).
        max_rate, dt: :math:`r_{max} > 0` (spikes per unit of ``dt``) and :math:`\Delta t > 0`.
        n_steps: as in :func:`bernoulli_spikes` (None: one draw per entry; ``T``: output ``(..., T, C·M)``).

    Returns:
        spikes in {0, 1} in ``u``'s dtype, channel ``c·M + m``.

    Raises:
        ConfigError: naming the bad argument.
    """
    act = gaussian_fields(u, n_fields, low=low, high=high, width=width)
    gain = _check_positive("max_rate", max_rate) * _check_positive("dt", dt)
    return bernoulli_spikes(torch.clamp(act * gain, max=1.0), generator, n_steps=n_steps)


# ----------------------------------------------------------------------------------------------- level crossing


def level_crossing(signal: Tensor, delta: float, *, reference: Literal["previous", "tracking"] = "previous") -> Tensor:
    r"""Level-crossing "up"/"down" spikes of a signal, one channel pair per input channel.

    Step ``t`` of the output reports the move from step ``t − 1`` to ``t``; step 0 is silent. At most one spike per
    channel and step, whatever the size of the move. With :math:`x_t` one channel and :math:`r_{t-1}` its reference:

    .. math::

        \mathrm{up}_t = [x_t - r_{t-1} \ge \delta], \qquad \mathrm{down}_t = [r_{t-1} - x_t \ge \delta]

    - ``reference="previous"`` (the SRNN authors' QTDB ECG encoding, spec srnn.md §4.1): :math:`r_{t-1} = x_{t-1}`,
      the reference is always the last sample. A jump of several δ in one step gives one spike; a slow drift of
      less than δ per step gives none, however far it goes.
    - ``reference="tracking"`` (send-on-delta): :math:`r_0 = x_0` and the reference moves by δ per emitted spike,
      :math:`r_t = x_0 + \delta \, n_t` with :math:`n_t = \sum_{k \le t} (\mathrm{up}_k - \mathrm{down}_k)`. A
      slow drift spikes once per δ travelled; a jump of ``k`` δ gives one spike in each of the next ``k`` steps
      (while the signal stays beyond the reference), so :math:`\Sigma(\mathrm{up} - \mathrm{down})` always
      counts the levels crossed and the reference lags a steep signal.

    Differences are compared with δ in the signal's dtype.

    Args:
        signal: finite values, shape ``(..., T, C)`` with ``T >= 1``.
        delta: δ > 0, in the signal's units.
        reference: ``"previous"`` or ``"tracking"``.

    Returns:
        ``(..., T, 2·C)`` of {0, 1} in the signal's dtype; channels ``up0, down0, up1, down1, ...``.

    Raises:
        ConfigError: naming ``signal``, ``delta`` or ``reference``.
    """
    x = _check_values("signal", signal)
    if x.dim() < 2:
        raise ConfigError("signal", tuple(x.shape), "must have shape (..., T, C)")
    step = _check_positive("delta", delta)
    up, down = torch.zeros_like(x), torch.zeros_like(x)
    if reference == "previous":
        diff = x[..., 1:, :] - x[..., :-1, :]
        up[..., 1:, :] = (diff >= step).to(x.dtype)
        down[..., 1:, :] = (-diff >= step).to(x.dtype)
    elif reference == "tracking":
        start, level = x[..., 0, :], torch.zeros_like(x[..., 0, :])
        for t in range(1, x.shape[-2]):
            moved = x[..., t, :] - (start + step * level)
            up[..., t, :] = (moved >= step).to(x.dtype)
            down[..., t, :] = (-moved >= step).to(x.dtype)
            level += up[..., t, :] - down[..., t, :]
    else:
        raise ConfigError("reference", reference, "must be 'previous' or 'tracking'")
    return torch.stack((up, down), dim=-1).reshape(*x.shape[:-1], 2 * x.shape[-1])


# ----------------------------------------------------------------------------------------------- threshold coding


def _check_threshold(x: Tensor, threshold: Any, low: float | None) -> Tensor | float:
    if isinstance(threshold, Tensor):
        if not torch.is_floating_point(threshold):
            raise ConfigError("threshold", threshold.dtype, "must be a floating-point tensor or a number")
        try:
            torch.broadcast_shapes(threshold.shape, x.shape)
        except RuntimeError:
            raise ConfigError(
                "threshold", tuple(threshold.shape), f"must broadcast against x {tuple(x.shape)}"
            ) from None
        values = threshold.detach()
        bad = ~torch.isfinite(values) if low is None else ~(torch.isfinite(values) & (values >= low))
        if bool(bad.any()):
            first = values[bad].flatten()[0].item()
            raise ConfigError("threshold", first, "must be finite" + ("" if low is None else f" and >= {low:g}"))
        return threshold
    return check_real("threshold", threshold, low=low)


def _heaviside(v: Tensor, surrogate: Surrogate | None) -> Tensor:
    if surrogate is None:
        return (v > 0).to(v.dtype)
    if not isinstance(surrogate, Surrogate):
        raise ConfigError("surrogate", type(surrogate).__name__, "must be None or an hrsnn.surrogates surrogate")
    return spike(v, surrogate)


def threshold_spikes(x: Tensor, threshold: float | Tensor, *, surrogate: Surrogate | None = None) -> Tensor:
    r"""Binary threshold code :math:`s = H(x - \theta)`, with :math:`H(v) = 1` if :math:`v > 0` else 0.

    ``H(0) = 0``: a value equal to the threshold does not spike. E.g. the SRNN PS-MNIST pixel spikes
    ``pixel/255 > 0.1`` are ``threshold_spikes(pixel / 255, 0.1)``.

    Args:
        x: finite values, any shape with at least one dimension.
        threshold: θ, a finite number or a floating tensor broadcasting against ``x`` (may require grad).
        surrogate: None for a plain step (no gradient); else ``H`` is :func:`hrsnn.surrogates.spike`, so ``x`` and a
            tensor ``threshold`` receive the surrogate gradient :math:`\pm\psi(x - \theta)`.

    Returns:
        {0, 1} in the dtype of :math:`x - \theta`, shape of the broadcast.

    Raises:
        ConfigError: naming ``x``, ``threshold`` or ``surrogate``.
    """
    x = _check_values("x", x)
    return _heaviside(x - _check_threshold(x, threshold, None), surrogate)


def ternary_spikes(x: Tensor, threshold: float | Tensor, *, surrogate: Surrogate | None = None) -> Tensor:
    r"""Ternary threshold code of the SRNN GSC model (spec srnn.md §1.6):

    .. math::

        \hat x = H(x - \theta) - H(-\theta - x) \in \{-1, 0, +1\}

    with the strict :math:`H` of :func:`threshold_spikes`: ``+1`` for :math:`x > \theta`, ``−1`` for
    :math:`x < -\theta`, ``0`` for :math:`|x| \le \theta`. The authors learn one scalar θ (initialised to 0.05,
    learning rate × 0.01) through the multi-Gaussian surrogate: pass a tensor ``threshold`` that requires grad and
    ``surrogate=hrsnn.surrogates.MultiGaussian()``; then
    :math:`\partial\hat x/\partial\theta = -\psi(x - \theta) + \psi(-\theta - x)` and
    :math:`\partial\hat x/\partial x = \psi(x - \theta) + \psi(-\theta - x)`.

    Args:
        x: finite values, any shape with at least one dimension.
        threshold: θ ≥ 0, a number or a floating tensor broadcasting against ``x``.
        surrogate: None for plain steps; else the surrogate gradient of :func:`hrsnn.surrogates.spike`.

    Returns:
        {−1, 0, +1} in the dtype of :math:`x - \theta`.

    Raises:
        ConfigError: naming ``x``, ``threshold`` (negative, non-finite, not broadcastable) or ``surrogate``.
    """
    x = _check_values("x", x)
    theta = _check_threshold(x, threshold, 0.0)
    return _heaviside(x - theta, surrogate) - _heaviside(-theta - x, surrogate)
