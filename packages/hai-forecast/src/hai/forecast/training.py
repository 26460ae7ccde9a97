"""The training loop shared by ReCycle and the token-per-step transformer.

Adam over shuffled mini-batches of pre-built window tensors, validation after every epoch,
early stopping with ``patience`` and the best weights restored, subnormal floats flushed to zero
on the CPU while training (:func:`flush_denormals`). Per-step overhead is kept low
for small networks (a ReCycle step is a few hundred tiny tensor operations, each costing more
than its arithmetic): the windows are shuffled with one gather per tensor and epoch (the
mini-batches are then contiguous slices, i.e. views), the loss is summed on the device and read
once per epoch, and Adam is the fused kernel over the parameters laid out as one flat tensor
(:func:`flat_parameters`). The validation loss of the untrained network is recorded as epoch 0,
so the weights that are kept are never worse on validation than the starting point (for ReCycle
that is its baseline).
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from torch import nn

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: mean training loss, validation loss, wall and CPU seconds of the training pass."""

    epoch: int
    train_loss: float | None
    val_loss: float | None
    train_s: float
    train_cpu_s: float = 0.0

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass(frozen=True)
class TrainingResult:
    history: list[EpochRecord]
    best_epoch: int
    stopped_early: bool

    @property
    def mean_epoch_s(self) -> float:
        """Mean wall time of a training pass (forward + backward over the training windows)."""
        times = [r.train_s for r in self.history if r.epoch > 0]
        return sum(times) / len(times) if times else float("nan")

    @property
    def median_epoch_s(self) -> float:
        """Median wall time of a training pass: robust to other jobs on a shared machine."""
        times = [r.train_s for r in self.history if r.epoch > 0]
        return float(statistics.median(times)) if times else float("nan")

    @property
    def median_epoch_cpu_s(self) -> float:
        """Median CPU time of a training pass (this process): what other jobs cannot inflate."""
        times = [r.train_cpu_s for r in self.history if r.epoch > 0]
        return float(statistics.median(times)) if times else float("nan")


def flushing_denormals() -> bool:
    """Whether this thread's CPU arithmetic flushes subnormal floats to zero now.

    torch has no getter for :func:`torch.set_flush_denormal`, so this divides a normal float32
    into the subnormal range and looks at the result.

    >>> flushing_denormals() in (True, False)
    True
    """
    return bool((torch.tensor([1e-37], dtype=torch.float32) / 1e4).item() == 0.0)


@contextmanager
def flush_denormals() -> Iterator[bool]:
    """Flush subnormal floats to zero on the CPU while the block runs (the setting is restored).

    Subnormal numbers (below 1.2e-38 in float32) take a slow path on x86 CPUs; weights and Adam
    moments that decay towards zero late in a fit can make epochs several times slower
    (reported for ReCycle at width 64 in issue 22). Values that small do not change a
    forecast. Yields whether the CPU supports flushing.
    """
    before = flushing_denormals()
    supported = bool(torch.set_flush_denormal(True))
    try:
        yield supported
    finally:
        torch.set_flush_denormal(before)


def _take(batch: Batch, idx: torch.Tensor) -> Batch:
    return {key: value[idx] for key, value in batch.items()}


def _slice(batch: Batch, start: int, stop: int) -> Batch:
    return {key: value[start:stop] for key, value in batch.items()}


@contextmanager
def flat_parameters(net: nn.Module) -> Iterator[tuple[list[nn.Parameter], Callable[[], None]]]:
    """Lay the trainable parameters of ``net`` out as one tensor while the block runs.

    Yields the parameters an optimiser should see and the function that zeroes their
    gradients. Inside, every parameter (and its ``.grad``) is a view into one flat buffer, so
    Adam updates a single tensor with one kernel call and zeroing the gradients is one
    operation; autograd accumulates into the views in place. For a small network such as
    ReCycle's, Adam's per-tensor bookkeeping over its 43 parameters is a good part of a training
    step's fixed cost; the update of every parameter the loss reaches is the same. On exit every
    parameter gets its own storage back (values kept, ``.grad`` None). A parameter the loss does
    not reach has a zero gradient, as with ``zero_grad(set_to_none=False)``, so Adam's weight
    decay and moments still move it (Adam over separate tensors would skip it); ReCycle's and the
    transformer's losses reach every parameter. Parameters of mixed dtype or device are
    yielded as they are (zeroing then sets their gradients to None).

    >>> net = nn.Linear(3, 2)
    >>> with flat_parameters(net) as (params, zero_grad):
    ...     len(params), params[0].shape
    (1, torch.Size([8]))
    """
    params = [p for p in net.parameters() if p.requires_grad]
    if not params or len({(p.dtype, p.device) for p in params}) > 1:

        def clear() -> None:
            for p in params:
                p.grad = None

        yield params, clear
        return
    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1) for p in params])
    grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat[offset : offset + n].view_as(p)
        p.grad = grad[offset : offset + n].view_as(p)
        offset += n
    whole = nn.Parameter(flat)  # shares ``flat``'s storage: updating it updates every view
    whole.grad = grad

    def zero() -> None:
        grad.zero_()

    try:
        yield [whole], zero
    finally:
        for p in params:
            p.data = p.data.clone()
            p.grad = None


def evaluate_loss(
    net: nn.Module, loss_of: Callable[[nn.Module, Batch], torch.Tensor], data: Batch, batch_size: int
) -> float:
    """Mean loss of ``net`` over ``data`` in eval mode, without gradients."""
    n = len(next(iter(data.values())))
    was_training = net.training
    net.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            total += float(loss_of(net, _slice(data, start, stop))) * (stop - start)
    net.train(was_training)
    return total / n


def train_network(
    net: nn.Module,
    loss_of: Callable[[nn.Module, Batch], torch.Tensor],
    train: Batch,
    validation: Batch | None,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    patience: int | None = 20,
    generator: torch.Generator | None = None,
) -> TrainingResult:
    """Train ``net`` in place; return the per-epoch history. ``loss_of(net, batch)`` gives the loss.

    With ``validation`` the best weights (lowest validation loss, epoch 0 included) are restored
    at the end and training stops after ``patience`` epochs without improvement.
    """
    device_type = next(net.parameters()).device.type
    fused = device_type in ("cpu", "cuda")  # one fused kernel: less per-step overhead for small nets
    n = len(next(iter(train.values())))
    device = next(iter(train.values())).device
    history: list[EpochRecord] = []
    best_loss, best_epoch, best_state = math.inf, 0, copy.deepcopy(net.state_dict())
    if validation is not None:
        best_loss = evaluate_loss(net, loss_of, validation, batch_size)
        history.append(EpochRecord(0, None, best_loss, 0.0))
    stopped_early = False
    with flush_denormals(), flat_parameters(net) as (params, zero_grad):
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused)
        for epoch in range(1, epochs + 1):
            net.train()
            t0, c0 = time.perf_counter(), time.process_time()
            shuffled = _take(train, torch.randperm(n, generator=generator).to(device))
            total = torch.zeros((), dtype=torch.float64, device=device)  # read once per epoch
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                zero_grad()
                loss = loss_of(net, _slice(shuffled, start, stop))
                loss.backward()
                optimizer.step()
                total += loss.detach() * (stop - start)
            train_loss = float(total) / n
            train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - c0
            val_loss = evaluate_loss(net, loss_of, validation, batch_size) if validation is not None else None
            history.append(EpochRecord(epoch, train_loss, val_loss, train_s, train_cpu_s))
            if val_loss is None:
                best_epoch = epoch
                continue
            if val_loss < best_loss:
                best_loss, best_epoch, best_state = val_loss, epoch, copy.deepcopy(net.state_dict())
            elif patience is not None and epoch - best_epoch >= patience:
                stopped_early = True
                break
    if validation is not None:
        net.load_state_dict(best_state)
    net.eval()
    return TrainingResult(history, best_epoch, stopped_early)
