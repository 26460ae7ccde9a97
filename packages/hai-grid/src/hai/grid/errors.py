"""The errors of hai.grid."""

from __future__ import annotations

from hai.shared import InputError, NotConvergedError


class PowerFlowNotConverged(NotConvergedError):
    """A power flow did not meet its tolerance; nothing was written to ``net.res_*``.

    >>> raise PowerFlowNotConverged("no convergence")
    Traceback (most recent call last):
    ...
    hai.grid.errors.PowerFlowNotConverged: no convergence
    """


class UnsafeNetworkFile(InputError):
    """A network file names a module, class or option hai does not load (nothing was imported).

    >>> raise UnsafeNetworkFile("net.json: refused to load: names module 'os' (class 'system')")
    Traceback (most recent call last):
    ...
    hai.grid.errors.UnsafeNetworkFile: net.json: refused to load: names module 'os' (class 'system')
    """
