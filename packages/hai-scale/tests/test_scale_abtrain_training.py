"""AB-training on real gloo process groups: bytes equal the analytic counts, frozen factors stay
frozen, every rank ends with the same weights, the trace is the configured schedule."""

from __future__ import annotations

import pytest

from hai.scale.abtrain import ABSchedule
from hai.scale.abtrain.run import launch_ab
from hai.scale.abtrain.trainer import ABTrainConfig
from hai.shared import HaiError, InputError

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(300)]

SCHEDULE = ABSchedule(warmup_steps=4, steps_between_syncs=5, ddp_steps_after_sync=2, lr_rebound_steps=2)
SMALL = {"data": "synthetic", "hidden": (12,), "steps": 16, "batch_size": 8, "lr": 3e-3, "schedule": SCHEDULE}
F32 = 4


def _n_params(hidden: int = 12, features: int = 16, classes: int = 4) -> int:
    return features * hidden + hidden + hidden * classes + classes


@pytest.fixture(scope="module")
def ab_run() -> list[dict]:
    return launch_ab(ABTrainConfig(method="ab", group_size=2, **SMALL), nproc=4, timeout_s=240)


def test_ddp_bytes_are_the_gradient_size_per_step():
    results = launch_ab(ABTrainConfig(method="ddp", **SMALL), nproc=2, timeout_s=240)
    for r in results:
        assert r["comm"]["total_bytes"] == SMALL["steps"] * F32 * _n_params()
    assert results[0]["checksum"] == results[1]["checksum"]


def test_ab_bytes_per_phase_equal_the_analytic_counts(ab_run):
    steps = SMALL["steps"]
    trace = ab_run[0]["trace"]
    n_warmup = sum(r["phase"] == "warmup" for r in trace)
    n_group = sum(r["phase"] == "group" for r in trace)
    n_ddp = sum(r["phase"] == "ddp" for r in trace)
    assert (n_warmup, n_group, n_ddp) == (4, 10, 2)  # ends in a group phase: a final sync
    assert n_warmup + n_group + n_ddp == steps
    biases = 12 + 4
    for result in ab_run:
        comm = result["comm"]["bytes"]
        assert comm["warmup"] == n_warmup * F32 * _n_params()
        assert comm["ddp"] == n_ddp * F32 * _n_params()
        # Group phases: only the trained factor of each layer and the biases, inside the group.
        # The decomposition of each phase sets the ranks; every phase is 5 steps.
        expected_group = 0
        for record in result["ranks"]:
            factors = sum((m if record["role"] == "A" else n) * r for _, m, n, r in record["layers"])
            expected_group += 5 * F32 * (factors + biases)
        assert comm["group"] == expected_group
        # Syncs (full mode): the full weights and the biases; each decomposition agrees on the
        # ranks with one int64 all-reduce per layer.
        full_weights = 16 * 12 + 12 * 4
        n_syncs = sum("sync" in r["events"] for r in trace)
        n_svds = len(result["ranks"])
        assert comm["sync"] == n_syncs * F32 * (full_weights + biases) + n_svds * 2 * 8
        assert comm["final-sync"] == F32 * (full_weights + biases)


def test_frozen_factors_never_change_and_ranks_agree(ab_run):
    roles = [[rec["role"] for rec in r["ranks"]] for r in ab_run]
    assert roles == [["A", "A"], ["A", "A"], ["B", "B"], ["B", "B"]]
    assert all(rec["frozen_unchanged"] for r in ab_run for rec in r["ranks"])
    assert len({r["checksum"] for r in ab_run}) == 1  # identical weights after the final sync
    assert len({str(r["ranks"][0]["layers"]) for r in ab_run}) == 1  # ranks agreed everywhere


def test_trace_is_the_configured_schedule(ab_run):
    expected = SCHEDULE.trace(SMALL["steps"], SMALL["lr"])
    for result in ab_run:
        assert [(r["step"], r["phase"], r["events"]) for r in result["trace"]] == [
            (r["step"], r["phase"], r["events"]) for r in expected
        ]
        assert [r["lr"] for r in result["trace"]] == pytest.approx([r["lr"] for r in expected])


def test_powersgd_sends_less_than_ddp():
    ddp = launch_ab(ABTrainConfig(method="ddp", **{**SMALL, "hidden": (64,)}), nproc=2, timeout_s=240)
    psgd = launch_ab(
        ABTrainConfig(method="powersgd", powersgd_rank=2, **{**SMALL, "hidden": (64,)}),
        nproc=2,
        timeout_s=240,
    )
    assert psgd[0]["comm"]["total_bytes"] < 0.5 * ddp[0]["comm"]["total_bytes"]
    assert psgd[0]["checksum"] == psgd[1]["checksum"]


def test_bad_groups_are_refused_before_any_collective():
    with pytest.raises(InputError, match="at least two groups"):
        launch_ab(ABTrainConfig(method="ab", group_size=2, **SMALL), nproc=2)
    with pytest.raises(HaiError, match="does not divide"):
        launch_ab(ABTrainConfig(method="ab", group_size=2, **SMALL), nproc=5, timeout_s=120)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "lora"}, "unknown method"),
        ({"cutoff": 1.5}, "cutoff"),
        ({"hidden": ()}, "hidden"),
        ({"lr": float("inf")}, "lr"),
        ({"steps": 0}, "steps"),
    ],
)
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        ABTrainConfig(**kwargs)


_CUSTOM = """
import sys, torch, torch.distributed as dist
from datetime import timedelta
from torch import nn
from hai.scale.abtrain import ABSchedule
from hai.scale.abtrain.trainer import ABTrainConfig, train_ab
rank, init = int(sys.argv[1]), sys.argv[2]
dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2, timeout=timedelta(seconds=60))
def model_fn(data):
    head = nn.Linear(10, data.n_classes)
    return nn.Sequential(nn.Linear(data.n_features, 10), nn.LayerNorm(10), nn.Tanh(), head)
schedule = ABSchedule(warmup_steps=2, steps_between_syncs=3, ddp_steps_after_sync=1, lr_rebound_steps=1)
config = ABTrainConfig(data="synthetic", steps=8, batch_size=8, schedule=schedule)
result = train_ab(config, model_fn=model_fn)
print(result.parameters, result.checksum, len(result.ranks[0]["layers"]), result.cost["wall_s"] > 0)
dist.destroy_process_group()
"""


def test_any_torch_model_can_be_trained(tmp_path):
    import subprocess
    import sys

    init = f"file://{tmp_path / 'init'}"
    procs = [
        subprocess.Popen([sys.executable, "-c", _CUSTOM, str(r), init], stdout=subprocess.PIPE, text=True)
        for r in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    params = 16 * 10 + 10 + 20 + 10 * 4 + 4  # two linears and the LayerNorm's weight and bias
    assert outs[0] == outs[1]  # the same model on both ranks after the final sync
    assert outs[0][0] == str(params)
    assert outs[0][2:] == ["2", "True"]  # both linears factored; the LayerNorm stays


def test_optimizer_state_survives_an_event_only_where_asked():
    import torch

    from hai.scale.abtrain.lowrank import to_low_rank
    from hai.scale.abtrain.trainer import _optimizer, _optimizer_state_by_name, _restore_optimizer_state
    from hai.scale.models import mlp

    torch.manual_seed(0)
    model = mlp(16, 4, (12,))
    opt = _optimizer(model, 1e-3)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(8, 16)).square().mean().backward()
        opt.step()
    before = _optimizer_state_by_name(model, opt)
    biases = {n: s["exp_avg"].clone() for n, s in before.items() if n.endswith("bias")}
    to_low_rank(model, cutoff=0.01)  # the event: every Linear becomes A·B with a new bias object
    fresh = _optimizer(model, 1e-3)
    assert not fresh.state  # the default (reset_optimizer=True): AdamW starts afresh
    _restore_optimizer_state(model, fresh, before)
    params = dict(model.named_parameters())
    assert {n for n, p in params.items() if p in fresh.state} == set(biases)  # factors start afresh
    for name, moment in biases.items():
        assert torch.equal(fresh.state[params[name]]["exp_avg"], moment)
        assert float(fresh.state[params[name]]["step"]) == 3.0
    assert ABSchedule().reset_optimizer is True


def test_training_without_optimizer_resets_runs_and_differs():
    keep = ABSchedule(
        warmup_steps=4,
        steps_between_syncs=5,
        ddp_steps_after_sync=2,
        lr_rebound_steps=2,
        reset_optimizer=False,
    )
    kept = launch_ab(ABTrainConfig(method="ab", **{**SMALL, "schedule": keep}), nproc=2, timeout_s=240)
    reset = launch_ab(ABTrainConfig(method="ab", **SMALL), nproc=2, timeout_s=240)
    assert kept[0]["losses"][:4] == reset[0]["losses"][:4]  # warm-up: the same steps
    assert kept[0]["losses"][-1] != reset[0]["losses"][-1]  # the carried moments changed the updates
    assert kept[0]["checksum"] == pytest.approx(kept[1]["checksum"], rel=1e-12)
