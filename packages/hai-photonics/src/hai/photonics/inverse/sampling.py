"""Sampling stacks from OptoLlama: the reference's predict-all / re-mask sampler and a
confidence sampler in the style of MDLM/LLaDA, with the constraints that make every output valid.

``remask`` follows OptoLlama (``optollama/evaluation/prediction.py``): start all ``<MSK>``, run t
from 1 to 1e-3 over ``steps``; each step predicts every position (temperature, top-p) and re-masks
each with probability β(t_next); nothing committed is kept (MaskGIT-like). ``confidence`` follows
LLaDA's ``generate.py``: start all ``<MSK>``, commit ``get_num_transfer_tokens`` — #masked/steps
per step, the remainder on the first steps — choosing the masked positions whose sampled token
is most probable (``low_confidence`` re-masking); committed tokens stay (MDLM's frozen clean
tokens). ``length`` (hai's, not the reference's) first draws where each stack ends from the model's
own ``<EOS>`` probabilities over the positions (all still masked, tempered like the tokens),
commits that ``<EOS>`` and the ``<PAD>`` behind it, and then commits layers by confidence as
``confidence`` does, with no end token allowed before the drawn one. Why: the confidence sampler
commits the most probable tokens first, and with every position masked those are the ``<PAD>``
of the last positions (most stacks are shorter than 20 layers); each committed ``<PAD>`` makes the
one before it more probable, so samples collapse to 2–4 layers where the targets have 10
(measured by ``benchmarks/tune_optollama_sampler.py``); the remask sampler ends each stack at the
first of 21 independently drawn tokens that is an end token, with the same effect.
Validity by construction: logits outside the allowed set of a position (layer tokens
and ``<EOS>`` or ``<PAD>``; neither at the first position, no layer at the last) are −inf,
tokens committed behind a committed end become ``<PAD>`` at once (the inputs the model saw in training),
and :func:`canonical` ends each stack at its first ``<EOS>``/``<PAD>``. Hand-written: no library samples
masked-diffusion models of arbitrary token sets (see the reference notes, §3).
"""

from __future__ import annotations

import torch

from hai.photonics.inverse.noise import NoiseSchedule
from hai.photonics.stacks import Vocabulary
from hai.shared import InputError

__all__ = [
    "SAMPLERS",
    "allowed_mask",
    "canonical",
    "filter_logits",
    "is_valid",
    "sample",
    "transfer_counts",
]

SAMPLERS = ("remask", "confidence", "length")


def allowed_mask(vocab: Vocabulary, length: int | None = None, *, pad_ends: bool = False) -> torch.Tensor:
    """(L, V) booleans: which tokens a sampler may put at each position (layer tokens, and ``<EOS>``
    except at the first position; only ``<EOS>`` at the last). With ``pad_ends`` a ``<PAD>`` may
    stand wherever ``<EOS>`` may: :func:`canonical` then ends the stack there."""
    length = vocab.sequence_length if length is None else length
    allowed = torch.zeros(length, len(vocab), dtype=torch.bool)
    allowed[:, len(vocab.tokens) - len(vocab.materials) * len(vocab.thicknesses_nm) :] = True
    allowed[1:, vocab.eos_id] = True
    if pad_ends:
        allowed[1:, vocab.pad_id] = True
    allowed[length - 1] = False
    allowed[length - 1, vocab.eos_id] = True
    if pad_ends:
        allowed[length - 1, vocab.pad_id] = True
    return allowed


def canonical(ids: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """The first ``<EOS>`` or ``<PAD>`` of each row becomes ``<EOS>``, everything after it ``<PAD>``."""
    end = (ids == vocab.eos_id) | (ids == vocab.pad_id)
    seen = torch.cumsum(end.long(), dim=1)
    first = end & (seen == 1)
    out = torch.where(seen > 0, torch.full_like(ids, vocab.pad_id), ids)
    return torch.where(first, torch.full_like(ids, vocab.eos_id), out)


def _settle(x: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """During sampling: committed tokens behind a committed ``<EOS>``/``<PAD>`` become ``<PAD>`` (as
    the model saw them in training); masked positions stay masked, so commit counts are exact."""
    end = (x == vocab.eos_id) | (x == vocab.pad_id)
    behind = ((torch.cumsum(end.long(), dim=1) - end.long()) > 0) & (x != vocab.mask_id)
    return torch.where(behind, torch.full_like(x, vocab.pad_id), x)


def is_valid(ids: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """(B,) booleans: ≥ 1 layer token, then ``<EOS>``, then only ``<PAD>`` (no MSK/BOS/PAD inside)."""
    n_special = len(vocab.tokens) - len(vocab.materials) * len(vocab.thicknesses_nm)
    is_eos = ids == vocab.eos_id
    has_eos = is_eos.any(dim=1)
    first = torch.where(has_eos, is_eos.float().argmax(dim=1), torch.full_like(has_eos, 0, dtype=torch.long))
    pos = torch.arange(ids.shape[1])[None, :]
    before = pos < first[:, None]
    after = pos > first[:, None]
    layers_ok = ((ids >= n_special) | ~before).all(dim=1)
    pad_ok = ((ids == vocab.pad_id) | ~after).all(dim=1)
    return has_eos & (first >= 1) & layers_ok & pad_ok


def filter_logits(
    logits: torch.Tensor, *, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Logits with everything outside the top-k and the top-p nucleus set to −inf (last dim)."""
    if top_k is not None and top_k > 0 and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        cum = probs.cumsum(dim=-1) - probs  # mass strictly before each token: the first is always kept
        drop_sorted = cum >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _draw(
    logits: torch.Tensor, temperature: float, top_p: float | None, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampled tokens and their probabilities under the filtered distribution; greedy at T = 0."""
    if temperature <= 0:
        probs = torch.softmax(logits, dim=-1)
        tok = logits.argmax(dim=-1)
        return tok, probs.gather(-1, tok[..., None]).squeeze(-1)
    probs = torch.softmax(filter_logits(logits / temperature, top_p=top_p), dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    tok = torch.multinomial(flat.cpu(), 1, generator=generator).to(flat.device).reshape(probs.shape[:-1])
    return tok, probs.gather(-1, tok[..., None]).squeeze(-1)


def _draw_ends(
    logits: torch.Tensor, vocab: Vocabulary, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """(B,) positions of ``<EOS>``: drawn ∝ p(``<EOS>`` at j)^(1/T) over the positions allowed to
    hold it (the most probable at T = 0)."""
    log_p = torch.log_softmax(logits, dim=-1)[..., vocab.eos_id]  # (B, L); −inf where not allowed
    if temperature <= 0:
        return log_p.argmax(dim=1)
    probs = torch.softmax(log_p / temperature, dim=1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(logits.device)


def transfer_counts(masked: int, steps: int) -> list[int]:
    """LLaDA's ``get_num_transfer_tokens``: ``masked // steps`` per step, the remainder first."""
    base, rem = divmod(masked, steps)
    return [base + (1 if i < rem else 0) for i in range(steps)]


@torch.no_grad()
def sample(
    model: torch.nn.Module,
    spectra: torch.Tensor,
    vocab: Vocabulary,
    *,
    method: str = "confidence",
    steps: int = 21,
    temperature: float = 0.65,
    top_p: float | None = 0.9,
    schedule: NoiseSchedule | None = None,
    generator: torch.Generator | None = None,
    trace: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Token ids (B, L) of valid stacks for spectra (B, 3, W).

    ``trace``, when given, receives the boolean mask of still-masked positions after each step.
    """
    if method not in SAMPLERS:
        raise InputError(f"unknown sampler {method!r}", hint=f"samplers: {', '.join(SAMPLERS)}")
    if not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps must be a positive integer, got {steps!r}")
    schedule = schedule or NoiseSchedule()
    model.eval()
    device = next(model.parameters()).device
    spectra = spectra.to(device, torch.float32)
    b, length = spectra.shape[0], vocab.sequence_length
    allowed = allowed_mask(vocab, length, pad_ends=True).to(device)
    x = torch.full((b, length), vocab.mask_id, dtype=torch.int64, device=device)

    permitted = allowed[None]  # (1 or B, L, V): narrowed per row by the length sampler

    def logits_at(t: torch.Tensor) -> torch.Tensor:
        return model(x, t, spectra).float().masked_fill(~permitted, float("-inf"))

    if method == "remask":
        times = torch.linspace(1.0, schedule.eps, steps + 1, dtype=torch.float64)
        for i in range(steps):
            tok, _ = _draw(logits_at(times[i].repeat(b).to(device)), temperature, top_p, generator)
            if i < steps - 1:
                p = float(schedule.beta(times[i + 1]))
                u = torch.rand(b, length, generator=generator).to(device)
                remask = u < p
                x = torch.where(remask, torch.full_like(tok, vocab.mask_id), _settle(tok, vocab))
            else:
                x = tok
            if trace is not None:
                trace.append((x == vocab.mask_id).cpu())
        return canonical(x.cpu(), vocab)

    counts = transfer_counts(length, steps)
    if method == "length":
        ends = _draw_ends(logits_at(torch.ones(b, device=device)), vocab, temperature, generator)
        pos = torch.arange(length, device=device)[None, :]
        x = torch.where(pos > ends[:, None], torch.full_like(x, vocab.pad_id), x)
        x = torch.where(pos == ends[:, None], torch.full_like(x, vocab.eos_id), x)
        before = (pos < ends[:, None])[:, :, None]
        end_ids = torch.tensor([vocab.eos_id, vocab.pad_id], device=device)
        is_end = torch.zeros(len(vocab), dtype=torch.bool, device=device).scatter(0, end_ids, True)
        permitted = permitted & ~(before & is_end[None, None, :])  # read by logits_at
        if trace is not None:
            trace.append((x == vocab.mask_id).cpu())
        # the layers left are committed over the remaining steps, the same number in every row
        # only when the drawn lengths agree; each row commits its own share per step
        left = (x == vocab.mask_id).sum(dim=1)
        per_row = [transfer_counts(int(n), max(steps - 1, 1)) for n in left.tolist()]
        for i in range(max(steps - 1, 1)):
            masked = x == vocab.mask_id
            if not masked.any():
                break
            t = schedule.time_of(masked.double().mean(dim=1)).to(device)
            tok, conf = _draw(logits_at(t), temperature, top_p, generator)
            conf = conf.masked_fill(~masked, -1.0)
            order = conf.argsort(dim=1, descending=True)
            rank = torch.empty_like(order).scatter_(1, order, pos.expand_as(order).contiguous())
            quota = torch.tensor([row[i] for row in per_row], device=device)
            commit = (rank < quota[:, None]) & masked
            x = torch.where(commit, tok, x)
            if trace is not None:
                trace.append((x == vocab.mask_id).cpu())
        return canonical(x.cpu(), vocab)

    for i in range(steps):
        masked = x == vocab.mask_id
        t = schedule.time_of(masked.double().mean(dim=1)).to(device)
        tok, conf = _draw(logits_at(t), temperature, top_p, generator)
        if counts[i]:
            conf = conf.masked_fill(~masked, -1.0)
            chosen = conf.topk(counts[i], dim=1).indices
            commit = torch.zeros_like(masked).scatter(1, chosen, True) & masked
            x = _settle(torch.where(commit, tok, x), vocab)
        if trace is not None:
            trace.append((x == vocab.mask_id).cpu())
    return canonical(x.cpu(), vocab)
