"""Network compilation: a pandapower net becomes tensors (Ybus, Sbus, bus types, lookups).

Not hand-written on purpose: the bus-branch model is built by pandapower itself, by the same
calls its ``runpp`` makes (``_init_runpp_options``, ``_add_auxiliary_elements``, ``_pd2ppc``,
``makeYbus``, ``makeSbus``). Every element pandapower models (lines, 2- and 3-winding
transformers, shunts, bus-bus and branch switches, gens, sgens, ext_grids, wards, xwards,
impedances, out-of-service elements, isolated buses) is therefore modelled exactly as pandapower
models it. This module only moves the result into torch tensors and checks the input.

>>> from hai.grid.cases import load_case
>>> compiled = compile_network(load_case("case9"))
>>> compiled.n_bus, compiled.base_mva, len(compiled.ref), len(compiled.pv), len(compiled.pq)
(9, 100.0, 1, 2, 6)
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from hai.shared import InputError

#: Element tables that pandapower's AC power flow knows but this solver does not model.
UNSUPPORTED_ELEMENTS = ("svc", "tcsc", "ssc", "vsc", "b2b_vsc", "bus_dc", "line_dc", "source_dc", "load_dc")

#: Bus type codes (pandapower/pypower's): 3 slack, 2 PV, 1 PQ.
REF, PV, PQ = 3, 2, 1


@dataclass
class CompiledNetwork:
    """The bus-branch model of a pandapower net, in pandapower's internal ("ppci") bus order.

    ``ybus`` is a sparse complex128 CSR tensor (per unit), ``sbus`` the scheduled complex
    injections (per unit, generation minus load), ``v0`` pandapower's start voltages. ``ref``,
    ``pv``, ``pq`` index internal buses; ``bus_lookup[k]`` is the internal bus of
    ``net.bus.index[k]`` or -1 when that bus is out of service or isolated.
    """

    net: Any
    ybus: torch.Tensor
    sbus: torch.Tensor
    v0: torch.Tensor
    bus_type: torch.Tensor
    ref: torch.Tensor
    pv: torch.Tensor
    pq: torch.Tensor
    base_mva: float
    bus_lookup: torch.Tensor
    ppc: dict[str, Any] = field(repr=False)
    ppci: dict[str, Any] = field(repr=False)
    ybus_scipy: sp.csr_matrix = field(repr=False)
    yf_scipy: sp.csr_matrix = field(repr=False)
    yt_scipy: sp.csr_matrix = field(repr=False)

    @property
    def n_bus(self) -> int:
        """Number of internal (in-service, connected) buses."""
        return int(self.sbus.shape[0])

    def to(self, device: torch.device | str) -> CompiledNetwork:
        """A shallow copy with the tensors on ``device``."""
        moved = copy.copy(self)
        for name in ("ybus", "sbus", "v0", "bus_type", "ref", "pv", "pq", "bus_lookup"):
            setattr(moved, name, getattr(self, name).to(device))
        return moved


#: Element parameters checked before pandapower sees them: (table, column, rule), in-service rows
#: only. "positive": finite and > 0; "nonnegative": finite and ≥ 0; "finite": not NaN or infinite.
PARAMETER_RULES: tuple[tuple[str, str, str], ...] = (
    ("bus", "vn_kv", "positive"),
    ("line", "length_km", "positive"),
    ("line", "r_ohm_per_km", "finite"),  # negative in network equivalents (case145, case9241pegase)
    ("line", "x_ohm_per_km", "finite"),
    ("line", "c_nf_per_km", "finite"),
    ("line", "g_us_per_km", "finite"),
    ("line", "parallel", "positive"),
    ("line", "df", "positive"),
    ("trafo", "sn_mva", "positive"),
    ("trafo", "vn_hv_kv", "positive"),
    ("trafo", "vn_lv_kv", "positive"),
    ("trafo", "vk_percent", "finite"),  # negative in equivalents (the rte cases); 0 refused below
    ("trafo", "vkr_percent", "finite"),
    ("trafo", "pfe_kw", "finite"),
    ("trafo", "i0_percent", "finite"),
    ("trafo", "shift_degree", "finite"),
    ("trafo", "parallel", "positive"),
    ("trafo3w", "sn_hv_mva", "positive"),
    ("trafo3w", "sn_mv_mva", "positive"),
    ("trafo3w", "sn_lv_mva", "positive"),
    ("trafo3w", "vn_hv_kv", "positive"),
    ("trafo3w", "vn_mv_kv", "positive"),
    ("trafo3w", "vn_lv_kv", "positive"),
    ("trafo3w", "vk_hv_percent", "finite"),
    ("trafo3w", "vk_mv_percent", "finite"),
    ("trafo3w", "vk_lv_percent", "finite"),
    ("impedance", "rft_pu", "finite"),
    ("impedance", "xft_pu", "finite"),
    ("impedance", "sn_mva", "positive"),
    ("ext_grid", "vm_pu", "positive"),
    ("ext_grid", "va_degree", "finite"),
    ("gen", "vm_pu", "positive"),
    ("shunt", "p_mw", "finite"),
    ("shunt", "q_mvar", "finite"),
    ("shunt", "vn_kv", "positive"),
    ("ward", "ps_mw", "finite"),
    ("ward", "qs_mvar", "finite"),
    ("ward", "pz_mw", "finite"),
    ("ward", "qz_mvar", "finite"),
    ("xward", "ps_mw", "finite"),
    ("xward", "qs_mvar", "finite"),
    ("xward", "r_ohm", "finite"),
    ("xward", "x_ohm", "finite"),
    ("xward", "vm_pu", "positive"),
)
_RULE_TEXT = {
    "positive": "a finite number > 0",
    "nonnegative": "a finite number ≥ 0",
    "finite": "a finite number",
}


def _in_service_mask(df: Any) -> np.ndarray:
    """The rows of ``df`` in service (all rows where it has no in_service column)."""
    if "in_service" not in df:
        return np.ones(len(df), dtype=bool)
    return df["in_service"].to_numpy(dtype=bool)


def _check_parameters(net: Any) -> None:
    """Refuse NaN, infinite, zero or negative parameters naming the table, column and index."""
    # one mask per table and numpy columns: filtering the DataFrame per column cost ~10 ms on
    # case1354pegase, a fifth of a snapshot
    masks: dict[str, np.ndarray] = {}
    for table, column, rule in PARAMETER_RULES:
        df = net.get(table, None)
        if df is None or column not in df or not len(df):
            continue
        mask = masks[table] if table in masks else masks.setdefault(table, _in_service_mask(df))
        try:
            values = df[column].to_numpy(dtype=float)[mask]
        except (TypeError, ValueError):
            raise InputError(f"net.{table}.{column} must be numeric") from None
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(values)
            if rule == "positive":
                bad |= ~(values > 0)
            elif rule == "nonnegative":
                bad |= ~(values >= 0)
        if bad.any():
            first = int(np.argmax(bad))
            more = f" ({int(bad.sum())} rows in all)" if bad.sum() > 1 else ""
            raise InputError(
                f"net.{table}.{column} at index {df.index[mask][first]} is {float(values[first])!r}; "
                f"it must be {_RULE_TEXT[rule]}{more}"
            )
    for table, r_col, x_col in (
        ("line", "r_ohm_per_km", "x_ohm_per_km"),
        ("impedance", "rft_pu", "xft_pu"),
        ("trafo", "vk_percent", "vk_percent"),
    ):
        df = net.get(table, None)
        if df is None or not len(df) or r_col not in df or x_col not in df:
            continue
        mask = masks[table] if table in masks else _in_service_mask(df)
        zero = (df[r_col].to_numpy(dtype=float) == 0) & (df[x_col].to_numpy(dtype=float) == 0) & mask
        if zero.any():
            index = df.index[int(np.argmax(zero))]
            names = r_col if r_col == x_col else f"{r_col} = {x_col}"
            raise InputError(
                f"net.{table} at index {index} has zero impedance ({names} = 0)",
                hint="model a connection without impedance as a closed bus-bus switch",
            )


def _check_net(net: Any, *, voltage_depend_loads: bool = True) -> None:
    if not hasattr(net, "bus") or not hasattr(net, "ext_grid"):
        raise InputError(f"expected a pandapower net, got {type(net).__name__}")
    if len(net.bus) == 0:
        raise InputError("the net has no buses")
    for name in UNSUPPORTED_ELEMENTS:
        table = net.get(name) if hasattr(net, "get") else None
        if table is not None and len(table) and ("in_service" not in table or table.in_service.any()):
            raise InputError(
                f"element type '{name}' is not supported by hai.grid",
                hint="use pandapower.runpp for nets with FACTS devices or DC grids",
            )
    has_slack = bool((net.ext_grid.in_service).any()) if len(net.ext_grid) else False
    if not has_slack and len(net.gen) and "slack" in net.gen:
        has_slack = bool((net.gen.slack & net.gen.in_service).any())
    if not has_slack:
        raise InputError("the net has no slack: add an in-service ext_grid or a gen with slack=True")
    for table, columns in (
        ("load", ("p_mw", "q_mvar")),
        ("sgen", ("p_mw", "q_mvar")),
        ("gen", ("p_mw", "vm_pu")),
    ):
        df = net[table]
        mask = _in_service_mask(df)
        for column in columns:
            values = df[column].to_numpy(dtype=float)[mask]
            if values.size and not np.isfinite(values).all():
                first = df.index[mask][int(np.argmax(~np.isfinite(values)))]
                raise InputError(
                    f"net.{table}.{column} contains NaN or infinite values (the first at index {first})"
                )
    _check_parameters(net)
    load_mask = _in_service_mask(net.load)
    shares = ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent", "const_i_q_percent")
    for column in shares if voltage_depend_loads else ():
        if (
            column in net.load
            and (np.nan_to_num(net.load[column].to_numpy(dtype=float)[load_mask]) != 0).any()
        ):
            raise InputError(
                f"voltage-dependent loads (net.load.{column} != 0) are not supported by hai.grid",
                hint="set the const_z/const_i percentages to 0, pass voltage_depend_loads=False "
                "(constant-power loads, as pandapower then models them) or use pandapower.runpp",
            )


def _numba_available() -> bool:
    """Whether numba imports (pandapower then fuses buses over switches with its numba code)."""
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def compile_network(
    net: Any,
    *,
    calculate_voltage_angles: bool | str = True,
    voltage_depend_loads: bool = True,
    pp_options: dict[str, Any] | None = None,
) -> CompiledNetwork:
    """Build the bus-branch model of ``net`` with pandapower and return it as tensors.

    The pandapower options are those of ``pandapower.runpp`` defaults (Newton-Raphson, T model of
    transformers, connectivity check, no Q limits), or those in ``pp_options`` (the model-build
    options of :func:`hai.grid.options.build_options`). ``voltage_depend_loads=False`` models
    loads with const_z/const_i shares at constant power, as pandapower does. The net's ``_ppc``
    and lookups are updated as ``runpp`` would update them.

    >>> from hai.grid.cases import load_case
    >>> compile_network(load_case("case14")).ybus.layout
    torch.sparse_csr
    """
    from pandapower.auxiliary import _add_auxiliary_elements, _init_runpp_options  # type: ignore[import-untyped]
    from pandapower.pd2ppc import _pd2ppc  # type: ignore[import-untyped]
    from pandapower.pf.ppci_variables import _get_pf_variables_from_ppci  # type: ignore[import-untyped]
    from pandapower.pypower.makeSbus import makeSbus  # type: ignore[import-untyped]
    from pandapower.pypower.makeYbus import makeYbus  # type: ignore[import-untyped]
    from pandapower.results import init_results  # type: ignore[import-untyped]

    _check_net(net, voltage_depend_loads=voltage_depend_loads)
    build: dict[str, Any] = {
        "calculate_voltage_angles": calculate_voltage_angles,
        "trafo_model": "t",
        "trafo_loading": "current",
        "check_connectivity": True,
        **(pp_options or {}),
    }
    enforce_q_lims = bool(build.pop("enforce_q_lims", False))
    _init_runpp_options(
        net,
        algorithm="nr",
        init="flat",
        max_iteration="auto",
        tolerance_mva=1e-8,
        enforce_p_lims=False,
        enforce_q_lims=enforce_q_lims,  # Q limits in the gen table (and pandapower's capability curves)
        voltage_depend_loads=False,
        passed_parameters=None,  # net.user_pf_options are resolved by hai.grid.options, not here
        # pandapower's own default: its numba bus lookup (switch fusing) where numba imports
        numba=_numba_available(),
        # hai solves, not lightsim2grid: skip pandapower's compatibility checks for it (7 ms on
        # case1354pegase where lightsim2grid is installed)
        lightsim2grid=False,
        **build,
    )
    net["converged"] = False
    _add_auxiliary_elements(net)
    init_results(net)
    net._pd2ppc_lookups = {
        key: np.array([], dtype=np.int64)
        for key in ("bus", "bus_dc", "ext_grid", "gen", "branch", "branch_dc")
    }
    try:
        ppc, ppci = _pd2ppc(net)
    except (ValueError, NotImplementedError) as error:
        if not build.get("distributed_slack") or "slack" not in str(error).lower():
            raise
        # pandapower's own checks of the slack weights (sum zero or negative on an island,
        # several islands with weights, xward weights at PV buses)
        raise InputError(
            f"distributed_slack=True: {error}",
            hint="set slack_weight > 0 on ext_grid/gen/xward rows of one connected grid",
        ) from None
    net["_ppc"] = ppc
    base_mva, bus, gen, branch, _svc, _tcsc, _ssc, _vsc, ref, pv, pq, *_, v0, _ref_gens = (
        _get_pf_variables_from_ppci(ppci, True)
    )
    if len(bus) == 0:
        raise InputError("no bus of the net is in service and connected to a slack")
    if len(ref) == 0:
        raise InputError("the net has no slack bus in service")
    ybus, yf, yt = makeYbus(base_mva, bus, branch)
    sbus = makeSbus(base_mva, bus, gen)
    ybus = sp.csr_matrix(ybus)
    ybus.sort_indices()
    lookup = np.asarray(net._pd2ppc_lookups["bus"], dtype=np.int64)
    ids = net.bus.index.to_numpy(dtype=np.int64)
    internal = lookup[ids] if lookup.size else np.full(len(ids), -1)
    internal = np.where((internal >= 0) & (internal < len(bus)), internal, -1)
    bus_type = np.full(len(bus), PQ, dtype=np.int64)
    bus_type[pv] = PV
    bus_type[ref] = REF
    return CompiledNetwork(
        net=net,
        ybus=_to_torch_csr(ybus),
        sbus=torch.from_numpy(np.asarray(sbus, dtype=np.complex128).copy()),
        v0=torch.from_numpy(np.asarray(v0, dtype=np.complex128).copy()),
        bus_type=torch.from_numpy(bus_type),
        ref=torch.from_numpy(np.asarray(ref, dtype=np.int64)),
        pv=torch.from_numpy(np.asarray(pv, dtype=np.int64)),
        pq=torch.from_numpy(np.asarray(pq, dtype=np.int64)),
        base_mva=float(base_mva),
        bus_lookup=torch.from_numpy(internal),
        ppc=ppc,
        ppci=ppci,
        ybus_scipy=ybus,
        yf_scipy=sp.csr_matrix(yf),
        yt_scipy=sp.csr_matrix(yt),
    )


def _to_torch_csr(matrix: sp.csr_matrix) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data.astype(np.complex128)),
            size=matrix.shape,
            dtype=torch.complex128,
            check_invariants=True,
        )


def dc_angles(compiled: CompiledNetwork, sbus: np.ndarray | None = None) -> np.ndarray:
    """Voltage angles (radians, internal order) of pandapower's DC power flow for ``sbus``.

    ``sbus`` may be (n_bus,) or (batch, n_bus); the result has the same shape.
    """
    from pandapower.pypower.idx_bus import GS  # type: ignore[import-untyped]
    from pandapower.pypower.makeBdc import makeBdc  # type: ignore[import-untyped]

    from hai.grid.sparse_lu import factorize

    bus, branch = compiled.ppci["bus"], compiled.ppci["branch"]
    b_dc, _bf, p_businj, *_ = makeBdc(bus, branch)
    s = compiled.sbus.cpu().numpy() if sbus is None else np.asarray(sbus)
    p = np.real(np.atleast_2d(s)) - p_businj[None, :] - bus[:, GS][None, :] / compiled.base_mva
    ref = compiled.ref.cpu().numpy()
    pvpq = np.sort(np.r_[compiled.pv.cpu().numpy(), compiled.pq.cpu().numpy()])
    va0 = np.angle(compiled.v0.cpu().numpy())
    angles = np.tile(va0, (p.shape[0], 1))
    if pvpq.size:
        b = sp.csc_matrix(b_dc)
        lu = factorize(b[pvpq][:, pvpq])
        rhs = p[:, pvpq] - (b[pvpq][:, ref] @ va0[ref])[None, :]
        # singular (as pandapower's DC start, whose spsolve gives NaN): Newton then reports it
        angles[:, pvpq] = np.nan if lu is None else lu.solve(np.ascontiguousarray(rhs.T)).T
    return angles if sbus is not None and np.ndim(sbus) == 2 else angles[0]


def injection_matrix(compiled: CompiledNetwork, table: str) -> torch.Tensor:
    """(n_bus, n_element) real matrix mapping element MW (or Mvar) to per-unit bus injections.

    Uses the element's ``scaling`` and ``in_service`` as pandapower does; elements at buses
    that are out of service map to nothing. The sign is that of a consumer (loads).
    """
    df = compiled.net[table]
    n = len(df)
    if n == 0:
        return torch.zeros(compiled.n_bus, 0, dtype=torch.float64)
    lookup = np.asarray(compiled.net._pd2ppc_lookups["bus"], dtype=np.int64)
    bus = lookup[df.bus.to_numpy(dtype=np.int64)]
    scale = df.scaling.to_numpy(dtype=float) * df.in_service.to_numpy(dtype=float) / compiled.base_mva
    keep = (bus >= 0) & (bus < compiled.n_bus) & (scale != 0)
    dense = np.zeros((compiled.n_bus, n))
    np.add.at(dense, (bus[keep], np.nonzero(keep)[0]), scale[keep])
    return torch.from_numpy(dense)


def injection_matrix_sparse(compiled: CompiledNetwork, table: str) -> sp.csr_matrix:
    """:func:`injection_matrix` as a scipy CSR matrix (one non-zero per element, not a dense
    n_bus × n_element block: case9241pegase's loads would be 41 million entries)."""
    df = compiled.net[table]
    n = len(df)
    if n == 0:
        return sp.csr_matrix((compiled.n_bus, 0))
    lookup = np.asarray(compiled.net._pd2ppc_lookups["bus"], dtype=np.int64)
    bus = lookup[df.bus.to_numpy(dtype=np.int64)]
    scale = df.scaling.to_numpy(dtype=float) * df.in_service.to_numpy(dtype=float) / compiled.base_mva
    keep = (bus >= 0) & (bus < compiled.n_bus) & (scale != 0)
    return sp.csr_matrix((scale[keep], (bus[keep], np.nonzero(keep)[0])), shape=(compiled.n_bus, n))


def degrees(radians: torch.Tensor) -> torch.Tensor:
    """Radians to degrees (pandapower's ``va_degree``)."""
    return radians * (180.0 / math.pi)
