"""What a (pruned) network costs, measured: parameters, FLOPs/MACs, size on disk, CPU latency.

- **Parameters**: all, and the nonzero ones (what unstructured pruning changes).
- **FLOPs** by ``torch.utils.flop_counter.FlopCounterMode`` over one forward pass: the matrix
  products and convolutions PyTorch dispatches. Two additions, so the zoo's attention and
  frequency blocks are not invisible: CPU scaled-dot-product attention
  (``aten._scaled_dot_product_flash_attention_for_cpu``, which the counter does not know) with
  the counter's own SDPA formula, and the real FFTs (``aten._fft_r2c`` / ``_fft_c2r``) with the
  usual ``2.5 · n · log2(n)`` per transform of length ``n`` (a convention, reported separately
  as ``fft_flops``). Element-wise operations are not counted. Dense kernels run on zeros too:
  unstructured pruning leaves the counted FLOPs unchanged, only structured pruning lowers them.
  MACs are FLOPs / 2.
- **Size**: the ``state_dict`` saved with ``torch.save``, dense, and sparse (every ≥ 2-D weight
  stored in CSR with 32-bit indices where that is smaller: 8 bytes per
  nonzero float32 against 4 per dense value, so it pays beyond 50 % sparsity).
- **Latency**: median wall time of a no-grad eval forward on one batch, after warm-up runs,
  with one torch thread (the machine's other load shows in the spread: the min and the
  quartiles are reported too).
"""

from __future__ import annotations

import io
import math
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from hai.shared import torch_threads

aten = torch.ops.aten
Forward = Callable[[], Any]


def _sdpa_cpu_flops(
    query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any
) -> int:
    return int(sdpa_flop_count(query, key, value))


def _fft_flops(x: Any, dim: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """``2.5 · N · log2(n)`` for a real FFT of length ``n`` over ``N`` values (the real side)."""
    shape = out_shape if len(out_shape) and math.prod(out_shape) > math.prod(x) else x
    dims = [int(d) for d in (dim if isinstance(dim, list | tuple) else [dim])]
    n = math.prod(int(shape[d]) for d in dims)
    return int(2.5 * math.prod(shape) * math.log2(n)) if n > 1 else 0


def _fft_c2r_flops(
    x: Any, dim: Any, normalization: Any, last_dim_size: Any, *args: Any, out_shape: Any = None, **kwargs: Any
) -> int:
    return _fft_flops(out_shape, dim, out_shape=out_shape)


CUSTOM_FLOPS: dict[Any, Any] = {
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flops,
    aten._fft_r2c: _fft_flops,
    aten._fft_c2r: _fft_c2r_flops,
}


def count_flops(net: nn.Module, forward: Forward) -> tuple[int, int]:
    """(FLOPs, of which FFT) of one no-grad eval forward (``forward()`` runs ``net``)."""
    was = net.training
    net.eval()
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=CUSTOM_FLOPS) as counter:
        forward()
    net.train(was)
    counts = counter.get_flop_counts().get("Global", {})
    fft = sum(int(v) for k, v in counts.items() if "fft" in str(k))
    return int(counter.get_total_flops()), fft


def state_dict_bytes(net: nn.Module, *, sparse: bool = False) -> int:
    """Bytes of ``torch.save(net.state_dict())``; ``sparse``: ≥ 2-D float tensors in CSR where smaller."""
    state: dict[str, torch.Tensor] = {}
    for key, value in net.state_dict().items():
        value = value.detach().cpu()
        if sparse and value.dim() >= 2 and value.is_floating_point():
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                csr = value.reshape(value.shape[0], -1).to_sparse_csr()
                crow, col = csr.crow_indices().to(torch.int32), csr.col_indices().to(torch.int32)
                csr = torch.sparse_csr_tensor(crow, col, csr.values(), csr.shape)
            dense_bytes = value.numel() * value.element_size()
            csr_bytes = sum(t.numel() * t.element_size() for t in (csr.values(), col, crow))
            if csr_bytes < dense_bytes:
                state[key] = csr
                continue
        state[key] = value.clone()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return len(buffer.getvalue())


def latency(
    net: nn.Module, forward: Forward, warmup: int = 3, repeats: int = 20, threads: int | None = 1
) -> dict[str, float]:
    """Median, min and quartiles of the wall seconds of one no-grad eval forward."""
    was = net.training
    net.eval()
    times = []
    with torch.no_grad(), torch_threads(threads):
        for _ in range(warmup):
            forward()
        for _ in range(repeats):
            t0 = time.perf_counter()
            forward()
            times.append(time.perf_counter() - t0)
    net.train(was)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"median_s": statistics.median(times), "min_s": min(times), "q1_s": q[0], "q3_s": q[2]}


def paired_latency(
    first: tuple[nn.Module, Forward],
    second: tuple[nn.Module, Forward],
    *,
    warmup: int = 3,
    repeats: int = 20,
    threads: int | None = 1,
) -> tuple[float, float]:
    """Median wall seconds of two networks' forwards timed alternately (load from other jobs hits both).

    What a latency *ratio* should be computed from on a shared machine: two separate runs can
    differ by tens of percent with the same network.
    """
    nets = [first[0], second[0]]
    modes = [n.training for n in nets]
    for n in nets:
        n.eval()
    times: list[list[float]] = [[], []]
    with torch.no_grad(), torch_threads(threads):
        for _ in range(warmup):
            first[1]()
            second[1]()
        for _ in range(repeats):
            for i, (_, forward) in enumerate((first, second)):
                t0 = time.perf_counter()
                forward()
                times[i].append(time.perf_counter() - t0)
    for n, mode in zip(nets, modes, strict=True):
        n.train(mode)
    return statistics.median(times[0]), statistics.median(times[1])


@dataclass(frozen=True)
class Costs:
    """The measured costs of one network on one input batch."""

    parameters: int
    nonzero_parameters: int
    flops: int
    fft_flops: int
    size_bytes: int
    sparse_size_bytes: int
    latency_s: float
    latency_min_s: float
    latency_q1_s: float
    latency_q3_s: float
    batch_size: int

    @property
    def macs(self) -> int:
        return self.flops // 2

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "macs": self.macs}


def measure_costs(
    net: nn.Module,
    forward: Forward,
    batch_size: int,
    warmup: int = 3,
    repeats: int = 20,
    threads: int | None = 1,
) -> Costs:
    """Parameters, FLOPs, sizes and latency of ``net``; ``forward()`` runs it on a batch of ``batch_size``."""
    params = list(net.parameters())
    flops, fft = count_flops(net, forward)
    lat = latency(net, forward, warmup=warmup, repeats=repeats, threads=threads)
    return Costs(
        parameters=sum(p.numel() for p in params),
        nonzero_parameters=sum(int((p != 0).sum()) for p in params),
        flops=flops,
        fft_flops=fft,
        size_bytes=state_dict_bytes(net),
        sparse_size_bytes=state_dict_bytes(net, sparse=True),
        latency_s=lat["median_s"],
        latency_min_s=lat["min_s"],
        latency_q1_s=lat["q1_s"],
        latency_q3_s=lat["q3_s"],
        batch_size=int(batch_size),
    )
