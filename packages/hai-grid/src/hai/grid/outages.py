"""Fast outage solver: one factorisation of the base-case Jacobian for every outage.

An outage changes a few entries of Ybus (the removed branch's four), so at the base-case
voltages ``V0`` its Jacobian differs from the base one only in the rows and columns of the
unknowns at the branch's end buses: ``J_b(V0) = J0 + E_S D_b E_Sᵀ`` with ``D_b`` at most 4×4 for
one branch. Every outage starts from the base-case solution (warm start) and iterates

    x ← x − M_b⁻¹ F_b(x),    M_b = J0 + E_S D_b E_Sᵀ,

where ``F_b`` is the outage's exact mismatch and ``M_b⁻¹`` is applied with the Woodbury identity
on top of one SuperLU factorisation of ``J0`` (one multi-right-hand-side solve per iteration for a
whole chunk of outages, plus ``s×s`` batched solves; the columns of ``J0⁻¹`` at the changed
unknowns are solved once for all outages when they fit :data:`CHUNK_BUDGET`, else per chunk).
This is a chord (fixed-Jacobian) Newton method: it converges linearly, fast because ``M_b`` is
the exact outage Jacobian at ``V0``, and convergence is judged on the exact mismatch, so the
answer meets ``tolerance_mva`` like Newton's.
Scenarios that do not converge within ``max_iteration`` are reported as such (the caller
finishes them with full Newton-Raphson). Hand-written: lightsim2grid's contingency analysis
does the same in C++ on its own grid model; this works on pandapower's Ybus in torch.

>>> import torch
>>> from hai.grid.cases import load_case
>>> from hai.grid.network import compile_network
>>> from hai.grid.newton import PowerFlowSystem, newton_raphson
>>> compiled = compile_network(load_case("case14"))
>>> system = PowerFlowSystem(compiled)
>>> base = newton_raphson(system, compiled.v0[None], compiled.sbus[None]).v[0]
>>> y = system.ybus_values.clone()[None]
>>> result = solve_outages(system, base, compiled.sbus, y)  # no outage: converged at once
>>> bool(result.converged[0]), int(result.iterations[0])
(True, 0)
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import scipy.sparse as sp
import torch

from hai.grid.newton import NewtonResult, PowerFlowSystem
from hai.grid.sparse_lu import LUFactor, factorize

#: ``screen(v, scenarios, bound) -> certain``: see :func:`hai.grid.newton.newton_raphson`.
Screen = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

#: Largest number of changed unknowns (end buses' and cut-off buses') for the low-rank update.
MAX_RANK = 40
#: Largest number of float64 entries of the per-chunk ``J0⁻¹ E_R`` blocks (128 MiB).
CHUNK_BUDGET = 16_000_000
#: Largest number of float64 entries of one block of right-hand sides for ``J0⁻¹ E_R`` (8 MiB).
INVERSE_BLOCK = 1_000_000


def single_threaded_blas() -> AbstractContextManager[object]:
    """SuperLU's multi-right-hand-side solve calls BLAS on tiny blocks: threads only slow it down."""
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return nullcontext()
    limits: AbstractContextManager[object] = threadpool_limits(1, user_api="blas")
    return limits


def solve_outages(
    system: PowerFlowSystem,
    v_base: torch.Tensor,
    sbus: torch.Tensor,
    ybus_values: torch.Tensor,
    *,
    frozen: torch.Tensor | None = None,
    tolerance_mva: float = 1e-8,
    max_iteration: int = 15,
    chunk: int = 32,
    screen: Screen | None = None,
) -> NewtonResult:
    """Solve every outage scenario (``ybus_values``: (batch, nnz)) from the base solution ``v_base``.

    ``v_base`` (n_bus,) must be the converged base case for ``sbus`` (n_bus,) on the base Ybus.
    ``frozen`` (batch, n_var) marks the unknowns of buses an outage cuts off (held fixed, as in
    :func:`hai.grid.newton.newton_raphson`). Scenarios whose low-rank update would exceed
    :data:`MAX_RANK` unknowns, whose step is not finite, or that do not converge within
    ``max_iteration`` are returned not converged (``iterations`` 0 for those never tried).
    CPU only (the factorisation is KLU's or SuperLU's, :mod:`hai.grid.sparse_lu`).
    """
    with single_threaded_blas():
        return _Outages(system, v_base, sbus, ybus_values, frozen).run(
            tolerance_mva, max_iteration, chunk, screen
        )


class _Outages:
    """The shared pieces (base Ybus, base Jacobian's LU) and the per-chunk iteration."""

    def __init__(
        self,
        system: PowerFlowSystem,
        v_base: torch.Tensor,
        sbus: torch.Tensor,
        ybus_values: torch.Tensor,
        frozen: torch.Tensor | None,
    ) -> None:
        self.system = system
        n = system.n_bus
        self.v0 = v_base.detach().cpu().numpy().astype(np.complex128)
        self.s = sbus.detach().cpu().numpy().astype(np.complex128)
        y0 = system.ybus_values.cpu().numpy()
        self.y0 = sp.csr_matrix((y0, (system.ybus_rows_np, system.ybus_cols_np)), shape=(n, n))
        # each scenario's changed Ybus entries (positions, values), padded with zeros: a dense
        # (batch, nnz) difference would be 100 MB for 150 outages of case9241pegase
        self.dy_pos, self.dy = _changed_entries(ybus_values.detach().cpu().numpy(), y0)
        self.batch = self.dy.shape[0]
        self.frozen = (
            np.zeros((self.batch, system.n_var), dtype=bool) if frozen is None else frozen.cpu().numpy()
        )
        self.pvpq = system.pvpq.cpu().numpy()
        self.pq = system.pq.cpu().numpy()
        if system.n_var:
            j0 = system.jacobian_values(torch.from_numpy(self.v0)[None])[0].numpy()
            matrix = sp.csc_matrix((j0, (system.j_rows_np, system.j_cols_np)), shape=(system.n_var,) * 2)
            # SuperLU: minimum degree on AᵀA+A measured faster here than COLAMD
            lu = factorize(matrix, system.linear_solver, permc_spec="MMD_AT_PLUS_A")
            if lu is None:
                raise np.linalg.LinAlgError("the base-case Jacobian is singular")
            self.lu: LUFactor = lu
        # the columns of J0⁻¹ that every outage needs, solved once when they fit the budget
        self.inverse_cols: np.ndarray | None = None
        self.inverse_t = np.zeros((1, system.n_var + 1))

    def run(
        self, tolerance_mva: float, max_iteration: int, chunk: int, screen: Screen | None
    ) -> NewtonResult:
        system, batch = self.system, self.batch
        v_out = np.tile(self.v0, (batch, 1))
        converged = np.zeros(batch, dtype=bool)
        screened = np.zeros(batch, dtype=bool)
        iterations = np.zeros(batch, dtype=np.int64)
        norm_out = np.full(batch, np.inf)
        if system.n_var == 0:
            converged[:] = True
            norm_out[:] = 0.0
        else:
            changed = self.changed_unknowns()
            ranks = np.array([len(r) for r in changed])
            ids_all = np.nonzero(ranks <= MAX_RANK)[0]
            ids_all = ids_all[np.argsort(ranks[ids_all], kind="stable")]
            needed = np.unique(np.concatenate([changed[b] for b in ids_all] + [np.zeros(0, np.int64)]))
            if needed.size * system.n_var <= CHUNK_BUDGET:
                self.inverse_cols, self.inverse_t = needed, self.inverse_rows(needed)
            start = 0
            while start < len(ids_all):
                size = chunk
                while (
                    size > 1
                    and size * system.n_var * max(1, ranks[ids_all[min(start + size, len(ids_all)) - 1]])
                    > CHUNK_BUDGET
                ):
                    size //= 2
                ids = np.sort(ids_all[start : start + size])
                start += size
                out = self.chunk(ids, [changed[b] for b in ids], tolerance_mva, max_iteration, screen)
                v_out[ids], converged[ids], screened[ids], iterations[ids], norm_out[ids] = out
        return NewtonResult(
            v=torch.from_numpy(v_out),
            converged=torch.from_numpy(converged),
            iterations=torch.from_numpy(iterations),
            max_mismatch_mva=torch.from_numpy(norm_out * system.base_mva),
            screened=torch.from_numpy(screened) if screen is not None else None,
        )

    def changed_unknowns(self) -> list[np.ndarray]:
        """Per scenario, the unknowns whose Jacobian rows change: the removed branches' end
        buses and the cut-off (frozen) buses."""
        system = self.system
        out = []
        for b in range(self.batch):
            buses = np.unique(system.ybus_rows_np[self.dy_pos[b][self.dy[b] != 0]])
            unknowns = np.r_[system.pos_a_np[buses], system.pos_m_np[buses]]
            unknowns = np.union1d(unknowns[unknowns >= 0], np.nonzero(self.frozen[b])[0])
            out.append(unknowns.astype(np.int64))
        return out

    def inverse_rows(self, cols: np.ndarray) -> np.ndarray:
        """``(J0⁻¹ E_cols)ᵀ`` as (len(cols) + 1, n_var + 1): the last row and column are the
        zero padding (padded unknowns point there)."""
        n_var = self.system.n_var
        out = np.zeros((len(cols) + 1, n_var + 1))
        # in blocks: one solve of all columns would hold three more copies of ``out`` at once
        block = max(1, INVERSE_BLOCK // max(1, n_var))
        for start in range(0, len(cols), block):
            part = cols[start : start + block]
            eye = np.zeros((n_var, len(part)), order="F")
            eye[part, np.arange(len(part))] = 1.0
            out[start : start + len(part), :n_var] = self.lu.solve(eye).reshape(n_var, len(part)).T
        return out

    def residual(
        self, v: np.ndarray, dy: np.ndarray, er: np.ndarray, ec: np.ndarray, fz: np.ndarray
    ) -> np.ndarray:
        """Mismatch (n_var, c) of bus-major voltages (n, c); each scenario's Ybus is the base one
        plus its few changed entries ``dy`` (c, m) at rows ``er``, columns ``ec``."""
        current = np.asarray(self.y0 @ v)
        cols = np.arange(v.shape[1])[:, None]
        np.add.at(current, (er, cols), dy * v[ec, cols])
        mis = v * np.conj(current) - self.s[:, None]
        f = np.concatenate([mis.real[self.pvpq], mis.imag[self.pq]], axis=0)
        f[fz.T] = 0.0
        return f

    def jacobian_change(self, dy: np.ndarray, er: np.ndarray, ec: np.ndarray) -> list[np.ndarray]:
        """(row unknown, column unknown, value) arrays (c, m·8) of J(V0, ΔY) — J is linear in Y."""
        system, v0 = self.system, self.v0
        vi, vj = v0[er], v0[ec]
        vn_i, vn_j = vi / np.abs(vi), vj / np.abs(vj)
        yv = np.conj(dy * vj)
        terms = (
            (-1j * vi * yv, ec, "a"),  # ∂S_i/∂va_j
            (vi * np.conj(dy * vn_j), ec, "m"),  # ∂S_i/∂vm_j
            (1j * vi * yv, er, "a"),  # diagonal ∂S_i/∂va_i from ΔI_i
            (yv * vn_i, er, "m"),  # diagonal ∂S_i/∂vm_i from ΔI_i
        )
        rows, cols, vals = [], [], []
        for value, col_bus, kind in terms:
            col = (system.pos_a_np if kind == "a" else system.pos_m_np)[col_bus]
            rows += [system.pos_a_np[er], system.pos_m_np[er]]
            cols += [col, col]
            vals += [value.real, value.imag]
        return [np.concatenate(rows, axis=1), np.concatenate(cols, axis=1), np.concatenate(vals, axis=1)]

    def chunk(
        self,
        ids: np.ndarray,
        changed: list[np.ndarray],
        tolerance_mva: float,
        max_iteration: int,
        screen: Screen | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        system = self.system
        n_var, c = system.n_var, len(ids)
        tol = tolerance_mva / system.base_mva
        rank = max(1, max(len(r) for r in changed))
        sel = np.full((c, rank), n_var, dtype=np.int64)  # R_b, sorted, padded with the dummy n_var
        for k, r in enumerate(changed):
            sel[k, : len(r)] = r
        valid = sel < n_var
        fz = self.frozen[ids]
        # the changed Ybus entries of each scenario, padded with zeros
        m = max(1, int((self.dy[ids] != 0).sum(axis=1).max()))
        dy, order = self.dy[ids, :m], self.dy_pos[ids, :m]
        er, ec = system.ybus_rows_np[order], system.ybus_cols_np[order]
        # D_b: ΔJ on the changed rows (the frozen rows are identity rows: D = e_k, P = e_k e_kᵀ)
        j_rows, j_cols, j_vals = self.jacobian_change(dy, er, ec)
        d = np.zeros((c, rank + 1, rank + 1))
        frozen_sel = np.take_along_axis(np.c_[fz, np.zeros(c, dtype=bool)], sel, axis=1)
        ok = (j_rows >= 0) & (j_cols >= 0)
        ok &= ~np.take_along_axis(
            np.c_[fz, np.zeros(c, dtype=bool)], np.where(j_rows >= 0, j_rows, n_var), axis=1
        )
        kk = np.arange(c)[:, None].repeat(j_rows.shape[1], 1)
        pos_r = _position(sel, np.where(ok, j_rows, n_var), rank)
        pos_c = _position(sel, np.where(ok, j_cols, n_var), rank)
        np.add.at(d, (kk[ok], pos_r[ok], pos_c[ok]), j_vals[ok])
        d = d[:, :rank, :rank]
        diag = np.arange(rank)
        d[:, diag, diag] += frozen_sel
        # W_b = J0⁻¹ E_R: rows of ``zt`` (the columns of J0⁻¹ at the changed unknowns, transposed),
        # never gathered per scenario; ``index`` (c, rank) names scenario b's rows of zt
        if self.inverse_cols is not None:
            zt = self.inverse_t
            index = np.full((c, rank), len(self.inverse_cols))
            index[valid] = np.searchsorted(self.inverse_cols, sel[valid])
        else:
            cols, where = np.unique(sel[valid], return_inverse=True)
            zt = self.inverse_rows(cols)
            index = np.full((c, rank), len(cols))
            index[valid] = where
        w_r = zt[index[:, None, :], sel[:, :, None]]  # (c, rank, rank): rows R_b of W_b
        small = np.eye(rank)[None] + d @ w_r
        small[:, diag, diag] -= frozen_sel
        # iterate bus-major (n, m) on a working set of the chunk's scenarios; only active ones
        # move, and the working set shrinks to the active ones once fewer than half are active
        v = np.repeat(self.v0[:, None], c, axis=1)
        f = self.residual(v, dy, er, ec, fz)
        norm_all = _max_abs(f)
        v_all, failed_all, stopped_all = v.copy(), np.zeros(c, dtype=bool), np.zeros(c, dtype=bool)
        its_all = np.zeros(c, dtype=np.int64)
        work = np.arange(c)
        va, vm = np.angle(v), np.abs(v)
        norm, failed, stopped = norm_all.copy(), failed_all.copy(), stopped_all.copy()
        prev = np.full(c, np.inf)
        its = its_all.copy()
        n_a = system.n_a
        for _ in range(max_iteration):
            active = (norm > tol) & ~failed & ~stopped
            if not active.any():
                break
            if active.sum() < 0.5 * len(work):  # write the settled ones back, keep the active
                v_all[:, work], norm_all[work], its_all[work] = v, norm, its
                failed_all[work], stopped_all[work] = failed, stopped
                keep = np.nonzero(active)[0]
                work = work[keep]
                v, va, vm, f = v[:, keep], va[:, keep], vm[:, keep], f[:, keep]
                norm, failed, stopped, prev, its = (
                    norm[keep],
                    failed[keep],
                    stopped[keep],
                    prev[keep],
                    its[keep],
                )
                d, small, index, sel = d[keep], small[keep], index[keep], sel[keep]
                dy, er, ec, fz = dy[keep], er[keep], ec[keep], fz[keep]
                active = active[keep]
            m = len(work)
            a = np.nonzero(active)[0]
            y = np.zeros((n_var + 1, m))
            rhs = f if a.size == m else f[:, a]
            y[:n_var, a] = self.lu.solve(np.asfortranarray(rhs)).reshape(n_var, a.size)
            t = np.einsum("bij,bj->bi", d, y[sel, np.arange(m)[:, None]])
            with np.errstate(all="ignore"):
                try:
                    zz = np.linalg.solve(small, t[:, :, None])[:, :, 0]
                except np.linalg.LinAlgError:
                    zz = np.stack([_solve_or_nan(small[b], t[b]) for b in range(m)])
                # Σ_r W_b[:, r] zz[b, r] for every b at once: a sparse (m, rows of zt) product
                mix = sp.csr_matrix(
                    (zz.ravel(), index.ravel(), np.arange(0, m * rank + 1, rank)), shape=(m, zt.shape[0])
                )
                step = y[:n_var] - np.asarray(mix @ zt)[:, :n_var].T
            step[:, ~active] = 0.0
            size = _max_abs(step)
            bad = ~np.isfinite(size)  # the maximum is NaN or inf where any entry is
            step[:, bad] = 0.0
            va[self.pvpq] -= step[:n_a]
            vm[self.pq] -= step[n_a:]
            its[a] += 1
            failed |= bad
            v = polar(vm, va)
            f = self.residual(v, dy, er, ec, fz)
            nn = _max_abs(f)
            norm = np.where(np.isfinite(nn), nn, np.inf)
            contracting = active & (size <= 0.5 * prev) & ~failed & (norm > tol)
            prev = np.where(active, size, prev)
            if screen is not None and contracting.any():
                asked = np.nonzero(contracting)[0]
                certain = screen(
                    torch.from_numpy(np.ascontiguousarray(v[:, asked].T)),
                    torch.from_numpy(ids[work[asked]]),
                    torch.from_numpy(2.0 * size[asked]),
                )
                stopped[asked[certain.cpu().numpy()]] = True
        v_all[:, work], norm_all[work], its_all[work] = v, norm, its
        failed_all[work], stopped_all[work] = failed, stopped
        conv = (norm_all <= tol) & ~failed_all
        return v_all.T, conv, stopped_all & ~conv, its_all, norm_all


def polar(vm: np.ndarray, va: np.ndarray) -> np.ndarray:
    """``vm·e^{i·va}`` (float64 arrays of one shape): torch's vectorised cos and sin measured
    about 3x faster than numpy's here, and these are a fifth of an outage iteration's time."""
    cos = torch.cos(torch.from_numpy(va))
    sin = torch.sin(torch.from_numpy(va))
    magnitude = torch.from_numpy(vm)
    return torch.complex(cos.mul_(magnitude), sin.mul_(magnitude)).numpy()


def _max_abs(x: np.ndarray) -> np.ndarray:
    """Column-wise max |x| of a real (rows, columns) array without the |x| temporary; NaN where a
    column holds a NaN."""
    return np.asarray(np.maximum(x.max(axis=0), -x.min(axis=0)))


def _changed_entries(y: np.ndarray, y0: np.ndarray, block: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Positions (batch, m) and values (batch, m) of ``y[b] - y0``'s nonzeros, nonzeros first in
    ascending position, padded with position 0 and value 0; computed ``block`` rows at a time."""
    positions: list[np.ndarray] = []
    for start in range(0, y.shape[0], block):
        diff = y[start : start + block] != y0[None, :]
        positions += [np.nonzero(row)[0] for row in diff]
    m = max([1] + [len(p) for p in positions])
    pos = np.zeros((len(positions), m), dtype=np.int64)
    val = np.zeros((len(positions), m), dtype=np.complex128)
    for b, p in enumerate(positions):
        pos[b, : len(p)] = p
        val[b, : len(p)] = y[b, p] - y0[p]
    return pos, val


def _position(sel: np.ndarray, values: np.ndarray, rank: int) -> np.ndarray:
    """Index of each value in its row of the sorted ``sel`` (the padding index ``rank`` if absent)."""
    pos = np.stack([np.searchsorted(sel[k], values[k]) for k in range(sel.shape[0])])
    pos = pos.clip(max=rank - 1)
    found = np.take_along_axis(sel, pos, axis=1) == values
    return np.where(found, pos, rank)


def _solve_or_nan(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(matrix, rhs[:, None])[:, 0]
    except np.linalg.LinAlgError:
        return np.full(len(rhs), np.nan)
