"""The energy study: the sweep grid, resumable tables, the submitit path, the fit, the AFNO."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hai.scale.energy import AFNO2d, SweepSpec, build_workload, fit_energy, read_table, report, run_sweep
from hai.scale.energy.spec import SweepPoint
from hai.scale.energy.sweep import point_command, submit_sweep
from hai.shared import InputError, MissingPackageError


def test_points_and_accumulation():
    spec = SweepSpec(world_sizes=(1, 2), global_batches=(64, 128, 256), local_batches=(16, 32))
    points = spec.points()
    assert len(points) == 12
    assert {p.global_batch == p.world_size * p.local_batch * p.accumulation for p in points} == {True}
    assert SweepSpec.from_dict(spec.to_dict()).key == spec.key
    assert SweepSpec(epochs=2).key != spec.key


def test_bad_grids_and_workloads_are_refused():
    with pytest.raises(InputError, match="not divisible"):
        SweepSpec(world_sizes=(3,), global_batches=(64,), local_batches=(16,))
    with pytest.raises(InputError, match="unknown workload"):
        SweepSpec(workload="gpt")
    with pytest.raises(InputError, match="unknown option"):
        build_workload("digits", {"width": 3})


def _fake_row(point: SweepPoint, energy: float | None = None) -> dict:
    return {
        "name": point.name, "point": point.to_dict(), "wall_s": 1.0, "device_hours": point.world_size / 3600,
        "samples_per_device_hour": 1.0, "updates_per_device_hour": 1.0, "energy_j": energy,
        "energy_unavailable": {} if energy is not None else {"rank0": {"rapl": "no powercap"}},
        "metric_name": "accuracy", "metric": 0.5, "device_kind": "cpu-core", "machine": {},
    }  # fmt: skip


def test_an_interrupted_sweep_resumes_without_redoing_points(tmp_path: Path):
    spec = SweepSpec(world_sizes=(1, 2), global_batches=(32, 64), local_batches=(16,))
    table = tmp_path / "sweep.jsonl"
    ran: list[str] = []

    def crashing(spec_file, point, timeout):
        if len(ran) == 2:
            raise KeyboardInterrupt
        ran.append(point.name)
        return _fake_row(point)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, table, runner=crashing)
    assert [r["name"] for r in read_table(table).rows] == ran
    again: list[str] = []

    def counting(spec_file, point, timeout):
        again.append(point.name)
        return _fake_row(point)

    final = run_sweep(spec, table, runner=counting)
    assert again == [p.name for p in spec.points()][2:]
    assert sorted(final.done) == sorted(p.name for p in spec.points())
    assert not list(tmp_path.glob(".*"))  # no temporary or spec file left


def test_a_table_of_another_sweep_or_a_corrupt_one_is_refused(tmp_path: Path):
    table = tmp_path / "sweep.jsonl"
    run_sweep(SweepSpec(world_sizes=(1,), global_batches=(32,), local_batches=(16,)), table,
              runner=lambda f, p, t: _fake_row(p))  # fmt: skip
    before = table.read_text()
    with pytest.raises(InputError, match="another sweep definition"):
        run_sweep(SweepSpec(world_sizes=(1,), global_batches=(64,), local_batches=(16,)), table)
    assert table.read_text() == before
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(InputError, match="not a readable"):
        read_table(tmp_path / "bad.jsonl")
    (tmp_path / "other.jsonl").write_text(json.dumps({"format": "something else"}) + "\n")
    with pytest.raises(InputError, match="not an energy-sweep table"):
        read_table(tmp_path / "other.jsonl")


def test_the_fit_recovers_injected_alpha_and_beta():
    rng = np.random.default_rng(0)
    alpha, beta = 250e3, 40.0  # J per device-hour, J
    rows = []
    for i, w in enumerate([1, 2, 4, 8] * 3):
        point = SweepPoint(w, 64 * w, 16)
        hours = (0.5 + i) / 60 * w
        rows.append({**_fake_row(point, alpha * hours + beta + rng.normal(0, 5)), "device_hours": hours})
    fit = fit_energy(rows)
    assert fit is not None
    assert fit.slope_ci[0] < alpha < fit.slope_ci[1]
    assert fit.intercept_ci[0] < beta < fit.intercept_ci[1]
    assert fit.slope == pytest.approx(alpha, rel=0.01)
    assert fit.r2 > 0.999
    assert report(rows)["fit"]["n"] == 12


def test_without_sensors_the_report_says_energy_is_unavailable():
    rows = [_fake_row(SweepPoint(1, 32, 16)), _fake_row(SweepPoint(2, 32, 16))]
    out = report(rows)
    assert out["fit"] is None
    assert out["energy_unavailable"] == ["no powercap"]
    assert all(p["energy_j"] is None for p in out["points"])


class _FakeExecutor:
    def __init__(self) -> None:
        self.params: list[dict] = []
        self.submitted: list = []

    def update_parameters(self, **params):
        self.params.append(params)

    def submit(self, fn):
        self.submitted.append(fn)
        return fn


def test_the_submitit_path_submits_the_local_command(tmp_path: Path):
    spec = SweepSpec(world_sizes=(2, 8), global_batches=(64,), local_batches=(8,))
    executor = _FakeExecutor()
    jobs = submit_sweep(spec, tmp_path, gpus_per_node=4, timeout_min=30, executor=executor)
    for job, point in zip(jobs, spec.points(), strict=True):
        assert job.argv == point_command(
            tmp_path / "spec.json", point, tmp_path / "points" / point.name, 1800.0
        )
    assert [(p["nodes"], p["tasks_per_node"]) for p in executor.params] == [(1, 2), (2, 4)]
    assert json.loads((tmp_path / "spec.json").read_text()) == spec.to_dict()


def test_submitting_without_submitit_says_what_to_install(tmp_path: Path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_submitit(name, *args, **kwargs):
        if name == "submitit":
            raise ImportError("no submitit")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_submitit)
    with pytest.raises(MissingPackageError, match="submitit"):
        submit_sweep(SweepSpec(world_sizes=(1,), global_batches=(16,), local_batches=(16,)), tmp_path)


def test_afno_with_zero_weights_is_the_identity_and_learns():
    layer = AFNO2d(8, blocks=2, shrink=0.0)
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
    x = torch.randn(3, 6, 10, 8)
    torch.testing.assert_close(layer(x), x)
    workload = build_workload("afno", {"samples": 128, "grid": 8, "channels": 8, "depth": 1}, seed=0)
    opt = torch.optim.Adam(workload.model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = workload.loss(workload.model(workload.x_train), workload.y_train)
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss.detach())
    assert float(loss.detach()) < 0.5 * first


@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_a_real_sweep_gives_the_same_model_for_every_world_size(tmp_path: Path):
    spec = SweepSpec(
        workload="digits", world_sizes=(1, 2), global_batches=(32,), local_batches=(8, 16), epochs=0.5,
        options={"hidden": [32]},
    )  # fmt: skip
    table = run_sweep(spec, tmp_path / "sweep.jsonl", timeout_s=240)
    rows = {r["name"]: r for r in table.rows}
    assert sorted(rows) == ["w1-g32-l16", "w1-g32-l8", "w2-g32-l16", "w2-g32-l8"]
    metrics = {round(r["metric"], 6) for r in rows.values()}
    assert len(metrics) == 1  # the same updates whatever the split of the global batch
    for row in rows.values():
        assert row["updates"] == row["samples"] // 32
        assert row["device_hours"] > 0
        assert (row["energy_j"] is None) == bool(row["energy_unavailable"])
        assert len(row["ranks"]) == row["point"]["world_size"]


USER_WORKLOAD = """
import torch
from torch import nn
from hai.scale.energy import Workload


def linear(options, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    model = nn.Linear(3, 1)
    return Workload("linear", model, x[:48], y[:48, None], x[48:], y[48:, None],
                    nn.functional.mse_loss, "mse", lambda p, t: float(((p - t) ** 2).mean()))


def not_a_workload(options, seed):
    return 42
"""


def test_a_user_workload_module_function(tmp_path: Path, monkeypatch):
    (tmp_path / "my_energy_workloads.py").write_text(USER_WORKLOAD)
    monkeypatch.syspath_prepend(str(tmp_path))
    workload = build_workload("my_energy_workloads:linear", {}, seed=0)
    assert workload.metric_name == "mse"
    assert workload.model.weight.shape == (1, 3)
    with pytest.raises(InputError, match="cannot be imported"):
        build_workload("no_such_module_here:linear", {}, seed=0)
    with pytest.raises(InputError, match="has no function"):
        build_workload("my_energy_workloads:missing", {}, seed=0)
    with pytest.raises(InputError, match=r"not a hai\.scale\.energy\.Workload"):
        build_workload("my_energy_workloads:not_a_workload", {}, seed=0)
    with pytest.raises(InputError, match="unknown workload"):
        SweepSpec(workload="a b:c")


@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_a_sweep_of_a_user_workload_runs_on_every_rank(tmp_path: Path, monkeypatch):
    (tmp_path / "my_energy_workloads.py").write_text(USER_WORKLOAD)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{__import__('os').environ.get('PYTHONPATH', '')}")
    spec = SweepSpec(
        workload="my_energy_workloads:linear", world_sizes=(1, 2), global_batches=(16,), local_batches=(8,),
        epochs=2, lr=1e-2,
    )  # fmt: skip
    rows = {r["name"]: r for r in run_sweep(spec, tmp_path / "sweep.jsonl", timeout_s=240).rows}
    assert sorted(rows) == ["w1-g16-l8", "w2-g16-l8"]
    assert rows["w1-g16-l8"]["metric_name"] == "mse"
    # the same updates whatever the split of the global batch
    assert rows["w1-g16-l8"]["metric"] == pytest.approx(rows["w2-g16-l8"]["metric"], rel=1e-5)
    assert len(rows["w2-g16-l8"]["ranks"]) == 2


def test_the_resnet_workload_needs_nothing_extra():
    workload = build_workload("resnet", {"image_size": 8, "samples": 40, "classes": 3}, seed=0)
    assert workload.x_train.shape == (32, 3 * 8 * 8)
    assert workload.model(workload.x_test).shape == (8, 3)
    assert sum(p.numel() for p in workload.model.parameters()) == 11_181_642 - 7 * 513  # 3 classes
