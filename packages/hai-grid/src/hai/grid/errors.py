"""The errors of hai.grid."""

from __future__ import annotations

from hai.shared import NotConvergedError


class PowerFlowNotConverged(NotConvergedError):
    """A power flow did not meet its tolerance; nothing was written to ``net.res_*``.

    >>> raise PowerFlowNotConverged("no convergence")
    Traceback (most recent call last):
    ...
    hai.grid.errors.PowerFlowNotConverged: no convergence
    """
