"""Spectra of whole stacks under a simulation preset: materials + geometry + TMM in one call.

Stacks of different lengths are batched by padding them, just above the exit medium (or the
substrate), with zero-thickness layers of that same medium: such a layer has r = 0, t = 1 and
phase 0, so the padding changes no result, not even by rounding.

>>> spectra = simulate("TiO2_60 SiO2_100")
>>> tuple(spectra.R.shape), spectra.wavelengths_nm[0].item(), spectra.wavelengths_nm[-1].item()
((1, 171), 300.0, 2000.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from hai.photonics import tmm
from hai.photonics.materials import get_material, nk_tensor
from hai.photonics.stacks import Stack, Vocabulary
from hai.shared import InputError, resolve_device

__all__ = [
    "OPTOGPT",
    "OPTOLLAMA",
    "PRESETS",
    "SimulationConfig",
    "Spectra",
    "get_config",
    "simulate",
    "simulate_ids",
]


@dataclass(frozen=True)
class SimulationConfig:
    """Wavelengths, illumination and surrounding media of a simulation.

    The stack sits between ``incidence`` (top) and ``exit``; with ``substrate`` set it sits on
    a thick incoherent substrate of that material and ``substrate_thickness_nm`` (as
    ``tmm.inc_tmm`` treats it), with ``exit`` behind the substrate.
    """

    wavelengths_nm: tuple[float, ...]
    angle_deg: float = 0.0
    pol: str = "s"
    incidence: str = "Air"
    exit: str = "Air"
    substrate: str | None = None
    substrate_thickness_nm: float = 0.0
    name: str = "custom"

    def __post_init__(self) -> None:
        wl = np.asarray(self.wavelengths_nm, dtype=float)
        if wl.ndim != 1 or wl.size == 0 or not np.all(np.isfinite(wl)) or np.any(wl <= 0):
            raise InputError("wavelengths_nm must be a non-empty list of positive wavelengths in nm")
        if not 0 <= float(self.angle_deg) < 90:
            raise InputError(f"angle_deg must lie in [0, 90), got {self.angle_deg}")
        tmm._pol(self.pol)
        if self.substrate is not None and not self.substrate_thickness_nm > 0:
            raise InputError("a substrate needs substrate_thickness_nm > 0")
        for medium in (self.incidence, self.exit, *([self.substrate] if self.substrate else [])):
            get_material(medium)

    @property
    def wavelengths(self) -> torch.Tensor:
        return torch.tensor(self.wavelengths_nm, dtype=torch.float64)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["wavelengths_nm"] = list(self.wavelengths_nm)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulationConfig:
        values = dict(data)
        values["wavelengths_nm"] = tuple(float(w) for w in values["wavelengths_nm"])
        return cls(**values)


def _grid(start: float, stop: float, step: float) -> tuple[float, ...]:
    return tuple(float(w) for w in np.arange(start, stop + step / 2, step))


#: OptoLlama: 300–2000 nm in 10 nm steps (171), normal incidence, s, air on both sides, no substrate.
OPTOLLAMA = SimulationConfig(wavelengths_nm=_grid(300, 2000, 10), name="optollama")
#: OptoGPT: 400–1100 nm in 10 nm steps (71), normal incidence, s, on 500 µm of incoherent glass, air behind.
OPTOGPT = SimulationConfig(
    wavelengths_nm=_grid(400, 1100, 10), substrate="Glass", substrate_thickness_nm=5e5, name="optogpt"
)
PRESETS: dict[str, SimulationConfig] = {"optollama": OPTOLLAMA, "optogpt": OPTOGPT}


def get_config(config: str | SimulationConfig | None) -> SimulationConfig:
    """A preset by name (``"optollama"``, ``"optogpt"``), or the config itself."""
    if config is None:
        return OPTOLLAMA
    if isinstance(config, SimulationConfig):
        return config
    try:
        return PRESETS[str(config).lower()]
    except KeyError:
        raise InputError(
            f"unknown simulation preset {config!r}", hint=f"presets: {', '.join(PRESETS)}"
        ) from None


@dataclass
class Spectra:
    """Reflectance, absorptance and transmittance, each (stacks, wavelengths)."""

    R: torch.Tensor
    A: torch.Tensor
    T: torch.Tensor
    wavelengths_nm: torch.Tensor

    def stacked(self) -> torch.Tensor:
        """(stacks, 3, wavelengths) in the order R, A, T (OptoLlama's layout)."""
        return torch.stack([self.R, self.A, self.T], dim=1)

    def __len__(self) -> int:
        return int(self.R.shape[0])


def _run(
    material_idx: torch.Tensor,
    thickness: torch.Tensor,
    names: Sequence[str],
    config: SimulationConfig,
    dtype: torch.dtype,
    device: torch.device,
    batch_size: int,
) -> Spectra:
    """material_idx/thickness: (N, layers) of the stack only, padded with index -1."""
    wl = config.wavelengths.to(device)
    bottom = config.substrate or config.exit
    media = [config.incidence, bottom, config.exit]
    table = nk_tensor([*names, *media], config.wavelengths_nm, dtype=dtype, device=device)
    m = len(names)
    n_stacks, n_layers = material_idx.shape
    idx = material_idx.to(device).clone()
    idx[idx < 0] = m + 1  # padding: zero-thickness layers of the medium below the stack
    thick = thickness.to(device=device, dtype=wl.dtype).clone()
    thick[material_idx.to(device) < 0] = 0.0
    full_idx = [torch.full((n_stacks, 1), m, device=device, dtype=torch.int64), idx]
    full_d = [torch.zeros(n_stacks, 1, device=device, dtype=wl.dtype), thick]
    incoherent = []
    if config.substrate:
        incoherent = [n_layers + 1]
        full_idx.append(torch.full((n_stacks, 1), m + 1, device=device, dtype=torch.int64))
        full_d.append(
            torch.full((n_stacks, 1), float(config.substrate_thickness_nm), device=device, dtype=wl.dtype)
        )
    full_idx.append(torch.full((n_stacks, 1), m + 2, device=device, dtype=torch.int64))
    full_d.append(torch.zeros(n_stacks, 1, device=device, dtype=wl.dtype))
    all_idx = torch.cat(full_idx, dim=1)
    all_d = torch.cat(full_d, dim=1)
    if bool((table.imag < 0).any()) or bool((table.real <= 0).any()):
        raise InputError(
            "a material has n <= 0 or k < 0 at some wavelength", hint="check user-registered materials"
        )
    if config.angle_deg != 0 and bool((table[m].imag != 0).any()):
        raise InputError("oblique incidence needs a non-absorbing incidence medium")
    pol = tmm._pol(config.pol)
    rdtype = torch.float64 if dtype == torch.complex128 else torch.float32
    k0 = (2 * np.pi / wl).to(rdtype)
    sin0 = torch.sin(torch.deg2rad(torch.tensor([float(config.angle_deg)], dtype=rdtype, device=device)))
    idx_lb = all_idx.T.contiguous()  # (layers, stacks): the solver's layout
    d_lb = all_d.T.to(rdtype).contiguous()
    Rs, Ts = [], []
    for start in range(0, n_stacks, batch_size):
        sl = slice(start, start + batch_size)
        n = table[idx_lb[:, sl]].unsqueeze(2)  # (L, b, 1, W)
        d = d_lb[:, sl, None, None]
        if incoherent:
            R, T, _ = tmm._run_incoherent(n, d, k0, sin0, pol, [0, *incoherent, n.shape[0] - 1])
        else:
            R, T, *_ = tmm._run_coherent(n, d, k0, sin0, pol, False)
        Rs.append(R[:, 0])
        Ts.append(T[:, 0])
    R = torch.cat(Rs) if Rs else torch.zeros(0, wl.numel(), dtype=rdtype, device=device)
    T = torch.cat(Ts) if Ts else torch.zeros(0, wl.numel(), dtype=rdtype, device=device)
    return Spectra(R=R, A=1 - R - T, T=T, wavelengths_nm=wl)


def simulate(
    stacks: Stack | str | Sequence[Stack | str],
    config: str | SimulationConfig | None = None,
    *,
    dtype: torch.dtype = torch.complex128,
    device: Any = "cpu",
    batch_size: int = 512,
) -> Spectra:
    """R, A, T of one or many stacks under ``config`` (default: the OptoLlama preset).

    ``stacks``: a :class:`Stack`, a token string such as ``"TiO2_60 SiO2_100"``, or a list of
    either. Any registered material may be used; thicknesses need not be on a grid.

    >>> s = simulate(["SiO2_100", "Ag_200"], "optogpt")
    >>> tuple(s.stacked().shape)
    (2, 3, 71)
    """
    cfg = get_config(config)
    items = [stacks] if isinstance(stacks, Stack | str) else list(stacks)
    parsed = [s if isinstance(s, Stack) else Stack.parse(s) for s in items]
    names = sorted({m for s in parsed for m in s.materials})
    for name in names:
        get_material(name)
    pos = {name: i for i, name in enumerate(names)}
    depth = max((len(s) for s in parsed), default=0)
    idx = torch.full((len(parsed), depth), -1, dtype=torch.int64)
    thick = torch.zeros((len(parsed), depth), dtype=torch.float64)
    for row, stack in enumerate(parsed):
        for col, layer in enumerate(stack.layers):
            idx[row, col] = pos[layer.material]
            thick[row, col] = layer.thickness_nm
    return _run(idx, thick, names, cfg, dtype, resolve_device(device), batch_size)


def simulate_ids(
    ids: torch.Tensor | np.ndarray,
    vocab: Vocabulary,
    config: str | SimulationConfig | None = None,
    *,
    dtype: torch.dtype = torch.complex128,
    device: Any = "cpu",
    batch_size: int = 512,
) -> Spectra:
    """R, A, T of token-id sequences (stacks, positions) without building :class:`Stack` objects.

    Reading stops at each row's first ``<EOS>``; ``<PAD>`` and ``<BOS>`` are skipped; a ``<MSK>``
    before ``<EOS>`` is an error.
    """
    cfg = get_config(config)
    ids_t = torch.as_tensor(np.asarray(ids), dtype=torch.int64)
    if ids_t.ndim != 2:
        raise InputError(f"ids must have shape (stacks, positions), got {tuple(ids_t.shape)}")
    if ids_t.numel() and (int(ids_t.min()) < 0 or int(ids_t.max()) >= len(vocab)):
        raise InputError(f"token ids must lie in 0..{len(vocab) - 1}")
    after_eos = torch.cumsum(ids_t == vocab.eos_id, dim=1) > 0
    if bool(((ids_t == vocab.mask_id) & ~after_eos).any()):
        raise InputError("a sequence still holds a <MSK> token before <EOS>: it is not a finished design")
    material = torch.as_tensor(vocab.material_of_id)[ids_t]
    thickness = torch.as_tensor(vocab.thickness_of_id)[ids_t]
    material[after_eos] = -1
    thickness = torch.nan_to_num(thickness, nan=0.0)
    return _run(material, thickness, list(vocab.materials), cfg, dtype, resolve_device(device), batch_size)
