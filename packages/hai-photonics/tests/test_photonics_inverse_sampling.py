"""Samplers: commit counts per step, validity of every sampled sequence, logit filters."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import torch

from hai.photonics.inverse.model import ModelConfig, OptoLlama
from hai.photonics.inverse.noise import NoiseSchedule
from hai.photonics.inverse.optogpt import OptoGPT, decode
from hai.photonics.inverse.sampling import (
    _draw_ends,
    allowed_mask,
    canonical,
    filter_logits,
    is_valid,
    sample,
    transfer_counts,
)
from hai.photonics.stacks import Vocabulary
from hai.shared import InputError, torch_threads


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with torch_threads(1):
        yield


VOCAB = Vocabulary(["TiO2", "SiO2", "Ag"], range(10, 101, 10), max_layers=8)


def _models() -> tuple[OptoLlama, OptoGPT]:
    torch.manual_seed(0)
    cfg = ModelConfig.sized("tiny", vocab_size=len(VOCAB), seq_len=VOCAB.sequence_length, width=12)
    return OptoLlama(cfg), OptoGPT(cfg)


def test_transfer_counts_like_llada() -> None:
    assert transfer_counts(21, 5) == [5, 4, 4, 4, 4]
    assert transfer_counts(21, 21) == [1] * 21
    assert transfer_counts(3, 5) == [1, 1, 1, 0, 0]
    assert sum(transfer_counts(21, 8)) == 21


@pytest.mark.parametrize("steps", [1, 4, 9, 20])
def test_confidence_sampler_commits_counts_per_step(steps: int) -> None:
    model, _ = _models()
    trace: list[torch.Tensor] = []
    sample(model, torch.rand(6, 3, 12), VOCAB, method="confidence", steps=steps, trace=trace)
    remaining = [VOCAB.sequence_length] + [int(m[0].sum()) for m in trace]
    assert all(int(m.sum(dim=1).unique().numel()) == 1 for m in trace)  # same count in every row
    committed = [a - b for a, b in itertools.pairwise(remaining)]
    assert committed == transfer_counts(VOCAB.sequence_length, steps)
    assert remaining[-1] == 0


def test_remask_sampler_remasks_at_beta() -> None:
    model, _ = _models()
    trace: list[torch.Tensor] = []
    steps = 5
    sample(model, torch.rand(200, 3, 12), VOCAB, method="remask", steps=steps, trace=trace)
    times = torch.linspace(1.0, 1e-3, steps + 1, dtype=torch.float64)
    s = NoiseSchedule()
    for i, masked in enumerate(trace[:-1]):
        assert float(masked.double().mean()) == pytest.approx(float(s.beta(times[i + 1])), abs=0.03)
    assert not trace[-1].any()


def test_every_sampled_sequence_is_valid() -> None:
    llama, gpt = _models()
    spectra = torch.rand(32, 3, 12)
    g = torch.Generator().manual_seed(3)
    outputs = [
        sample(llama, spectra, VOCAB, method="confidence", steps=3, temperature=1.5, top_p=None, generator=g),
        sample(llama, spectra, VOCAB, method="confidence", steps=9, temperature=0.0),
        sample(llama, spectra, VOCAB, method="remask", steps=6, temperature=2.0, top_p=0.95, generator=g),
        sample(llama, spectra, VOCAB, method="length", steps=5, temperature=1.5, top_p=None, generator=g),
        sample(llama, spectra, VOCAB, method="length", steps=1, temperature=0.0),
        decode(gpt, spectra, VOCAB),
        decode(gpt, spectra, VOCAB, method="sample", temperature=2.0, top_k=50, generator=g),
        decode(gpt, spectra, VOCAB, method="sample", top_p=0.5, generator=g),
        decode(gpt, spectra[:8], VOCAB, method="beam", beams=3),
    ]
    for ids in outputs:
        assert ids.shape[1] == VOCAB.sequence_length
        assert bool(is_valid(ids, VOCAB).all())
        for stack in VOCAB.decode_batch(ids):  # decodes without error, at least one layer
            assert 1 <= len(stack) <= VOCAB.max_layers
    with pytest.raises(InputError):
        sample(llama, spectra, VOCAB, method="gibbs")
    with pytest.raises(InputError):
        decode(gpt, spectra, VOCAB, method="nucleus")


def test_canonical_and_is_valid() -> None:
    v = VOCAB
    layer = v.id("TiO2_10")
    ids = torch.tensor([[layer, v.eos_id, layer, v.eos_id, layer, v.pad_id, v.pad_id, v.pad_id, v.pad_id]])
    out = canonical(ids, v)
    assert out.tolist() == [[layer, v.eos_id] + [v.pad_id] * 7]
    assert bool(is_valid(out, v).all())
    bad = [
        [v.eos_id] + [v.pad_id] * 8,  # no layer
        [layer, v.mask_id, v.eos_id] + [v.pad_id] * 6,  # MSK inside
        [layer, v.pad_id, layer, v.eos_id] + [v.pad_id] * 5,  # PAD inside
        [layer] * 9,  # no EOS
        [layer, v.eos_id, layer] + [v.pad_id] * 6,  # a layer after EOS
    ]
    assert not bool(is_valid(torch.tensor(bad), v).any())


def test_filter_logits() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(filter_logits(logits, top_k=2)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.7)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.1)).tolist() == [[True, False, False, False]]


class _PadLover(torch.nn.Module):
    """A stand-in model: fixed logits per position, ``<PAD>`` far ahead everywhere, ``<EOS>`` at
    position j with logit ``eos[j]``, one layer token (nearly) certain among the layers."""

    def __init__(self, eos: torch.Tensor) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        logits = torch.zeros(VOCAB.sequence_length, len(VOCAB))
        logits[:, VOCAB.pad_id] = 40.0
        logits[:, VOCAB.eos_id] = eos
        logits[:, VOCAB.id("SiO2_50")] = 30.0
        self.register_buffer("logits", logits)

    def forward(self, tokens: torch.Tensor, t: torch.Tensor, spectra: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(tokens.shape[0], -1, -1).clone()


def test_length_sampler_draws_the_end_from_the_eos_probabilities() -> None:
    eos = torch.linspace(-2.0, 2.0, VOCAB.sequence_length)
    model = _PadLover(eos)
    # the confidence sampler commits the confident <PAD>s and collapses to one layer
    short = sample(model, torch.rand(50, 3, 12), VOCAB, method="confidence", steps=4)
    assert all(len(s) == 1 for s in VOCAB.decode_batch(short))
    g = torch.Generator().manual_seed(0)
    n = 6000
    ids = sample(
        model, torch.rand(n, 3, 12), VOCAB, method="length", steps=4, temperature=1.0, top_p=None, generator=g
    )
    assert bool(is_valid(ids, VOCAB).all())
    lengths = torch.tensor([len(s) for s in VOCAB.decode_batch(ids)])
    # closed form: p(EOS at j) under the full softmax of position j, renormalised over the
    # positions allowed to end the stack (1 .. L-1); a stack ending at j has j layers
    logits = model.logits.masked_fill(~allowed_mask(VOCAB, pad_ends=True), float("-inf"))
    p_end = torch.softmax(logits, dim=-1)[:, VOCAB.eos_id]
    expected = p_end / p_end.sum()
    observed = torch.bincount(lengths, minlength=VOCAB.sequence_length).double() / n
    assert observed[0] == 0
    assert torch.allclose(observed, expected.double(), atol=0.02)
    # every layer before the drawn end is the preferred layer token (no end token inside)
    layer = VOCAB.id("SiO2_50")
    pos = torch.arange(VOCAB.sequence_length)[None, :]
    assert bool((ids[pos < lengths[:, None]] == layer).all())
    # T = 0: the most probable end, for every row
    greedy = _draw_ends(logits.expand(3, -1, -1), VOCAB, 0.0, None)
    assert greedy.tolist() == [int(p_end.argmax())] * 3


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_length_sampler_commits_the_end_first_then_every_layer(steps: int) -> None:
    model, _ = _models()
    trace: list[torch.Tensor] = []
    g = torch.Generator().manual_seed(1)
    ids = sample(model, torch.rand(16, 3, 12), VOCAB, method="length", steps=steps, generator=g, trace=trace)
    lengths = torch.tensor([len(s) for s in VOCAB.decode_batch(ids)])
    assert torch.equal(trace[0].sum(dim=1), lengths)  # after the first step only the layers are masked
    assert not trace[-1].any()
    assert len(trace) <= max(steps - 1, 1) + 1
