"""AB-training's layers and schedule: SVD round trip, the rank rule, frozen factors, the trace."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from hai.scale.abtrain import (
    ABConv2d,
    ABGroups,
    ABLinear,
    ABSchedule,
    compression_ratio,
    rank_for_cutoff,
    svd_factors,
    to_full_rank,
    to_low_rank,
)
from hai.shared import InputError


def _matrix(rows: int, cols: int, singular: list[float], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(rows, len(singular), generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(cols, len(singular), generator=g, dtype=torch.float64))
    return u @ torch.diag(torch.tensor(singular, dtype=torch.float64)) @ v.T


def test_rank_rule_keeps_values_above_cutoff_times_largest():
    s = torch.tensor([10.0, 2.0, 1.0001, 1.0, 0.2])
    assert rank_for_cutoff(s, 0.1) == 3  # 1.0 is not > 0.1 * 10
    assert rank_for_cutoff(s, 0.5) == 1
    assert rank_for_cutoff(torch.tensor([1.0, 0.0]), 0.999) == 1
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(InputError, match="cut-off"):
            rank_for_cutoff(s, bad)


def test_svd_factors_give_the_best_rank_r_approximation():
    singular = [8.0, 4.0, 2.0, 0.5, 0.25]
    w = _matrix(12, 7, singular)
    a, b = svd_factors(w, cutoff=0.1)
    assert a.shape == (12, 3)
    assert b.shape == (3, 7)
    # Eckart-Young: the Frobenius error is the norm of the dropped singular values.
    assert torch.linalg.norm(w - a @ b).item() == pytest.approx((0.5**2 + 0.25**2) ** 0.5, rel=1e-10)
    # split_sigma balances the factors: A and B have the same singular values, sqrt(s).
    torch.testing.assert_close(torch.linalg.svdvals(a), torch.linalg.svdvals(b))
    a_full, b_full = svd_factors(w, rank=5, split_sigma=False)
    torch.testing.assert_close(a_full @ b_full, w)
    torch.testing.assert_close(torch.linalg.norm(b_full, dim=1), torch.ones(5, dtype=torch.float64))


def test_compression_ratio_formula_and_summary():
    assert compression_ratio(100, 50, 5) == pytest.approx(0.15)
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 10))
    with torch.no_grad():
        model[0].weight.copy_(_matrix(30, 20, [5.0, 3.0, 0.01]).float())
        model[2].weight.copy_(_matrix(10, 30, [2.0, 1.0, 0.5, 0.1]).float())
    summary = to_low_rank(model, cutoff=0.1)
    assert [(n, m, k, r) for n, m, k, r in summary.layers] == [("0", 30, 20, 2), ("2", 10, 30, 3)]
    assert summary.factored_parameters == 2 * 50 + 3 * 40
    assert summary.compression_ratio == pytest.approx((2 * 50 + 3 * 40) / (600 + 300))


def test_full_rank_layers_reproduce_linear_and_conv_exactly():
    torch.manual_seed(0)
    linear = nn.Linear(9, 6).double()
    ab = ABLinear.from_linear(linear, rank=6)
    x = torch.randn(4, 9, dtype=torch.float64)
    torch.testing.assert_close(ab(x), linear(x))
    torch.testing.assert_close(ab.to_linear()(x), linear(x))
    conv = nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)).double()
    abc = ABConv2d.from_conv(conv, rank=5)
    img = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    torch.testing.assert_close(abc(img), conv(img))
    torch.testing.assert_close(abc.to_conv()(img), conv(img))


def test_model_round_trip_keeps_the_function_at_full_rank_and_returns_plain_layers():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).double()
    x = torch.randn(5, 2, 6, 6, dtype=torch.float64)
    before = model(x)
    to_low_rank(model, cutoff=1e-12)  # keeps every nonzero singular value
    assert isinstance(model[0], ABConv2d)
    assert isinstance(model[3], ABLinear)
    torch.testing.assert_close(model(x), before)
    assert to_full_rank(model) == 2
    assert isinstance(model[0], nn.Conv2d)
    assert isinstance(model[3], nn.Linear)
    torch.testing.assert_close(model(x), before)


def test_training_only_a_never_changes_b_and_vice_versa():
    torch.manual_seed(2)
    layer = ABLinear.from_linear(nn.Linear(8, 8), rank=4)
    x, y = torch.randn(16, 8), torch.randn(16, 8)
    for factor, frozen in (("A", "B"), ("B", "A")):
        layer.set_trainable(factor)
        opt = torch.optim.SGD([p for p in layer.parameters() if p.requires_grad], lr=0.1)
        kept = getattr(layer, frozen).detach().clone()
        moved = getattr(layer, factor).detach().clone()
        for _ in range(3):
            opt.zero_grad()
            nn.functional.mse_loss(layer(x), y).backward()
            opt.step()
        assert torch.equal(getattr(layer, frozen), kept)
        assert not torch.equal(getattr(layer, factor), moved)
    with pytest.raises(InputError):
        layer.set_trainable("C")


def test_refactor_cuts_the_rank_of_the_product():
    layer = ABLinear(_matrix(10, 3, [3.0, 2.0, 1.0]).float(), torch.eye(3, 6))
    assert layer.refactor(cutoff=0.5) == 2
    assert layer.A.shape == (10, 2)
    assert layer.B.shape == (2, 6)


def test_schedule_trace_equals_the_configuration():
    s = ABSchedule(warmup_steps=3, steps_between_syncs=4, ddp_steps_after_sync=2, lr_rebound_steps=2)
    trace = s.trace(3 + 2 * 6, base_lr=0.1)
    phases = "".join(r["phase"][0] for r in trace)
    assert phases == "www" + "ggggdd" * 2
    events = {r["step"]: r["events"] for r in trace if r["events"]}
    assert events == {3: ["svd"], 7: ["sync"], 9: ["resvd"], 13: ["sync"]}
    lrs = [r["lr"] for r in trace]
    assert lrs[:3] == [0.1] * 3
    assert lrs[3:8] == pytest.approx([1e-5, 1e-5 + (0.1 - 1e-5) / 2, 0.1, 0.1, 1e-5])  # rebound at switches
    assert lrs[9] == pytest.approx(1e-5)


def test_schedule_without_ddp_steps_syncs_and_resvds_together():
    s = ABSchedule(warmup_steps=0, steps_between_syncs=2, ddp_steps_after_sync=0)
    assert [s.events(t) for t in range(5)] == [("svd",), (), ("sync", "resvd"), (), ("sync", "resvd")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sync_mode": "partial"}, "unknown sync mode"),
        ({"steps_between_syncs": 0}, "steps_between_syncs"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"rebound_lr": float("inf")}, "rebound_lr"),
    ],
)
def test_bad_schedules_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        ABSchedule(**kwargs)


def test_groups_split_a_and_b_and_refuse_bad_sizes():
    g = ABGroups.build(world_size=6, group_size=2)
    assert g.groups == ((0, 1), (2, 3), (4, 5))
    assert g.roles == ("A", "B", "B")
    with pytest.raises(InputError, match="does not divide"):
        ABGroups.build(world_size=6, group_size=4)
    with pytest.raises(InputError, match="at least two groups"):
        ABGroups.build(world_size=4, group_size=4)


_AGREE = textwrap.dedent(
    """
    import sys, torch, torch.distributed as dist
    from datetime import timedelta
    from torch import nn
    from hai.scale.abtrain import to_low_rank
    rank, init = int(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2, timeout=timedelta(seconds=30))
    layer = nn.Sequential(nn.Linear(6, 6, bias=False))
    with torch.no_grad():  # rank 0's weight has rank 2, rank 1's rank 4
        layer[0].weight.copy_(torch.diag(torch.tensor([1.0, 1.0] + [1.0 * rank] * 2 + [0.0, 0.0])))
    summary = to_low_rank(layer, cutoff=0.5)
    print(summary.layers[0][3], tuple(layer[0].A.shape))
    dist.destroy_process_group()
    """
)


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_ranks_agree_on_the_largest_rank(tmp_path: Path):
    init = f"file://{tmp_path / 'init'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _AGREE, str(r), init],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    outs = [p.communicate(timeout=90) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert [out.split()[0] for out, _ in outs] == ["4", "4"]
