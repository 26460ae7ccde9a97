"""AB-training's schedule: which phase each step is in, which events happen, and its LR.

Follows ``madonna``'s ``ABLowRankTrainer._post_train_step`` (Coquelin et al., arXiv
2405.01067): ``warmup_steps`` of full-rank data parallelism; an SVD; then cycles of
``steps_between_syncs`` steps of independent group training (half of the groups train A, half
B), a synchronisation of all ranks, ``ddp_steps_after_sync`` steps of global data
parallelism, and a re-decomposition with the cut-off before the next group phase. After each
switch the learning rate rebounds: it restarts at ``rebound_lr`` and rises linearly to the
base rate over ``lr_rebound_steps`` steps.

Sync modes: ``full`` (the reference's: every rank rebuilds W = A·B and the full weights are
averaged), ``with-stale`` (A and B are each averaged over all ranks, also the factor a rank
kept frozen, then W = Ā·B̄) and ``only-learned`` (A averaged over the ranks that trained A, B
over those that trained B). The reference also names ``only-b`` but leaves it unimplemented;
hai refuses it rather than guess. The optimiser starts afresh at every change of
parametrisation (the factors are new tensors of new shapes).

The schedule is a pure function of the step, so every rank computes the same one and a trace
of a run can be checked against the configuration.

>>> s = ABSchedule(warmup_steps=2, steps_between_syncs=3, ddp_steps_after_sync=1)
>>> [s.phase(t) for t in range(8)]
['warmup', 'warmup', 'group', 'group', 'group', 'ddp', 'group', 'group']
>>> s.events(2), s.events(5), s.events(6)
(('svd',), ('sync',), ('resvd',))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from hai.shared import InputError
from hai.shared.checks import nonnegative_int, positive_float, positive_int

Phase = Literal["warmup", "group", "ddp"]
SYNC_MODES = ("full", "with-stale", "only-learned")


@dataclass(frozen=True)
class ABSchedule:
    """The step schedule of AB-training (the reference's defaults: 10/10/10, rebound 10)."""

    warmup_steps: int = 10
    steps_between_syncs: int = 10
    ddp_steps_after_sync: int = 10
    lr_rebound_steps: int = 10
    rebound_lr: float = 1e-5
    sync_mode: str = "full"
    #: Start AdamW afresh at every decomposition and sync (the reference's ``reset_opt``). With
    #: False, parameters that survive an event under their name and shape (biases, layers that
    #: are not factored) keep their moments; the factors A and B, whose basis every SVD
    #: changes, always start afresh.
    reset_optimizer: bool = True

    def __post_init__(self) -> None:
        nonnegative_int("warmup_steps", self.warmup_steps)
        positive_int("steps_between_syncs", self.steps_between_syncs)
        nonnegative_int("ddp_steps_after_sync", self.ddp_steps_after_sync)
        nonnegative_int("lr_rebound_steps", self.lr_rebound_steps)
        positive_float("rebound_lr", self.rebound_lr)
        if self.sync_mode == "only-b":
            raise InputError(
                "sync mode 'only-b' is not implemented",
                hint="the reference names it without an implementation; use full, with-stale or only-learned",
            )
        if self.sync_mode not in SYNC_MODES:
            raise InputError(f"unknown sync mode {self.sync_mode!r}", hint="one of " + ", ".join(SYNC_MODES))

    @property
    def cycle(self) -> int:
        return self.steps_between_syncs + self.ddp_steps_after_sync

    def phase(self, step: int) -> Phase:
        """The phase of 0-based ``step``."""
        if step < self.warmup_steps:
            return "warmup"
        return "group" if (step - self.warmup_steps) % self.cycle < self.steps_between_syncs else "ddp"

    def events(self, step: int) -> tuple[str, ...]:
        """What happens before ``step`` runs: ``svd`` (first factorisation), ``sync``, ``resvd``."""
        if step < self.warmup_steps:
            return ()
        offset = step - self.warmup_steps
        if offset == 0:
            return ("svd",)
        position = offset % self.cycle
        if position == self.steps_between_syncs:
            return ("sync",)
        if position == 0:
            # With no DDP steps after a sync, the sync and the re-decomposition coincide.
            return ("sync", "resvd") if self.ddp_steps_after_sync == 0 else ("resvd",)
        return ()

    def phase_start(self, step: int) -> int:
        """The first step of the phase ``step`` belongs to (0 for the warm-up)."""
        if step < self.warmup_steps:
            return 0
        offset = step - self.warmup_steps
        position = offset % self.cycle
        start = (
            offset - position
            if position < self.steps_between_syncs
            else offset - position + self.steps_between_syncs
        )
        return self.warmup_steps + start

    def lr(self, step: int, base_lr: float) -> float:
        """The learning rate of ``step``: the base rate, rebounding after every switch."""
        start = self.phase_start(step)
        if step < self.warmup_steps or self.lr_rebound_steps == 0:
            return base_lr
        ramp = min(1.0, (step - start) / self.lr_rebound_steps)
        return self.rebound_lr + (base_lr - self.rebound_lr) * ramp

    def trace(self, steps: int, base_lr: float) -> list[dict[str, Any]]:
        """One record per step: ``step``, ``phase``, ``events``, ``lr``."""
        return [
            {"step": t, "phase": self.phase(t), "events": list(self.events(t)), "lr": self.lr(t, base_lr)}
            for t in range(steps)
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ABGroups:
    """Ranks in groups of ``group_size``: the first half of the groups trains A, the rest B.

    >>> g = ABGroups.build(world_size=8, group_size=2)
    >>> g.groups, g.roles
    (((0, 1), (2, 3), (4, 5), (6, 7)), ('A', 'A', 'B', 'B'))
    >>> g.role_of(5)
    'B'
    """

    groups: tuple[tuple[int, ...], ...]
    roles: tuple[str, ...]

    @classmethod
    def build(cls, world_size: int, group_size: int) -> ABGroups:
        world_size = positive_int("world size", world_size)
        group_size = positive_int("group size", group_size)
        if world_size % group_size:
            raise InputError(
                f"the group size {group_size} does not divide the world size {world_size}",
                hint="choose a group size that divides the number of processes",
            )
        count = world_size // group_size
        if count < 2:
            raise InputError(
                f"AB-training needs at least two groups (one training A, one B); {world_size} "
                f"process(es) in groups of {group_size} make {count}",
                hint="use a smaller group size or more processes",
            )
        groups = tuple(tuple(range(g * group_size, (g + 1) * group_size)) for g in range(count))
        roles = tuple("A" if g < count // 2 else "B" for g in range(count))
        return cls(groups, roles)

    def group_of(self, rank: int) -> int:
        for index, members in enumerate(self.groups):
            if rank in members:
                return index
        raise InputError(f"rank {rank} is in no group of {len(self.groups)}")

    def role_of(self, rank: int) -> str:
        return self.roles[self.group_of(rank)]
