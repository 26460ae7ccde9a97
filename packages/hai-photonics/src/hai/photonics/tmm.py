"""Transfer-matrix method (TMM) for thin-film stacks, batched in torch.

Hand-written because no library does all of this at once: ``tmm`` (the exactness anchor) loops
in Python over one wavelength and one angle at a time; ``tmm_fast`` batches but needs real
incidence and exit media, has no unpolarised light, no per-layer absorption and multiplies
transfer matrices, which overflow for thick absorbing layers. Here the stack is reduced with the
reflection-coefficient recursion (Rouard's method), from the exit medium up: every factor it
multiplies is bounded (``exp(2iδ)`` decays inside absorbing layers), so thick metal layers give
``T = 0`` instead of ``inf``/``nan``, and the results equal ``tmm.coh_tmm`` to rounding.

Conventions follow ``tmm``: refractive index ``n + ik`` with ``k >= 0`` absorbing, angles in the
incidence medium, wave vectors chosen as the forward (decaying) solution, R and T as power
fractions, and for p polarisation the sign convention of ``tmm`` for ``r``.

>>> import torch
>>> n = torch.tensor([[1.0, 1.5]], dtype=torch.complex128).T.expand(2, 3)   # air | glass
>>> res = coherent(n, torch.zeros(2), torch.tensor([400.0, 500.0, 600.0]))
>>> round(float(res.R[0]), 6)
0.04
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hai.shared import InputError

POLARISATIONS = ("s", "p", "u")
_POL_ALIASES = {"s": "s", "te": "s", "p": "p", "tm": "p", "u": "u", "unpolarized": "u", "unpolarised": "u"}

__all__ = ["POLARISATIONS", "TMMResult", "coherent", "incoherent"]


@dataclass
class TMMResult:
    """Reflectance, transmittance and absorptance of a stack (power fractions).

    ``R``, ``T`` and ``A`` have shape ``(..., wavelengths)``, or ``(..., angles, wavelengths)``
    when several angles were given. ``A = 1 - R - T`` is all light absorbed in the stack (and,
    for an incoherent calculation, in the incoherent layers). ``layer_absorption`` (only when
    asked for) has shape ``(..., [angles,] layers, wavelengths)``: the fraction absorbed in each
    layer, 0 for the incidence and exit media. ``r`` and ``t`` are the complex amplitude
    coefficients of coherent s or p calculations (``None`` for unpolarised or incoherent ones).
    """

    R: torch.Tensor
    T: torch.Tensor
    A: torch.Tensor
    r: torch.Tensor | None = None
    t: torch.Tensor | None = None
    layer_absorption: torch.Tensor | None = None


# --------------------------------------------------------------------------------------------
# input checks (once, at the boundary)


def _pol(pol: str) -> str:
    key = str(pol).strip().lower()
    if key not in _POL_ALIASES:
        raise InputError(
            f"unknown polarisation {pol!r}",
            hint="use 's' (TE), 'p' (TM) or 'u' (unpolarised, the mean of s and p)",
        )
    return _POL_ALIASES[key]


def _complex_dtype(n: Any, dtype: torch.dtype | None) -> torch.dtype:
    if dtype is not None:
        if dtype not in (torch.complex64, torch.complex128):
            raise InputError(f"dtype must be torch.complex64 or torch.complex128, not {dtype}")
        return dtype
    if isinstance(n, torch.Tensor) and n.dtype in (torch.complex64, torch.float32):
        return torch.complex64
    return torch.complex128


def _as_tensor(value: Any, name: str, dtype: torch.dtype, device: torch.device | None) -> torch.Tensor:
    try:
        tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a number array, got {type(value).__name__}") from exc
    integer = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
    if not (tensor.is_floating_point() or tensor.is_complex()) and tensor.dtype not in integer:
        raise InputError(f"{name} must hold numbers, got dtype {tensor.dtype}")
    return tensor.to(device=device if device is not None else tensor.device, dtype=dtype)


def _prepare(
    n: Any,
    d_nm: Any,
    wavelengths_nm: Any,
    angle_deg: float | Sequence[float] | torch.Tensor,
    dtype: torch.dtype | None,
    device: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, bool, tuple[int, ...]]:
    """Validate and bring inputs to the internal layout.

    Returns n (L, B, 1, W), d (L, B, 1, 1), k0 = 2π/λ (W,), sin θ0 (A,), whether an angle axis
    is kept, and the batch shape.
    """
    cdtype = _complex_dtype(n, dtype)
    rdtype = torch.float64 if cdtype == torch.complex128 else torch.float32
    dev = torch.device(device) if device is not None else None
    if dev is None and isinstance(n, torch.Tensor):
        dev = n.device
    n_t = _as_tensor(n, "n", cdtype, dev)
    dev = n_t.device
    d_t = _as_tensor(d_nm, "d_nm", rdtype, dev)
    wl = _as_tensor(wavelengths_nm, "wavelengths_nm", rdtype, dev)
    if wl.ndim == 0:
        wl = wl.reshape(1)
    if wl.ndim != 1 or wl.numel() == 0:
        raise InputError(f"wavelengths_nm must be a non-empty 1-D array, got shape {tuple(wl.shape)}")
    if not bool(torch.isfinite(wl).all()) or bool((wl <= 0).any()):
        raise InputError("wavelengths_nm must be finite and positive (in nanometres)")
    if n_t.ndim < 2:
        raise InputError(
            f"n must have shape (..., layers, wavelengths), got shape {tuple(n_t.shape)}",
            hint="include the incidence and exit media as the first and last layers",
        )
    layers, n_wl = n_t.shape[-2], n_t.shape[-1]
    if n_wl != wl.numel():
        raise InputError(
            f"n has {n_wl} wavelengths in its last axis but wavelengths_nm has {wl.numel()}",
            hint="n must have shape (..., layers, wavelengths)",
        )
    if layers < 2:
        raise InputError("n needs at least 2 layers: the incidence and the exit medium")
    if d_t.ndim < 1 or d_t.shape[-1] != layers:
        raise InputError(
            f"d_nm must have shape (..., {layers}) to match n's {layers} layers, got {tuple(d_t.shape)}",
            hint="give a thickness for every layer; those of the first and last are ignored",
        )
    try:
        batch = torch.broadcast_shapes(n_t.shape[:-2], d_t.shape[:-1])
    except RuntimeError as exc:
        raise InputError(
            f"the batch shapes of n {tuple(n_t.shape[:-2])} and d_nm {tuple(d_t.shape[:-1])} do not broadcast"
        ) from exc
    inner = d_t[..., 1:-1]
    if bool(torch.isnan(inner).any()) or bool(torch.isinf(inner).any()):
        raise InputError("d_nm contains NaN or infinite thicknesses", hint="thicknesses must be finite")
    if bool((inner < 0).any()):
        raise InputError("d_nm contains negative thicknesses", hint="thicknesses must be >= 0 nm")
    if not bool(torch.isfinite(torch.view_as_real(n_t)).all()):
        raise InputError("n contains NaN or infinite values")
    if bool((n_t.imag < 0).any()):
        raise InputError(
            "n has a negative imaginary part (gain) somewhere",
            hint="write absorbing media as n + ik with k >= 0",
        )
    if bool((n_t.real <= 0).any()):
        raise InputError("n must have a positive real part")

    angle = _as_tensor(angle_deg, "angle_deg", rdtype, dev)
    keep_angle_axis = angle.ndim > 0
    angle = angle.reshape(-1)
    if angle.numel() == 0 or angle.ndim != 1:
        raise InputError("angle_deg must be a number or a non-empty 1-D sequence of degrees")
    if not bool(torch.isfinite(angle).all()) or bool(((angle < 0) | (angle >= 90)).any()):
        raise InputError("angles must lie in [0, 90) degrees")
    sin0 = torch.sin(torch.deg2rad(angle))
    # Oblique incidence needs n0 sin θ0 real, as in tmm: a lossless incidence medium.
    if bool((angle != 0).any()) and bool((n_t[..., 0, :].imag != 0).any()):
        raise InputError(
            "oblique incidence needs a non-absorbing incidence medium (k = 0 in the first layer)"
        )

    size = math.prod(batch)
    n_b = n_t.expand(*batch, layers, n_wl).reshape(size, layers, n_wl)
    d_b = d_t.expand(*batch, layers).reshape(size, layers)
    n_internal = n_b.permute(1, 0, 2).contiguous().unsqueeze(2)  # (L, B, 1, W)
    d_internal = d_b.permute(1, 0)[:, :, None, None]  # (L, B, 1, 1)
    k0 = 2 * math.pi / wl
    return n_internal, d_internal, k0, sin0, keep_angle_axis, tuple(batch)


# --------------------------------------------------------------------------------------------
# the physics


def _normal_components(n: torch.Tensor, sin0: torch.Tensor) -> torch.Tensor:
    """q = n cos θ in every layer, (L, B, A, W), the forward solution of Snell's law."""
    if bool((sin0 == 0).all()):
        return n.expand(-1, -1, sin0.numel(), -1)
    beta = n[0] * sin0[None, :, None].to(n.dtype)  # (B, A, W), real by the check above
    q = torch.sqrt(n * n - (beta * beta)[None])
    # Passive media give Im(n² - β²) >= 0, so the principal root already decays forwards; a
    # signed zero from rounding (-0j) would pick the other root, so flip those back.
    return torch.where(q.imag < 0, -q, q)


def _interfaces(
    n: torch.Tensor, q: torch.Tensor, pol: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fresnel r, t of each interface j -> j+1 (L-1, ...) and the power factors of both ends."""
    q1, q2 = q[:-1], q[1:]
    if pol == "s":
        inv = torch.reciprocal(q1 + q2)
        r = (q1 - q2) * inv
        t = 2 * q1 * inv
        f_in = q[0].real
        f_out = q[-1].real
    else:
        a = n * n
        a1, a2 = a[:-1], a[1:]
        a2q1, a1q2 = a2 * q1, a1 * q2
        inv = torch.reciprocal(a2q1 + a1q2)
        r = (a2q1 - a1q2) * inv
        t = 2 * q1 * n[:-1] * n[1:] * inv
        # Re(n conj(cos θ)) with cos θ = q / n
        f_in = (n[0] * (q[0] / n[0]).conj()).real
        f_out = (n[-1] * (q[-1] / n[-1]).conj()).real
    return r, t, f_in, f_out


def _coherent_core(
    n: torch.Tensor,
    q: torch.Tensor,
    d: torch.Tensor,
    k0: torch.Tensor,
    pol: str,
    want_layers: bool,
    guard_incidence: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """r, t, R, T (B, A, W) and per-layer absorption (L, B, A, W) of one polarisation.

    Reduces the stack from the bottom: ρ_j = w/v at the top of layer j; ρ_exit = 0;
    ρ at the bottom of layer j is (r + ρ_{j+1}) / (1 + r ρ_{j+1}) and at its top that times
    exp(2iδ_j). Every factor is bounded for absorbing layers, so nothing overflows.

    ``guard_incidence`` (for the groups of an incoherent calculation, whose "incidence medium"
    may be an inner layer in which the light is evanescent): where no power flows in the
    incidence medium (its flux factor is 0), T and the per-layer absorption, fractions of a
    zero incident power, are returned as 0 instead of inf/NaN.
    """
    layers = n.shape[0]
    r_if, t_if, f_in, f_out = _interfaces(n, q, pol)
    # phase thickness δ = k0 q d of the inner layers; the outer media get δ = 0
    kd = k0 * d[1:-1]
    # exp(iδ) as a polar number: much faster than a complex exp, and exp(-Im δ) <= 1 never overflows
    e1 = torch.polar(torch.exp(-(q[1:-1].imag * kd)), q[1:-1].real * kd)  # forward factor across a layer
    e2 = e1 * e1
    rho = torch.zeros_like(r_if[-1])
    rho_top: list[torch.Tensor] = [rho] * layers  # ρ at the top of each layer
    inv_den: list[torch.Tensor] = [rho] * (layers - 1)  # 1 / (1 + r ρ) at each interface
    t = t_if[-1]
    for j in range(layers - 2, -1, -1):
        if j == layers - 2:  # ρ = 0 below the last interface
            bottom = r_if[j]
            inv_den[j] = torch.ones_like(rho)
        else:
            inv_den[j] = torch.reciprocal(1 + r_if[j] * rho)
            bottom = (r_if[j] + rho) * inv_den[j]
            t = t * (t_if[j] * inv_den[j])
        if j > 0:
            e = e2[j - 1]
            rho = bottom * e
            t = t * e1[j - 1]
        else:
            rho = bottom
        rho_top[j] = rho
    r = rho
    R = r.real.square() + r.imag.square()
    if guard_incidence:
        no_flux = f_in == 0
        inv_f_in = torch.where(no_flux, 0.0, 1 / torch.where(no_flux, 1.0, f_in))
    else:
        inv_f_in = 1 / f_in
    T = (t.real.square() + t.imag.square()) * (f_out * inv_f_in)
    absorbed: torch.Tensor | None = None
    if want_layers:
        # forward amplitude v_j at the top of each layer, and the Poynting flux there
        flux = []
        v = torch.ones_like(r)
        for j in range(1, layers):
            v_bottom = v * e1[j - 2] if j > 1 else v
            v = v_bottom * t_if[j - 1] * inv_den[j - 1]
            w = rho_top[j] * v
            if pol == "s":
                s = (q[j] * (v + w).conj() * (v - w)).real
            else:
                s = (n[j] * (q[j] / n[j]).conj() * (v + w) * (v - w).conj()).real
            flux.append(s * inv_f_in)
        flux_t = torch.stack(flux)  # (L-1, ...): flux entering layers 1..L-1
        inner = flux_t[:-1] - flux_t[1:]
        zero = torch.zeros_like(flux_t[:1])
        absorbed = torch.cat([zero, inner, zero])
    return r, t, R, T, absorbed


def _finish(x: torch.Tensor, batch: tuple[int, ...], keep_angle_axis: bool) -> torch.Tensor:
    """(B, A, W) or (L, B, A, W) back to (*batch, [A,] W) or (*batch, [A,] L, W)."""
    if x.ndim == 4:  # per-layer: (L, B, A, W) -> (B, A, L, W)
        x = x.permute(1, 2, 0, 3)
    x = x.reshape(*batch, *x.shape[1:])
    if not keep_angle_axis:
        x = x.squeeze(len(batch))
    return x


def coherent(
    n: Any,
    d_nm: Any,
    wavelengths_nm: Any,
    angle_deg: float | Sequence[float] | torch.Tensor = 0.0,
    pol: str = "s",
    *,
    layer_absorption: bool = False,
    dtype: torch.dtype | None = None,
    device: Any = None,
) -> TMMResult:
    """Reflectance, transmittance and absorptance of coherent thin-film stacks.

    ``n``: complex refractive indices, shape ``(..., layers, wavelengths)``, incidence medium
    first and exit medium last (k >= 0 absorbs; the exit medium may absorb). ``d_nm``: layer
    thicknesses in nm, shape ``(..., layers)`` (broadcast against ``n``'s batch; the first and
    last are ignored). ``angle_deg``: a number, or a sequence of angles which adds an angle axis.
    ``pol``: ``"s"``, ``"p"`` or ``"u"`` (unpolarised: the mean of s and p). ``dtype``:
    ``torch.complex128`` (default, exact) or ``torch.complex64`` (fast). Runs on ``n``'s device
    (or ``device``) and is differentiable in ``n`` and ``d_nm``.

    >>> import torch
    >>> n = torch.tensor([1.0, 1.38, 1.52], dtype=torch.complex128)[:, None]  # air | MgF2 | glass
    >>> res = coherent(n, torch.tensor([0.0, 550 / 4 / 1.38, 0.0]), [550.0])
    >>> float(res.R[0]) < 0.013
    True
    """
    pol = _pol(pol)
    n_i, d_i, k0, sin0, keep, batch = _prepare(n, d_nm, wavelengths_nm, angle_deg, dtype, device)
    R, T, r, t, absorbed = _run_coherent(n_i, d_i, k0, sin0, pol, layer_absorption)
    R_o, T_o = _finish(R, batch, keep), _finish(T, batch, keep)
    return TMMResult(
        R=R_o,
        T=T_o,
        A=1 - R_o - T_o,
        r=None if r is None else _finish(r, batch, keep),
        t=None if t is None else _finish(t, batch, keep),
        layer_absorption=None if absorbed is None else _finish(absorbed, batch, keep),
    )


def _run_coherent(
    n: torch.Tensor, d: torch.Tensor, k0: torch.Tensor, sin0: torch.Tensor, pol: str, want_layers: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Coherent R, T (B, A, W), r, t (s or p only) and per-layer absorption in internal layout."""
    q = _normal_components(n, sin0)
    pols = ("s", "p") if pol == "u" else (pol,)
    outs = [_coherent_core(n, q, d, k0, p, want_layers) for p in pols]
    if len(outs) == 1:
        r, t, R, T, absorbed = outs[0]
        return R, T, r, t, absorbed
    (_, _, R_s, T_s, a_s), (_, _, R_p, T_p, a_p) = outs
    absorbed = None if a_s is None or a_p is None else (a_s + a_p) / 2
    return (R_s + R_p) / 2, (T_s + T_p) / 2, None, None, absorbed


def _over_loop(num: torch.Tensor, loop: torch.Tensor) -> torch.Tensor:
    """``num / loop`` for the multiple-reflection sum of an incoherent layer, 0 where ``loop`` is 0.

    ``loop = 1 - R_above p² R_below`` is 0 only for light trapped in a lossless incoherent layer
    that totally reflects on both sides (for example between two layers in which it is
    evanescent); then no power can enter it either (``num`` is 0) and it contributes nothing.
    """
    trapped = loop == 0
    return torch.where(
        trapped, torch.zeros_like(num), num / torch.where(trapped, torch.ones_like(loop), loop)
    )


def _incoherent_pol(
    n: torch.Tensor,
    q: torch.Tensor,
    d: torch.Tensor,
    k0: torch.Tensor,
    pol: str,
    incoherent_idx: list[int],
    want_layers: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    # Coherent groups between consecutive incoherent layers, seen from both sides.
    groups = list(itertools.pairwise(incoherent_idx))
    fwd: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
    bwd: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
    for a, b in groups:
        sl = slice(a, b + 1)
        # guard_incidence: an inner incoherent layer may carry no power (evanescent light)
        _, _, Rf, Tf, Af = _coherent_core(n[sl], q[sl], d[sl], k0, pol, want_layers, guard_incidence=True)
        flip = torch.arange(b, a - 1, -1, device=n.device)
        _, _, Rb, Tb, Ab = _coherent_core(
            n[flip], q[flip], d[flip], k0, pol, want_layers, guard_incidence=True
        )
        fwd.append((Rf, Tf, Af))
        bwd.append((Rb, Tb, None if Ab is None else Ab.flip(0)))
    # One-pass power transmission P through each inner incoherent layer, and the bottom-up
    # reduction of the incoherent (power) cascade: R_down[g] is the reflectance seen from inside
    # incoherent layer g looking down, T_down the transmittance from there to the exit medium.
    # Every factor is <= 1, so opaque substrates give T = 0 without overflow.
    P = {i: torch.exp(-2 * (q[i] * (k0 * d[i])).imag) for i in incoherent_idx[1:-1]}
    R_down: list[torch.Tensor] = [fwd[-1][0]] * len(groups)
    T_down = fwd[-1][1]
    for g in range(len(groups) - 2, -1, -1):
        p = P[incoherent_idx[g + 1]]
        Rf, Tf, _ = fwd[g]
        Rb, Tb, _ = bwd[g]
        loop = 1 - Rb * p * p * R_down[g + 1]
        T_down = _over_loop(Tf * p * T_down, loop)
        R_down[g] = Rf + _over_loop(Tf * Tb * p * p * R_down[g + 1], loop)
    if not want_layers:
        return R_down[0], T_down, None
    # Top-down: the power falling on each group from above (down) and from below (up).
    down = [torch.ones_like(R_down[0])]
    up: list[torch.Tensor] = []
    for g, (_, b) in enumerate(groups[:-1]):
        p, below = P[b], R_down[g + 1]
        top = _over_loop(down[g] * fwd[g][1], 1 - bwd[g][0] * p * p * below)  # going down at the top of b
        up.append(top * p * p * below)
        down.append(top * p)
    up.append(torch.zeros_like(down[-1]))
    absorbed = torch.zeros((n.shape[0], *R_down[0].shape), dtype=R_down[0].dtype, device=n.device)
    entering = []  # net power into each group from above and below, as tmm.inc_tmm books it
    for g, (a, b) in enumerate(groups):
        (_, Tf, Af), (_, Tb, Ab) = fwd[g], bwd[g]
        assert Af is not None
        assert Ab is not None
        absorbed[a : b + 1] += down[g] * Af + up[g] * Ab
        # in an absorbing incidence medium "power entering" is not 1 - R (interference of the
        # incident and reflected waves); the flux into a group is its absorption plus T
        entering.append((Af.sum(0) + Tf, Ab.sum(0) + Tb))
    for g in range(len(groups) - 1):
        b = groups[g][1]
        into_b = down[g] * fwd[g][1] - up[g] * entering[g][1]
        out_of_b = down[g + 1] * entering[g + 1][0] - up[g + 1] * bwd[g + 1][1]
        absorbed[b] = into_b - out_of_b
    return R_down[0], T_down, absorbed


def incoherent(
    n: Any,
    d_nm: Any,
    wavelengths_nm: Any,
    incoherent_layers: Sequence[int],
    angle_deg: float | Sequence[float] | torch.Tensor = 0.0,
    pol: str = "s",
    *,
    layer_absorption: bool = False,
    dtype: torch.dtype | None = None,
    device: Any = None,
) -> TMMResult:
    """R, T, A of stacks where some layers are thick and incoherent (as ``tmm.inc_tmm``).

    Same arguments as :func:`coherent`, plus ``incoherent_layers``: the indices of the inner
    layers in which light adds in power, not amplitude (for example a 1 mm glass substrate).
    The incidence and exit media are always incoherent. The same layers are incoherent for every
    stack of the batch. ``A`` is everything absorbed, in coherent and incoherent layers;
    ``layer_absorption=True`` also splits it by layer (as ``tmm.inc_absorp_in_each_layer``).

    An incoherent layer in which the light is evanescent (a lossless layer beyond its critical
    angle) carries no power: nothing below it is reached, R is that of the stack above it (as
    for a thick layer in :func:`coherent`), T = 0. ``tmm.inc_tmm`` returns unphysical numbers
    there (R < 0); elsewhere the two agree to rounding. Evanescent light tunnelling through a
    thin layer is outside any power (incoherent) treatment: make such a layer coherent. For a
    nearly lossless layer just beyond its critical angle and thin enough to tunnel, R can
    exceed 1 slightly and that layer's absorption be negative, exactly as in ``tmm.inc_tmm``.

    >>> import torch
    >>> n = torch.tensor([1.0, 1.5, 1.0], dtype=torch.complex128)[:, None]  # air | glass | air
    >>> res = incoherent(n, torch.tensor([0.0, 1e6, 0.0]), [600.0], incoherent_layers=[1])
    >>> round(float(res.R[0]), 6)  # 2 R0 / (1 + R0) with R0 = 0.04
    0.076923
    """
    pol = _pol(pol)
    n_i, d_i, k0, sin0, keep, batch = _prepare(n, d_nm, wavelengths_nm, angle_deg, dtype, device)
    layers = n_i.shape[0]
    idx = sorted({int(i) for i in incoherent_layers})
    if any(i <= 0 or i >= layers - 1 for i in idx):
        raise InputError(
            f"incoherent_layers must be inner layer indices in 1..{layers - 2}, "
            f"got {list(incoherent_layers)}",
            hint="the incidence and exit media are incoherent anyway",
        )
    idx = [0, *idx, layers - 1]
    R, T, absorbed = _run_incoherent(n_i, d_i, k0, sin0, pol, idx, layer_absorption)
    R_o, T_o = _finish(R, batch, keep), _finish(T, batch, keep)
    layers_o = None if absorbed is None else _finish(absorbed, batch, keep)
    return TMMResult(R=R_o, T=T_o, A=1 - R_o - T_o, layer_absorption=layers_o)


def _run_incoherent(
    n: torch.Tensor,
    d: torch.Tensor,
    k0: torch.Tensor,
    sin0: torch.Tensor,
    pol: str,
    idx: list[int],
    want_layers: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Incoherent R, T (B, A, W) and per-layer absorption; idx lists all incoherent layers, ends included."""
    q = _normal_components(n, sin0)
    pols = ("s", "p") if pol == "u" else (pol,)
    outs = [_incoherent_pol(n, q, d, k0, p, idx, want_layers) for p in pols]
    if len(outs) == 1:
        return outs[0]
    (R_s, T_s, a_s), (R_p, T_p, a_p) = outs
    absorbed = None if a_s is None or a_p is None else (a_s + a_p) / 2
    return (R_s + R_p) / 2, (T_s + T_p) / 2, absorbed
