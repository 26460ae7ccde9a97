"""OptoGPT: an autoregressive decoder over stack tokens, conditioned on the spectrum.

Follows Ma, Wang and Guo (Opto-Electronic Advances 2024, arXiv 2304.10294; ``taigaoma1997/optogpt``
``run_optogpt.py``): the spectrum is the decoder's memory, the stack is generated left to right
from ``<BOS>``, trained with teacher forcing (label smoothing 0.1 as in the reference) and decoded
greedily, by top-k/top-p sampling or by beam search. Here the spectrum becomes the same three
R, A, T tokens as in OptoLlama and the blocks are OptoLlama's without time conditioning (a causal
self-attention mask instead), so the two models differ only in how they generate — a fair
baseline on the same data and compute. Decoding is constrained so that every output is a valid
stack: layer tokens or ``<EOS>`` (never at the first position), ``<EOS>`` forced at the last.
Hand-written (a few lines on top of :mod:`hai.photonics.inverse.layers`).
"""

from __future__ import annotations

import torch
from torch import nn

from hai.photonics.inverse.layers import Block, SpectrumEncoder
from hai.photonics.inverse.model import ModelConfig
from hai.photonics.inverse.sampling import allowed_mask, canonical, filter_logits
from hai.photonics.stacks import Vocabulary
from hai.shared import InputError

__all__ = ["DECODINGS", "OptoGPT", "decode"]

DECODINGS = ("greedy", "sample", "beam")


class OptoGPT(nn.Module):
    """``forward(inputs (B, L) starting with <BOS>, spectra (B, 3, W)) → next-token logits (B, L, V)``."""

    kind = "optogpt"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.embed = nn.Embedding(config.vocab_size, d)
        self.pos = nn.Parameter(torch.randn(config.seq_len, d) * 0.02)
        self.spectrum = SpectrumEncoder(config.width, d)
        self.blocks = nn.ModuleList(
            [Block(d, config.n_heads, config.mlp_ratio, config.dropout) for _ in range(config.n_blocks)]
        )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, config.vocab_size)

    def forward(self, inputs: torch.Tensor, spectra: torch.Tensor) -> torch.Tensor:
        n = inputs.shape[1]
        x = self.embed(inputs) + self.pos[None, :n]
        memory = self.spectrum(spectra.to(x.dtype))
        causal = torch.triu(torch.ones(n, n, dtype=torch.bool, device=x.device), diagonal=1)
        for block in self.blocks:
            x = block(x, memory, None, attn_mask=causal)
        logits: torch.Tensor = self.head(self.norm(x))
        return logits


def shift_right(tokens: torch.Tensor, bos_id: int) -> torch.Tensor:
    """Teacher-forcing inputs: ``<BOS>`` then the tokens without the last one."""
    bos = torch.full_like(tokens[:, :1], bos_id)
    return torch.cat([bos, tokens[:, :-1]], dim=1)


@torch.no_grad()
def decode(
    model: OptoGPT,
    spectra: torch.Tensor,
    vocab: Vocabulary,
    *,
    method: str = "greedy",
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    beams: int = 5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Token ids (B, L) of valid stacks for spectra (B, 3, W); beam search returns the best beam."""
    if method not in DECODINGS:
        raise InputError(f"unknown decoding {method!r}", hint=f"decodings: {', '.join(DECODINGS)}")
    model.eval()
    length = vocab.sequence_length
    device = next(model.parameters()).device
    spectra = spectra.to(device, torch.float32)
    allowed = allowed_mask(vocab, length).to(device)  # (L, V)
    if method == "beam":
        return _beam(model, spectra, vocab, allowed, beams)
    b = spectra.shape[0]
    seq = torch.full((b, 1), vocab.bos_id, dtype=torch.int64, device=device)
    for pos in range(length):
        logits = model(seq, spectra)[:, -1].float()
        logits = logits.masked_fill(~allowed[pos], float("-inf"))
        if method == "greedy":
            nxt = logits.argmax(dim=-1)
        else:
            probs = torch.softmax(filter_logits(logits / temperature, top_k=top_k, top_p=top_p), dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        seq = torch.cat([seq, nxt[:, None]], dim=1)
    return canonical(seq[:, 1:].cpu(), vocab)


def _beam(
    model: OptoGPT, spectra: torch.Tensor, vocab: Vocabulary, allowed: torch.Tensor, beams: int
) -> torch.Tensor:
    b, length, v = spectra.shape[0], vocab.sequence_length, len(vocab)
    device = spectra.device
    seq = torch.full((b, 1, 1), vocab.bos_id, dtype=torch.int64, device=device)  # (B, beams, n)
    score = torch.zeros(b, 1, device=device)
    done = torch.zeros(b, 1, dtype=torch.bool, device=device)
    for pos in range(length):
        k = seq.shape[1]
        flat = seq.reshape(b * k, -1)
        logp = torch.log_softmax(model(flat, spectra.repeat_interleave(k, 0))[:, -1].float(), dim=-1)
        logp = logp.masked_fill(~allowed[pos], float("-inf")).reshape(b, k, v)
        # a finished beam continues with PAD at no cost, and only with PAD
        pad_only = torch.full((v,), float("-inf"), device=device)
        pad_only[vocab.pad_id] = 0.0
        logp = torch.where(done[:, :, None], pad_only, logp)
        total = (score[:, :, None] + logp).reshape(b, -1)
        width = min(beams, int(torch.isfinite(total).sum(dim=1).min()))
        score, idx = total.topk(width, dim=1)
        parent, token = idx // v, idx % v
        seq = torch.cat(
            [torch.gather(seq, 1, parent[:, :, None].expand(-1, -1, seq.shape[2])), token[:, :, None]], 2
        )
        done = torch.gather(done, 1, parent) | (token == vocab.eos_id)
    return canonical(seq[:, 0, 1:].cpu(), vocab)
