"""Batched Newton-Raphson on the power mismatch, with the sparse Jacobian, in torch.

Hand-written because no library solves many power flows at once in torch: the residual
``S(V) - Sbus`` and the Jacobian values of a whole batch are computed in one tensor program
(gathers and ``index_add`` over the non-zeros of Ybus, so any device works), and every
scenario may have its own Ybus values on a shared sparsity pattern (branch outages). The
Jacobian is the polar one of pypower/pandapower (``dSbus_dV``): unknowns are the angles of
PV and PQ buses and the magnitudes of PQ buses, equations are P at PV/PQ and Q at PQ buses.

The linear solve is the only step that is not torch: on the CPU the batch's Jacobians form one
block-diagonal sparse matrix factorised by a sparse LU (:mod:`hai.grid.sparse_lu`: KLU where
PyKLU is installed, scipy's SuperLU otherwise), on other devices torch solves the dense
Jacobians batched (``torch.linalg.solve``). Convergence is judged per scenario on the infinity
norm of the mismatch in MVA, like pandapower's ``tolerance_mva``.

Why KLU, then SuperLU: KLU is the factorisation made for circuit and power-flow matrices (what
lightsim2grid uses); on case9241pegase's Jacobian it factorises in 12 ms against SuperLU's 25 ms
and solves in 0.24 ms against 0.97 ms. SuperLU is what scipy ships (no extra dependency) and what
pandapower's own Newton calls. Every factorisation of one system's Jacobians reuses KLU's symbolic
analysis of the pattern (:meth:`PowerFlowSystem.factor_jacobian`; case9241pegase: 6.4 ms per
factorisation instead of 12 ms with the analysis, so a snapshot's Newton pays the ordering once).
For the many similar solves of a time series the factorisation itself is kept
(:class:`JacobianReuse`, :func:`chord_newton`): chord steps with good-Broyden secant corrections
while they contract the exact mismatch, a refactorisation otherwise; this removes most
factorisations.

>>> from hai.grid.cases import load_case
>>> from hai.grid.network import compile_network
>>> compiled = compile_network(load_case("case14"))
>>> system = PowerFlowSystem(compiled)
>>> result = newton_raphson(system, compiled.v0[None], compiled.sbus[None])
>>> bool(result.converged.all()), float(result.max_mismatch_mva.max()) < 1e-8
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from hai.grid.network import CompiledNetwork
from hai.grid.sparse_lu import LUFactor, SymbolicLU, factorize, resolve_backend


@dataclass
class NewtonResult:
    """Solved complex voltages (batch, n_bus) in internal order, and per-scenario diagnostics."""

    v: torch.Tensor
    converged: torch.Tensor
    iterations: torch.Tensor
    max_mismatch_mva: torch.Tensor
    #: scenarios stopped early by a screening test (their voltages are approximate); None: no screening
    screened: torch.Tensor | None = None
    #: the solved slack power (batch,) in pu under distributed slack; None otherwise
    slack: torch.Tensor | None = None


#: Largest batch·n_var solved as one block-diagonal sparse system on the CPU; larger batches are
#: solved one scenario at a time (SuperLU on one big block-diagonal matrix was slower there:
#: case1354pegase × 96 1.06 s against 0.69 s, case9241pegase × 8 1.27 s against 0.78 s).
BLOCK_SOLVE_MAX_UNKNOWNS = 50_000


class PowerFlowSystem:
    """The index bookkeeping shared by every scenario of one compiled network.

    Holds the Ybus pattern (rows, columns, values), the unknowns (angles at PV+PQ buses,
    magnitudes at PQ buses) and the Jacobian's CSR pattern with the map from Ybus non-zeros
    to Jacobian entries.
    """

    def __init__(
        self,
        compiled: CompiledNetwork,
        device: torch.device | str = "cpu",
        linear_solver: str = "auto",
        slack_weights: np.ndarray | None = None,
    ) -> None:
        if linear_solver not in ("auto", "klu", "superlu", "dense"):
            raise ValueError(f"linear_solver must be auto, klu, superlu or dense, got {linear_solver!r}")
        self.device = torch.device(device)
        #: "klu" or "superlu" (sparse LU on the CPU, :mod:`hai.grid.sparse_lu`), "dense" (batched
        #: torch.linalg.solve) or "auto": sparse LU on the CPU (KLU where PyKLU is installed),
        #: dense elsewhere.
        self.linear_solver = linear_solver
        if linear_solver == "auto":
            self.linear_solver = resolve_backend("auto") if self.device.type == "cpu" else "dense"
        elif linear_solver == "klu":
            resolve_backend("klu")
        self.base_mva = compiled.base_mva
        ybus = compiled.ybus_scipy
        n = ybus.shape[0]
        self.n_bus = n
        coo = ybus.tocoo()
        rows = coo.row.astype(np.int64)
        cols = coo.col.astype(np.int64)
        self.ybus_rows_np, self.ybus_cols_np = rows, cols
        pv = compiled.pv.cpu().numpy()
        pq = compiled.pq.cpu().numpy()
        #: distributed slack (pandapower's ``distributed_slack``): the first reference bus keeps
        #: its angle, the other reference buses are PV buses, and one more unknown, the slack
        #: power, enters every bus's P mismatch weighted by ``slack_weights`` (per bus, summing to
        #: 1); its equation is the P mismatch at the first reference bus.
        self.distributed = slack_weights is not None
        ref = np.sort(compiled.ref.cpu().numpy())
        if self.distributed:
            pv = np.r_[pv, ref[1:]]
        pvpq = np.sort(np.r_[pv, pq])
        pq = np.sort(pq)
        self.n_a, self.n_m = len(pvpq), len(pq)
        self.n_var = self.n_a + self.n_m + (1 if self.distributed else 0)
        pos_a = np.full(n, -1)
        pos_a[pvpq] = np.arange(len(pvpq))
        pos_m = np.full(n, -1)
        pos_m[pq] = np.arange(len(pq)) + self.n_a
        self.pos_a_np, self.pos_m_np = pos_a, pos_m
        # rows of the P equations: the angle unknowns' rows, and the last row for the first
        # reference bus under distributed slack
        pos_p = pos_a.copy()
        const_rows = np.zeros(0, dtype=np.int64)
        const_values = np.zeros(0)
        if self.distributed:
            weights = np.asarray(slack_weights, dtype=np.float64)
            if weights.shape != (n,):
                raise ValueError(f"slack_weights must have one value per bus ({n}), got {weights.shape}")
            pos_p[ref[0]] = self.n_var - 1
            self.ref0 = int(ref[0])
            weighted = np.flatnonzero(weights != 0)
            const_rows = np.unique(np.r_[pos_p[weighted], self.n_var - 1]).astype(np.int64)
            # pos_p is one-to-one on the buses that have a row, so each row has one bus
            row_bus = np.full(self.n_var, -1)
            row_bus[pos_p[pos_p >= 0]] = np.flatnonzero(pos_p >= 0)
            const_values = weights[row_bus[const_rows]]
            self.slack_weights = torch.from_numpy(weights).to(self.device)
        # Jacobian contributions: (source kind, source index, row, col)
        # kinds: 0 Re dVa, 1 Re dVm, 2 Im dVa, 3 Im dVm; sources: nnz entries then diagonals.
        diag = np.arange(n)
        src_rows = np.r_[rows, diag]
        src_cols = np.r_[cols, diag]
        src_index = np.arange(len(src_rows))
        contributions = []
        for kind, row_pos, col_pos in (
            (0, pos_p, pos_a),
            (1, pos_p, pos_m),
            (2, pos_m, pos_a),
            (3, pos_m, pos_m),
        ):
            r = row_pos[src_rows]
            c = col_pos[src_cols]
            keep = (r >= 0) & (c >= 0)
            contributions.append((kind, src_index[keep], r[keep], c[keep]))
        const_cols = np.full(len(const_rows), self.n_var - 1, dtype=np.int64)
        all_rows = np.concatenate([c[2] for c in contributions] + [const_rows])
        all_cols = np.concatenate([c[3] for c in contributions] + [const_cols])
        linear = all_rows * max(self.n_var, 1) + all_cols
        unique, inverse = np.unique(linear, return_inverse=True)
        self.j_rows_np = unique // max(self.n_var, 1)
        self.j_cols_np = unique % max(self.n_var, 1)
        self.j_nnz = len(unique)
        csr = sp.csr_matrix(
            (np.arange(self.j_nnz, dtype=np.float64) + 1, (self.j_rows_np, self.j_cols_np)),
            shape=(self.n_var, self.n_var),
        )
        csr.sort_indices()
        # CSR order of the (sorted, unique) entries
        self.j_csr_order = (csr.data.astype(np.int64) - 1) if self.j_nnz else np.zeros(0, dtype=np.int64)
        self.j_indptr = csr.indptr.astype(np.int64)
        self.j_indices = csr.indices.astype(np.int64)
        # the same pattern in CSC order, for the factorisations that keep KLU's symbolic analysis
        csc = sp.csc_matrix(
            (np.arange(self.j_nnz, dtype=np.float64) + 1, (self.j_rows_np, self.j_cols_np)),
            shape=(self.n_var, self.n_var),
        )
        csc.sort_indices()
        self.j_csc_order = (csc.data.astype(np.int64) - 1) if self.j_nnz else np.zeros(0, dtype=np.int64)
        self.j_csc_indptr, self.j_csc_indices = csc.indptr, csc.indices
        self._symbolic: SymbolicLU | None = None
        to_t = self._t
        self.kinds = [
            (kind, to_t(src), to_t(inverse[offset : offset + len(src)]))
            for (kind, src, _, _), offset in zip(
                contributions, np.cumsum([0] + [len(c[1]) for c in contributions[:-1]]), strict=True
            )
        ]
        n_contrib = sum(len(c[1]) for c in contributions)
        #: constant Jacobian entries (the slack column under distributed slack)
        self.const_target = to_t(inverse[n_contrib:])
        self.const_values = torch.from_numpy(np.asarray(const_values, dtype=np.float64)).to(self.device)
        self.ybus_rows = to_t(rows)
        self.ybus_cols = to_t(cols)
        self.ybus_values = torch.from_numpy(coo.data.astype(np.complex128)).to(self.device)
        self.pvpq = to_t(pvpq)
        self.pq = to_t(pq)
        self.pvpq_np, self.pq_np = pvpq.astype(np.int64), pq.astype(np.int64)
        self._ybus_csr: sp.csr_matrix | None = None
        self.pos_a = to_t(pos_a)
        self.pos_m = to_t(pos_m)
        self.j_rows = to_t(self.j_rows_np)
        self.j_cols = to_t(self.j_cols_np)
        diag_linear = np.arange(self.n_var) * max(self.n_var, 1) + np.arange(self.n_var)
        self.j_diag = (
            to_t(np.searchsorted(unique, diag_linear)) if self.n_var else to_t(np.zeros(0, np.int64))
        )

    def ybus_csr(self) -> sp.csr_matrix:
        """The (base) Ybus as a scipy CSR matrix, built once."""
        if self._ybus_csr is None:
            y = self.ybus_values.cpu().numpy()
            shape = (self.n_bus, self.n_bus)
            self._ybus_csr = sp.csr_matrix((y, (self.ybus_rows_np, self.ybus_cols_np)), shape=shape)
        return self._ybus_csr

    def factor_jacobian(self, values: np.ndarray) -> LUFactor | None:
        """Factorise one Jacobian (values (nnz_J,) in the order of ``j_rows``/``j_cols``, CPU).

        The sparse backends keep the pattern's symbolic analysis across calls (KLU's ordering is
        computed once per system, :class:`~hai.grid.sparse_lu.SymbolicLU`). None where singular.
        """
        if self._symbolic is None:
            self._symbolic = SymbolicLU(self.j_csc_indptr, self.j_csc_indices, self.n_var, self.linear_solver)
        return self._symbolic.factor(np.asarray(values, dtype=np.float64)[self.j_csc_order])

    def _t(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64)).to(self.device)

    # ----- physics -------------------------------------------------------------------------
    def currents(self, v: torch.Tensor, ybus_values: torch.Tensor | None = None) -> torch.Tensor:
        """Bus currents Ybus·V for a batch of voltages (batch, n_bus)."""
        y = self.ybus_values if ybus_values is None else ybus_values
        terms = y * v[:, self.ybus_cols]
        out = torch.zeros_like(v)
        return out.index_add_(1, self.ybus_rows, terms)

    def power(self, v: torch.Tensor, ybus_values: torch.Tensor | None = None) -> torch.Tensor:
        """Complex bus injections S = V ⊙ conj(Ybus·V), per unit."""
        return v * torch.conj(self.currents(v, ybus_values))

    def residual(
        self,
        v: torch.Tensor,
        sbus: torch.Tensor,
        ybus_values: torch.Tensor | None = None,
        slack: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The mismatch [ΔP at PV+PQ, ΔQ at PQ] (batch, n_var), per unit.

        Under distributed slack ``slack`` (batch,) is the slack power in pu: the mismatch is
        ``S(V) - Sbus + slack_weights·slack`` (pandapower's), and its last entry is ΔP at the
        first reference bus.
        """
        mis = self.power(v, ybus_values) - sbus
        if not self.distributed:
            return torch.cat([mis.real[:, self.pvpq], mis.imag[:, self.pq]], dim=1)
        if slack is None:
            raise ValueError("a distributed-slack system needs the slack power")
        p = mis.real + self.slack_weights[None, :] * slack[:, None]
        return torch.cat([p[:, self.pvpq], mis.imag[:, self.pq], p[:, self.ref0, None]], dim=1)

    def jacobian_values(self, v: torch.Tensor, ybus_values: torch.Tensor | None = None) -> torch.Tensor:
        """Values (batch, nnz_J) of the Jacobian, in the order of ``j_rows``/``j_cols``."""
        y = self.ybus_values if ybus_values is None else ybus_values
        if y.dim() == 1:
            y = y.expand(v.shape[0], -1)
        current = self.currents(v, y)
        vnorm = v / v.abs()
        vi = v[:, self.ybus_rows]
        d_va = -1j * vi * torch.conj(y * v[:, self.ybus_cols])
        d_vm = vi * torch.conj(y * vnorm[:, self.ybus_cols])
        d_va = torch.cat([d_va, 1j * v * torch.conj(current)], dim=1)
        d_vm = torch.cat([d_vm, torch.conj(current) * vnorm], dim=1)
        sources = (d_va.real, d_vm.real, d_va.imag, d_vm.imag)
        values = torch.zeros(v.shape[0], self.j_nnz, dtype=torch.float64, device=v.device)
        for kind, src, target in self.kinds:
            values.index_add_(1, target, sources[kind][:, src])
        if len(self.const_target):
            values.index_add_(1, self.const_target, self.const_values.expand(v.shape[0], -1))
        return values

    def update(self, v: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        """Apply a step in (angle, magnitude) coordinates to the voltages."""
        va = torch.angle(v)
        vm = v.abs()
        va = va.index_add(1, self.pvpq, dx[:, : self.n_a])
        vm = vm.index_add(1, self.pq, dx[:, self.n_a : self.n_a + self.n_m])
        return torch.polar(vm, va)

    # ----- linear algebra ------------------------------------------------------------------
    def solve(self, values: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
        """Solve J_b x_b = rhs_b for every scenario b; rows of NaN where J_b is singular."""
        batch = values.shape[0]
        if self.n_var == 0:
            return rhs.clone()
        if self.linear_solver == "dense":
            dense = torch.zeros(batch, self.n_var, self.n_var, dtype=torch.float64, device=values.device)
            dense[:, self.j_rows, self.j_cols] = values
            result = torch.linalg.solve_ex(dense, rhs.unsqueeze(-1))
            x = result.result.squeeze(-1)
            x[result.info != 0] = float("nan")
            return x
        b = rhs.detach().cpu().numpy()
        values_np = values.detach().cpu().numpy()

        def one(k: int) -> np.ndarray:
            lu = self.factor_jacobian(values_np[k])
            return np.full(self.n_var, np.nan) if lu is None else lu.solve(b[k])

        if batch == 1 or batch * self.n_var > BLOCK_SOLVE_MAX_UNKNOWNS:
            return torch.from_numpy(np.stack([one(k) for k in range(batch)]))
        nnz = len(self.j_indices)
        indptr = (self.j_indptr[None, :-1] + nnz * np.arange(batch)[:, None]).ravel()
        indptr = np.r_[indptr, nnz * batch]
        indices = (self.j_indices[None, :] + self.n_var * np.arange(batch)[:, None]).ravel()
        vals = values_np[:, self.j_csr_order]
        big = sp.csr_matrix((vals.ravel(), indices, indptr), shape=(batch * self.n_var,) * 2)
        lu = factorize(big, self.linear_solver)
        if lu is not None:
            x = lu.solve(b.ravel()).reshape(batch, self.n_var)
            if np.isfinite(x).all():
                return torch.from_numpy(x)
        return torch.from_numpy(np.stack([one(k) for k in range(batch)]))

    @property
    def sparse(self) -> bool:
        """Whether the linear solves are sparse LU factorisations (KLU or SuperLU) on the CPU."""
        return self.linear_solver in ("klu", "superlu")


def distributed_slack_system(
    compiled: CompiledNetwork, device: torch.device | str = "cpu"
) -> PowerFlowSystem:
    """The distributed-slack system of a net compiled with ``distributed_slack=True`` (pandapower's
    model build set the per-bus weights ``bus[:, SL_FAC]``)."""
    from pandapower.pypower.idx_bus import SL_FAC  # type: ignore[import-untyped]

    weights = np.real(compiled.ppci["bus"][:, SL_FAC]).astype(float)
    return PowerFlowSystem(compiled, device=device, slack_weights=weights)


def newton_raphson(
    system: PowerFlowSystem,
    v0: torch.Tensor,
    sbus: torch.Tensor,
    *,
    ybus_values: torch.Tensor | None = None,
    tolerance_mva: float = 1e-8,
    max_iteration: int = 20,
    frozen: torch.Tensor | None = None,
    screen: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    slack0: torch.Tensor | None = None,
) -> NewtonResult:
    """Newton-Raphson for a batch: ``v0`` and ``sbus`` are (batch, n_bus) complex, per unit.

    A distributed-slack ``system`` (``slack_weights`` given) also solves for the slack power,
    starting from ``slack0`` (batch,) in pu (pandapower starts from Σ Pg - Σ Pd).

    ``ybus_values`` (batch, nnz) gives each scenario its own Ybus values on the shared pattern.
    ``frozen`` (batch, n_var) marks unknowns held fixed (buses cut off by an outage): their
    equations are replaced by identity rows. Scenarios stop updating once converged; a scenario
    whose step is not finite stops and is reported as not converged.

    ``screen(v, scenarios, bound) -> certain`` (optional) is asked after every step that shrank
    to at most half the previous one (the contracting regime, where the error left in each
    unknown is below the step just taken): ``bound`` (per scenario) is twice that step's ∞-norm
    in pu and radians, a conservative bound on the remaining error of every voltage magnitude
    and angle. Scenarios it answers True for stop iterating and are flagged in ``screened``.
    """
    device = system.device
    v = v0.to(device=device, dtype=torch.complex128).clone()
    s = sbus.to(device=device, dtype=torch.complex128)
    if s.dim() == 1:
        s = s.expand(v.shape[0], -1)
    batch = v.shape[0]
    tol = tolerance_mva / system.base_mva
    iterations = torch.zeros(batch, dtype=torch.int64, device=device)
    failed = torch.zeros(batch, dtype=torch.bool, device=device)
    y_all = ybus_values.to(device) if ybus_values is not None else None
    slack: torch.Tensor | None = None
    if system.distributed:
        if frozen is not None or screen is not None:
            raise ValueError("distributed slack does not take frozen unknowns or screening")
        slack = torch.zeros(batch, dtype=torch.float64, device=device)
        if slack0 is not None:
            slack = slack + slack0.to(device=device, dtype=torch.float64)

    def residual(vv: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        f = system.residual(
            vv, s[idx], None if y_all is None else y_all[idx], None if slack is None else slack[idx]
        )
        if frozen is not None:
            f = torch.where(frozen[idx], torch.zeros_like(f), f)
        return f

    screened = torch.zeros(batch, dtype=torch.bool, device=device)
    prev_step = torch.full((batch,), float("inf"), dtype=torch.float64, device=device)
    all_idx = torch.arange(batch, device=device)
    f = residual(v, all_idx)
    norm = f.abs().amax(dim=1) if system.n_var else torch.zeros(batch, dtype=torch.float64, device=device)
    for _ in range(max_iteration):
        active = (~(norm <= tol)) & ~failed & ~screened
        if not bool(active.any()):
            break
        idx = torch.nonzero(active).squeeze(1)
        va = v[idx]
        y = None if y_all is None else y_all[idx]
        values = system.jacobian_values(va, y)
        if frozen is not None:
            fz = frozen[idx]
            keep = ~(fz[:, system.j_rows] | fz[:, system.j_cols])
            values = torch.where(keep, values, torch.zeros_like(values))
            diag_vals = values[:, system.j_diag]
            values[:, system.j_diag] = torch.where(fz, torch.ones_like(diag_vals), diag_vals)
        dx = -system.solve(values, f[idx]).to(device)
        bad = ~torch.isfinite(dx).all(dim=1)
        dx = torch.where(bad[:, None], torch.zeros_like(dx), dx)
        vn = system.update(va, dx)
        v[idx] = vn
        if slack is not None:
            slack[idx] = slack[idx] + dx[:, -1]
        iterations[idx] += 1
        failed[idx] |= bad
        fn = residual(vn, idx)
        f[idx] = fn
        nn = (
            fn.abs().amax(dim=1)
            if system.n_var
            else torch.zeros(len(idx), dtype=torch.float64, device=device)
        )
        nn = torch.where(torch.isfinite(nn), nn, torch.full_like(nn, float("inf")))
        norm[idx] = nn
        failed[idx] |= ~torch.isfinite(vn).all(dim=1)
        if screen is not None and system.n_var:
            size = dx.abs().amax(dim=1)
            contracting = (size <= 0.5 * prev_step[idx]) & ~failed[idx] & (nn > tol)
            prev_step[idx] = size
            if bool(contracting.any()):
                k = idx[contracting]
                certain = screen(vn[contracting], k, 2.0 * size[contracting]).to(device)
                screened[k[certain]] = True
    converged = (norm <= tol) & ~failed
    return NewtonResult(
        v=v,
        converged=converged,
        iterations=iterations,
        max_mismatch_mva=norm * system.base_mva,
        screened=(screened & ~converged) if screen is not None else None,
        slack=slack,
    )


#: A reused factorisation must shrink the ∞-norm mismatch at least this much per step, or the
#: Jacobian is refactorised at the current point.
CHORD_CONTRACTION = 0.85
#: Most linear solves of one chord solve before it gives up (then plain Newton decides).
CHORD_MAX_SOLVES = 40
#: Smallest system (unknowns) for which time series reuse the factorisation: below it a
#: factorisation costs about as much as the solves and mismatches that reuse adds.
CHORD_MIN_UNKNOWNS = 1000


class JacobianReuse:
    """One sparse LU factorisation of a recent Jacobian, kept between solves (CPU, one scenario).

    :func:`chord_newton` iterates with it while it contracts the exact mismatch fast enough and
    refactorises at the current point when it does not, so a time series warm-started from the
    previous step mostly pays triangular solves instead of a factorisation per Newton step.
    """

    def __init__(self, system: PowerFlowSystem) -> None:
        self.system = system
        self.lu: LUFactor | None = None
        #: factorisations made so far (for diagnostics)
        self.factorisations = 0

    def factorise(self, v: torch.Tensor) -> bool:
        """Factorise the Jacobian at voltages ``v`` (1, n_bus); False if it is singular."""
        system = self.system
        values = system.jacobian_values(v).detach().cpu().numpy()[0]
        # SuperLU: COLAMD (MMD_AT_PLUS_A measured slower here); KLU keeps its symbolic analysis
        self.lu = system.factor_jacobian(values)
        if self.lu is None:  # singular
            return False
        self.factorisations += 1
        return True

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        assert self.lu is not None
        return self.lu.solve(rhs)


@dataclass
class ChordSolution:
    """One scenario solved by :func:`chord_solve` (numpy, per unit)."""

    v: np.ndarray
    va: np.ndarray
    vm: np.ndarray
    converged: bool
    solves: int
    #: ∞-norm of the exact mismatch at ``v``, per unit
    norm: float
    slack: float | None


def chord_solve(
    system: PowerFlowSystem,
    v0: np.ndarray,
    sbus: np.ndarray,
    reuse: JacobianReuse,
    *,
    tol: float,
    max_iteration: int = 20,
    slack0: float | None = None,
    predictor: np.ndarray | None = None,
) -> ChordSolution:
    """:func:`chord_newton` on numpy arrays: ``v0``, ``sbus``, ``predictor`` (n_bus,) complex, ``tol``
    in per unit; the form a time series loop calls without a tensor round trip per step."""
    # one scenario on the CPU: numpy on Ybus in CSR (a few array operations per step instead of
    # torch's gathers, whose per-call cost dominated once the factorisation was KLU's)
    ybus = system.ybus_csr()
    pvpq, pq = system.pvpq_np, system.pq_np
    n_a, n_m = system.n_a, system.n_m
    v = np.asarray(v0, dtype=np.complex128)
    va, vm = np.angle(v), np.abs(v)
    s = np.asarray(sbus, dtype=np.complex128)
    slack = (0.0 if slack0 is None else float(slack0)) if system.distributed else None
    weights = system.slack_weights.cpu().numpy() if system.distributed else None

    # [P at PV+PQ, Q at PQ] as one gather from the (re, im) float view of the complex mismatch
    take = np.concatenate([2 * pvpq, 2 * pq + 1])

    def residual(vv: np.ndarray, sl: float | None) -> np.ndarray:
        mis = vv * np.conj(ybus @ vv)
        mis -= s
        if weights is None or sl is None:
            return mis.view(np.float64).take(take)
        p = mis.real + weights * sl
        return np.concatenate([p[pvpq], mis.imag[pq], p[system.ref0 : system.ref0 + 1]])

    def infinity_norm(x: np.ndarray) -> float:
        return float(np.abs(x).max()) if x.size else 0.0

    f = residual(v, slack)
    norm = infinity_norm(f)
    if predictor is not None and system.n_var:
        vp = np.asarray(predictor, dtype=np.complex128)
        fp = residual(vp, slack)
        if infinity_norm(fp) < norm:
            v, va, vm, f, norm = vp, np.angle(vp), np.abs(vp), fp, infinity_norm(fp)
    solves = 0
    steps: list[np.ndarray] = []
    norms2: list[float] = []
    factorised_here = 0
    fresh = False  # the factorisation is the Jacobian at the current point
    newton = False  # plain Newton from here on
    failed = False
    while not norm <= tol:
        if newton or solves >= CHORD_MAX_SOLVES:
            newton = True
            reuse.lu = None
        if reuse.lu is None:
            if factorised_here >= max_iteration or not reuse.factorise(torch.from_numpy(v)[None]):
                failed = True
                break
            factorised_here += 1
            fresh = True
            steps, norms2 = [], []
        # good Broyden on the kept factorisation (Kelley's brsol recurrence over this solve's
        # accepted steps s_j: z = -H0 f, z += s_{j+1} (s_j·z)/|s_j|², z /= 1 - s_n·z/|s_n|²): a
        # secant-corrected chord step, 694 -> 531 solves on case1354pegase's 96-step series
        z = -reuse.solve(f)
        for j in range(len(steps) - 1):
            z += steps[j + 1] * (steps[j] @ z) / norms2[j]
        if steps:
            z /= 1.0 - (steps[-1] @ z) / norms2[-1]
        dx = -z
        solves += 1
        # a step that is not finite makes the mismatch NaN or inf (the max propagates NaN)
        van, vmn = va.copy(), vm.copy()
        van[pvpq] -= dx[:n_a]
        vmn[pq] -= dx[n_a : n_a + n_m]
        # torch's polar: about 0.6x the time of numpy's vm * exp(1j * va) here
        vn = torch.polar(torch.from_numpy(vmn), torch.from_numpy(van)).numpy()
        sn = None if slack is None else slack - float(dx[-1])
        with np.errstate(all="ignore"):
            fn = residual(vn, sn)
        nn = infinity_norm(fn)
        if not np.isfinite(nn):
            if fresh:  # a full Newton step that is not finite: Newton would stop here too
                failed = True
                break
            reuse.lu = None  # stale: refactorise at the current point
            continue
        if fresh or nn <= CHORD_CONTRACTION * norm:
            v, va, vm, slack, f, norm = vn, van, vmn, sn, fn, nn
            fresh = False
            size2 = float(z @ z)
            if size2 > 0:
                steps.append(z)
                norms2.append(size2)
            continue
        reuse.lu = None  # stale: refactorise at the current point
    return ChordSolution(
        v=v, va=va, vm=vm, converged=not failed and norm <= tol, solves=solves, norm=norm, slack=slack
    )


def chord_newton(
    system: PowerFlowSystem,
    v0: torch.Tensor,
    sbus: torch.Tensor,
    reuse: JacobianReuse,
    *,
    tolerance_mva: float = 1e-8,
    max_iteration: int = 20,
    slack0: torch.Tensor | None = None,
    predictor: torch.Tensor | None = None,
) -> NewtonResult:
    """Newton-Raphson with Jacobian reuse for one scenario on the CPU (``v0``, ``sbus``: (1, n_bus)).

    ``predictor`` (1, n_bus), optional: another start (a time series' extrapolation of its last
    two solutions); the iteration starts from whichever of ``v0`` and it has the smaller mismatch.

    Steps with the factorisation held in ``reuse`` (from an earlier point or step), corrected by
    good Broyden's rank-one updates from this solve's accepted steps, while each
    shrinks the exact ∞-norm mismatch by :data:`CHORD_CONTRACTION`; otherwise refactorises at the
    current point and takes a full Newton step, as Newton takes it (the ∞-norm need not fall at
    once). After :data:`CHORD_MAX_SOLVES` solves it is plain Newton (a factorisation per
    step). At most ``max_iteration``
    factorisations, as Newton's budget, so a case without a solution fails at about Newton's
    cost. Converged means the same as in :func:`newton_raphson`: the exact mismatch is below
    ``tolerance_mva``, so the answer is as exact as Newton's. ``iterations`` counts linear solves.
    """

    def first(x: torch.Tensor) -> np.ndarray:
        return x.detach().cpu().numpy()[0]

    out = chord_solve(
        system,
        first(v0),
        first(sbus),
        reuse,
        tol=tolerance_mva / system.base_mva,
        max_iteration=max_iteration,
        slack0=None if slack0 is None else float(slack0.reshape(-1)[0]),
        predictor=None if predictor is None else first(predictor),
    )
    return NewtonResult(
        v=torch.from_numpy(out.v)[None],
        converged=torch.tensor([out.converged]),
        iterations=torch.tensor([out.solves], dtype=torch.int64),
        max_mismatch_mva=torch.tensor([out.norm * system.base_mva], dtype=torch.float64),
        slack=None if out.slack is None else torch.tensor([out.slack], dtype=torch.float64),
    )
