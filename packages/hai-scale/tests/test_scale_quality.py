"""Approximation quality: cosine and norm ratio against backprop as k grows; the saved files."""

from __future__ import annotations

import csv
import importlib.util
import itertools
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from hai.scale.forward_grad import approximation_quality, chi_mean, cosine_similarity, norm_ratio
from hai.shared import InputError, MissingPackageError

F64 = torch.float64


def setup(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)).to(F64).eval()  # n = 72 + 27 = 99
    x = torch.randn(64, 8, dtype=F64)
    y = torch.randint(0, 3, (64,))
    return model, x, y


def test_cosine_and_norm_ratio_closed_forms() -> None:
    a = torch.tensor([1.0, 2.0, 2.0])
    assert cosine_similarity(a, a) == pytest.approx(1.0)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0)
    assert cosine_similarity(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 5.0])) == 0.0
    assert cosine_similarity(torch.zeros(3), a) == 0.0
    assert norm_ratio(2 * a, a) == pytest.approx(2.0)
    assert norm_ratio(torch.zeros(2), torch.zeros(2)) == 0.0
    assert math.isinf(norm_ratio(a, torch.zeros(3)))


def test_cosine_rises_with_k_and_projection_is_exact_at_k_equal_n() -> None:
    model, x, y = setup()
    ks = [1, 4, 16, 64, 99]
    res = approximation_quality(model, nn.CrossEntropyLoss(), x, y, tangents=ks, repeats=8, seed=1)
    assert res.n_parameters == 99
    proj = [res.row("projection", k).cosine_mean for k in ks]
    mean = [res.row("mean", k).cosine_mean for k in ks]
    assert all(b > a for a, b in itertools.pairwise(proj)), proj
    assert all(b > a for a, b in itertools.pairwise(mean[:4])), mean
    assert res.row("projection", 99).cosine_mean == pytest.approx(1.0, abs=1e-12)
    assert res.row("projection", 99).norm_ratio_mean == pytest.approx(1.0, abs=1e-10)
    # for k = 1 projection and mean point the same way
    assert res.row("projection", 1).cosine_mean == pytest.approx(res.row("mean", 1).cosine_mean, abs=1e-12)
    # the projection beats the mean once k is a sizeable fraction of n
    assert res.row("projection", 64).cosine_mean > res.row("mean", 64).cosine_mean + 0.05
    # for isotropic tangents cos ≈ √(k/n) in expectation (loosely: 8 draws)
    assert res.row("projection", 16).cosine_mean == pytest.approx(math.sqrt(16 / 99), rel=0.25)
    assert res.loss > 0
    assert res.gradient_norm > 0


def test_scaling_correction_brings_the_norm_ratio_near_one() -> None:
    model, x, y = setup()
    kw = {"tangents": [4, 16], "aggregations": ["projection", "mean"], "repeats": 150, "seed": 3}
    plain = approximation_quality(model, nn.CrossEntropyLoss(), x, y, **kw)  # type: ignore[arg-type]
    scaled = approximation_quality(model, nn.CrossEntropyLoss(), x, y, scale=True, **kw)  # type: ignore[arg-type]
    for k in (4, 16):
        # without correction the projection is about E[χ_k]/E[χ_n] long, the mean far too long
        assert plain.row("projection", k).norm_ratio_mean == pytest.approx(
            chi_mean(k) / chi_mean(99), rel=0.15
        )
        assert plain.row("mean", k).norm_ratio_mean > 2.0
        assert scaled.row("projection", k).norm_ratio_mean == pytest.approx(1.0, abs=0.1)
        assert scaled.row("mean", k).norm_ratio_mean == pytest.approx(1.0, abs=0.15)
        # scaling never changes a direction
        assert scaled.row("mean", k).cosine_mean == pytest.approx(plain.row("mean", k).cosine_mean, abs=1e-12)


def test_buffers_are_restored() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    approximation_quality(
        model, nn.CrossEntropyLoss(), torch.randn(16, 4), torch.randint(0, 2, (16,)), tangents=[2], repeats=3
    )
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_save_writes_csv_json_and_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    model, x, y = setup()
    res = approximation_quality(model, nn.CrossEntropyLoss(), x, y, tangents=[1, 8], repeats=2)
    paths = res.save(tmp_path / "out")
    assert set(paths) == {"csv", "json", "png"}
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [(r["aggregation"], int(r["tangents"])) for r in rows] == [
        ("projection", 1),
        ("projection", 8),
        ("mean", 1),
        ("mean", 8),
    ]
    assert float(rows[1]["cosine_mean"]) == pytest.approx(res.row("projection", 8).cosine_mean)
    data = json.loads(paths["json"].read_text())
    assert data["n_parameters"] == 99
    assert len(data["rows"]) == 4
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, x, y = setup()
    res = approximation_quality(model, nn.CrossEntropyLoss(), x, y, tangents=[2], repeats=1)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a),
    )
    paths = res.save(tmp_path / "a")
    assert set(paths) == {"csv", "json"}
    assert not (tmp_path / "a" / "fg_quality.png").exists()
    with pytest.raises(MissingPackageError, match=r"hai-scale\[demo\]"):
        res.save(tmp_path / "b", figure=True)
    assert not (tmp_path / "b").exists()  # failed before writing anything
    assert set(res.save(tmp_path / "c", figure=False)) == {"csv", "json"}


def test_bad_arguments() -> None:
    model, x, y = setup()
    with pytest.raises(InputError, match="at least 1"):
        approximation_quality(model, nn.CrossEntropyLoss(), x, y, tangents=[0, 4])
    with pytest.raises(InputError, match="aggregation"):
        approximation_quality(model, nn.CrossEntropyLoss(), x, y, aggregations=["max"])
    with pytest.raises(InputError, match="repeats"):
        approximation_quality(model, nn.CrossEntropyLoss(), x, y, repeats=0)
    with pytest.raises(InputError, match="at least one"):
        approximation_quality(model, nn.CrossEntropyLoss(), x, y, tangents=[])
