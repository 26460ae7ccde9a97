"""Data set generation (deterministic, resumable), template baseline and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hai.photonics import TemplateBaseline, Vocabulary, evaluate, generate_dataset, load_dataset, simulate
from hai.photonics.dataset import random_stacks
from hai.shared import InputError


def test_random_stacks_follow_the_rules() -> None:
    vocab = Vocabulary()
    ids = random_stacks(500, np.random.default_rng(1), vocab).numpy()
    assert ids.shape == (500, 21)
    lengths = (ids == vocab.eos_id).argmax(axis=1)
    assert lengths.min() == 1
    assert lengths.max() == 20
    assert ((ids == vocab.eos_id).sum(axis=1) == 1).all()
    for row, length in zip(ids, lengths, strict=True):
        materials = vocab.material_of_id[row[:length]]
        assert (materials >= 0).all()
        assert (np.diff(materials) != 0).all()
        assert (row[length + 1 :] == vocab.pad_id).all()


def test_generation_is_deterministic_and_resumable(tmp_path: Path) -> None:
    first = generate_dataset(tmp_path / "a", 50, seed=5, shard_size=20, progress_bar=False)
    assert (first.shards, first.generated_shards, first.kept_shards) == (3, 3, 0)
    data = load_dataset(first.path)
    assert data.spectra.dtype == torch.float16
    assert data.spectra.shape == (50, 3, 171)
    assert data.tokens.dtype == torch.int64
    assert data.tokens.shape == (50, 21)
    manifest = json.loads((first.path / "manifest.json").read_text())
    assert manifest["complete"]
    assert len(manifest["shards"]) == 3
    # the stored spectra are the simulated ones (float16 rounding)
    exact = simulate(data.vocab.decode_batch(data.tokens[:5])).stacked()
    assert float((data.spectra[:5].double() - exact).abs().max()) < 1e-3
    # interrupt: lose the middle shard; a rerun writes only that one, identically
    (first.path / "shard-00001.safetensors").unlink()
    kept_mtime = (first.path / "shard-00000.safetensors").stat().st_mtime_ns
    again = generate_dataset(tmp_path / "a", 50, seed=5, shard_size=20, progress_bar=False)
    assert (again.generated_shards, again.kept_shards) == (1, 2)
    assert (first.path / "shard-00000.safetensors").stat().st_mtime_ns == kept_mtime
    resumed = load_dataset(first.path)
    assert torch.equal(resumed.tokens, data.tokens)
    assert torch.equal(resumed.spectra, data.spectra)
    other = load_dataset(generate_dataset(tmp_path / "b", 50, seed=5, shard_size=20, progress_bar=False).path)
    assert torch.equal(other.tokens, data.tokens)
    with pytest.raises(InputError, match="different data set"):
        generate_dataset(tmp_path / "a", 50, seed=6, shard_size=20, progress_bar=False)


def test_template_baseline_finds_the_nearest_spectrum() -> None:
    rng = np.random.default_rng(2)
    library = torch.rand(300, 3, 171, generator=torch.Generator().manual_seed(0)).half()
    tokens = torch.arange(300)[:, None].repeat(1, 21)
    targets = (
        library[[3, 150, 299]].float() + 0.001 * torch.from_numpy(rng.standard_normal((3, 3, 171))).float()
    )
    model = TemplateBaseline(library_chunk=64, target_chunk=2).fit(library, tokens)
    match = model.match(targets)
    assert match.index.tolist() == [3, 150, 299]
    brute = (library.float()[None] - targets[:, None]).abs().mean(dim=(2, 3))
    assert torch.allclose(match.mae, brute.min(dim=1).values, atol=1e-5)
    assert torch.equal(model.predict(targets), tokens[[3, 150, 299]])
    with pytest.raises(InputError, match="not fitted"):
        TemplateBaseline().match(targets)


def test_evaluate_scores_designs() -> None:
    targets = simulate(["TiO2_60 SiO2_100", "Ag_30"]).stacked()
    perfect = evaluate(targets, ["TiO2_60 SiO2_100", "Ag_30"])
    assert perfect.mae_overall < 1e-12
    wrong = evaluate(targets, ["Ag_30", "TiO2_60 SiO2_100"])
    manual = (simulate(["Ag_30", "TiO2_60 SiO2_100"]).stacked() - targets).abs().mean(dim=(1, 2))
    assert torch.allclose(wrong.mae, manual)
    assert wrong.mae_overall == pytest.approx(float(manual.mean()))
    with pytest.raises(InputError, match="one design per target"):
        evaluate(targets, ["Ag_30"])
    with pytest.raises(InputError, match="targets must have shape"):
        evaluate(targets[:, :, :10], ["Ag_30", "Ag_30"])
