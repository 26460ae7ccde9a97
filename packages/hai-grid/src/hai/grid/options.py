"""pandapower's ``runpp`` options as ``hai.grid.runpp`` reads them: honoured, or refused by name.

``hai.grid.runpp(net, **options)`` takes every keyword of ``pandapower.runpp`` (pandapower
3.5) and the options stored by ``pandapower.set_user_pf_options`` (``net.user_pf_options``).
Which wins is pandapower's rule (``_passed_runpp_parameters``): a keyword given to the call wins
over the stored option, except one of ``runpp``'s named parameters (:data:`NAMED`) given at its
default value, which pandapower cannot tell from one not given. Each is either honoured with
pandapower's meaning or refused with an :class:`~hai.shared.InputError` naming it; an unknown
keyword is refused too (pandapower would swallow a misspelt one). See :data:`OPTIONS`.

>>> resolve_options({"enforce_q_lims": False, "max_iteration": "auto"})["max_iteration"]
10
>>> resolve_options({"tdpf": True})
Traceback (most recent call last):
...
hai.shared.errors.InputError: runpp option tdpf=True is not supported by hai.grid: ...
"""

from __future__ import annotations

import math
from typing import Any

from hai.shared import InputError

#: pandapower's ``runpp`` defaults (3.5.6), for the options hai reads.
DEFAULTS: dict[str, Any] = {
    "algorithm": "nr",
    "calculate_voltage_angles": True,
    "init": "auto",
    "max_iteration": "auto",
    "tolerance_mva": 1e-8,
    "trafo_model": "t",
    "trafo_loading": "current",
    "enforce_p_lims": False,
    "enforce_q_lims": False,
    "check_connectivity": True,
    "voltage_depend_loads": True,
    "consider_line_temperature": False,
    "run_control": False,
    "distributed_slack": False,
    "tdpf": False,
    "tdpf_delay_s": None,
    "tdpf_update_r_theta": True,
    "numba": True,
    "lightsim2grid": "auto",
    "switch_rx_ratio": 2,
    "delta_q": 0,
    "trafo3w_losses": "hv",
    "v_debug": False,
    "init_vm_pu": None,
    "init_va_degree": None,
    "recycle": None,
    "neglect_open_switch_branches": False,
    "only_v_results": False,
    "use_umfpack": True,
    "permc_spec": None,
}

#: ``pandapower.runpp``'s named parameters (3.5.6): given at their default, the stored option wins.
NAMED = (
    "algorithm",
    "calculate_voltage_angles",
    "init",
    "max_iteration",
    "tolerance_mva",
    "trafo_model",
    "trafo_loading",
    "enforce_p_lims",
    "enforce_q_lims",
    "check_connectivity",
    "voltage_depend_loads",
    "consider_line_temperature",
    "run_control",
    "distributed_slack",
    "tdpf",
    "tdpf_delay_s",
)

#: What hai does with each option (the README's table is this one).
OPTIONS: dict[str, str] = {
    "algorithm": 'honoured: "nr" (Newton-Raphson); other algorithms refused',
    "calculate_voltage_angles": "honoured (True, False, 'auto'): passed to pandapower's model build",
    "init": 'honoured: "auto", "dc", "flat", "results"; a number refused',
    "max_iteration": 'honoured: "auto" = 10 Newton steps (pandapower\'s), or a positive integer',
    "tolerance_mva": "honoured with pandapower's meaning: bound on the ∞-norm of the per-unit mismatch; "
    "at most 0.1",
    "trafo_model": 'honoured ("t", "pi"): pandapower builds the model',
    "trafo_loading": 'honoured ("current", "power"): pandapower fills res_trafo',
    "check_connectivity": "honoured: pandapower's connectivity check",
    "voltage_depend_loads": "honoured: False models every load at constant power; True with "
    "const_z/const_i loads refused",
    "switch_rx_ratio": "honoured: passed to pandapower's model build",
    "trafo3w_losses": "honoured: passed to pandapower's model build",
    "neglect_open_switch_branches": "honoured: passed to pandapower's model build",
    "numba": "accepted, no effect on results (hai does not use numba)",
    "lightsim2grid": "accepted, no effect on results (hai's own solver runs)",
    "use_umfpack": "accepted, no effect on results (linear solver choice)",
    "permc_spec": "accepted, no effect on results (linear solver choice)",
    "recycle": "accepted, no effect on results (hai rebuilds the model each call)",
    "only_v_results": "accepted: hai fills every res_* table (a superset)",
    "delta_q": "honoured: widens the generators' Q limits for enforce_q_lims (pandapower's model build)",
    "tdpf_update_r_theta": "accepted only with tdpf=False, where it has no effect",
    "enforce_q_lims": "honoured (True): pandapower's PV→PQ switching loop around hai's Newton",
    "enforce_p_lims": "refused when True",
    "distributed_slack": "honoured (True): pandapower's slack weights (slack_weight of ext_grid, gen, "
    "xward) and its Newton formulation with the slack power as one more unknown; also together "
    "with enforce_q_lims; stored, also by solve_batch (without outages) and run_timeseries",
    "consider_line_temperature": "refused when True",
    "run_control": "refused when True (hai runs no controllers)",
    "tdpf": "refused when True",
    "tdpf_delay_s": "refused unless None",
    "v_debug": "refused when True",
    "init_vm_pu": "refused unless None (use init)",
    "init_va_degree": "refused unless None (use init)",
}

#: Options whose only accepted value is pandapower's default (the rest are refused by name).
_ONLY_DEFAULT = (
    "enforce_p_lims",
    "consider_line_temperature",
    "run_control",
    "tdpf",
    "tdpf_delay_s",
    "v_debug",
    "init_vm_pu",
    "init_va_degree",
)
#: Largest ``tolerance_mva`` (per unit, pandapower's meaning) hai accepts: above it a start that
#: is far from any solution would be reported as converged (case9 from a flat start has a
#: 1.63 pu mismatch).
MAX_TOLERANCE = 0.1
NR_DEFAULT_MAX_ITERATION = 10


def _is_default(name: str, value: Any) -> bool:
    """pandapower's test (``val != default`` means passed)."""
    try:
        return not bool(value != DEFAULTS[name])
    except (TypeError, ValueError):  # an array or another value without a truth value: passed
        return False


def _refuse(name: str, value: Any, why: str) -> InputError:
    return InputError(f"runpp option {name}={value!r} is not supported by hai.grid: {why}")


def resolve_options(given: dict[str, Any], user_pf_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pandapower's defaults, overlaid by ``given`` and ``user_pf_options`` by pandapower's rule, checked.

    A stored option wins unless the call passed that keyword (for :data:`NAMED` parameters: at a
    value other than pandapower's default).

    Returns the full option dict (``max_iteration`` resolved to an int, ``tolerance_mva`` a
    float); raises :class:`InputError` naming the first option that is unknown or refused.
    """
    user = dict(user_pf_options or {})
    for name in list(user) + list(given):
        if name not in DEFAULTS:
            raise InputError(
                f"unknown runpp option {name!r}",
                hint="hai.grid.runpp takes the keywords of pandapower.runpp (see hai.grid.options.OPTIONS)",
            )
    # pandapower's rule: what the call passed wins, named parameters at their default do not count
    passed = {name for name, value in given.items() if name not in NAMED or not _is_default(name, value)}
    opts = {**DEFAULTS, **given, **{name: value for name, value in user.items() if name not in passed}}
    source = {name: ("net.user_pf_options" if name in user and name not in passed else "") for name in opts}

    def refuse(name: str, why: str) -> InputError:
        where = f" (set in {source[name]})" if source[name] else ""
        return _refuse(name, opts[name], why + where)

    for name in _ONLY_DEFAULT:
        value = opts[name]
        if value is not DEFAULTS[name] and value != DEFAULTS[name]:
            raise refuse(name, OPTIONS[name].removeprefix("refused ").removeprefix("when True "))
    if opts["algorithm"] != "nr":
        raise refuse("algorithm", 'only "nr" (Newton-Raphson) is implemented')
    if opts["init"] not in ("auto", "dc", "flat", "results"):
        raise refuse("init", 'use "auto", "dc", "flat" or "results"')
    if opts["calculate_voltage_angles"] not in (True, False, "auto"):
        raise refuse("calculate_voltage_angles", "use True, False or 'auto'")
    if opts["trafo_model"] not in ("t", "pi"):
        raise refuse("trafo_model", 'use "t" or "pi"')
    if opts["trafo_loading"] not in ("current", "power"):
        raise refuse("trafo_loading", 'use "current" or "power"')
    if opts["trafo3w_losses"] not in ("hv", "mv", "lv", "star"):
        raise refuse("trafo3w_losses", 'use "hv", "mv", "lv" or "star"')
    if opts["enforce_q_lims"] not in (True, False):  # pandapower's 2 (one generator per pass)
        raise refuse("enforce_q_lims", "use True or False")
    delta_q = opts["delta_q"]
    if isinstance(delta_q, bool) or not isinstance(delta_q, int | float) or not math.isfinite(delta_q):
        raise refuse("delta_q", "must be a finite number")
    flags = ("check_connectivity", "voltage_depend_loads", "neglect_open_switch_branches")
    for name in (*flags, "distributed_slack"):
        if not isinstance(opts[name], bool):
            raise refuse(name, "use True or False")
    # tdpf_update_r_theta acts only with tdpf, refused above
    iterations = opts["max_iteration"]
    if iterations == "auto" or iterations is None:  # None: hai's earlier spelling of "auto"
        iterations = NR_DEFAULT_MAX_ITERATION
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise refuse("max_iteration", '"auto" or a positive integer')
    opts["max_iteration"] = int(iterations)
    tol = opts["tolerance_mva"]
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not math.isfinite(tol) or tol <= 0:
        raise refuse("tolerance_mva", "must be a positive number")
    if tol > MAX_TOLERANCE:
        raise refuse(
            "tolerance_mva",
            f"above {MAX_TOLERANCE:g} (per unit mismatch, pandapower's meaning) a start far from "
            "any solution would count as converged",
        )
    opts["tolerance_mva"] = float(tol)
    switch_rx = opts["switch_rx_ratio"]
    if isinstance(switch_rx, bool) or not isinstance(switch_rx, int | float) or not math.isfinite(switch_rx):
        raise refuse("switch_rx_ratio", "must be a finite number")
    return opts


def build_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The subset of resolved options that pandapower's model build (``_init_runpp_options``) takes."""
    return {
        "calculate_voltage_angles": opts["calculate_voltage_angles"],
        "trafo_model": opts["trafo_model"],
        "trafo_loading": opts["trafo_loading"],
        "check_connectivity": opts["check_connectivity"],
        "switch_rx_ratio": opts["switch_rx_ratio"],
        "trafo3w_losses": opts["trafo3w_losses"],
        "neglect_open_switch_branches": opts["neglect_open_switch_branches"],
        "enforce_q_lims": bool(opts["enforce_q_lims"]),
        "delta_q": opts["delta_q"],
        "distributed_slack": bool(opts["distributed_slack"]),
    }


#: Options the batch APIs take as their own arguments (in MVA there), not from user_pf_options.
_CALL_ARGUMENTS = ("tolerance_mva", "max_iteration", "init")


#: Batch APIs that honour ``distributed_slack`` (injection scenarios; no outages).
DISTRIBUTED_SLACK_APIS = ("solve_batch", "run_timeseries")


def compile_options(net: Any, api: str) -> dict[str, Any]:
    """``compile_network`` keywords for ``api`` from ``net.user_pf_options``, refused by name if not honoured.

    The batch APIs (``solve_batch``, ``run_timeseries``, ``run_contingency``, gradients,
    identification) honour the model-build options stored by ``pandapower.set_user_pf_options``
    (``calculate_voltage_angles``, ``trafo_model``, ``trafo_loading``, ``check_connectivity``,
    ``switch_rx_ratio``, ``trafo3w_losses``, ``neglect_open_switch_branches``,
    ``voltage_depend_loads``) and refuse the rest as :func:`runpp` does; ``tolerance_mva``,
    ``max_iteration`` and ``init`` are their own arguments and are refused there by name.
    ``distributed_slack`` is honoured by ``solve_batch`` (without outages) and
    ``run_timeseries`` (``pp_options["distributed_slack"]`` True) and refused by the others.

    >>> import pandapower as pp
    >>> from hai.grid.cases import load_case
    >>> net = load_case("case9")
    >>> pp.set_user_pf_options(net, trafo_model="pi")
    >>> compile_options(net, "solve_batch")["pp_options"]["trafo_model"]
    'pi'
    """
    user = net.get("user_pf_options") if hasattr(net, "get") else None
    user = dict(user) if isinstance(user, dict) else {}
    for name in _CALL_ARGUMENTS:
        if name in user and user[name] != DEFAULTS[name]:
            raise InputError(
                f"net.user_pf_options {name}={user[name]!r} is not read by {api}",
                hint=f"remove it from net.user_pf_options and pass {name} to {api}",
            )
    opts = resolve_options({}, {k: v for k, v in user.items() if k not in _CALL_ARGUMENTS})
    if opts["enforce_q_lims"]:
        raise InputError(
            f"net.user_pf_options enforce_q_lims=True is not supported by {api} (only by hai.grid.runpp)",
            hint="remove it from net.user_pf_options, or solve the scenarios one by one with runpp",
        )
    if opts["distributed_slack"] and api not in DISTRIBUTED_SLACK_APIS:
        raise InputError(
            f"net.user_pf_options distributed_slack=True is not supported by {api} "
            f"(only by hai.grid.runpp, {' and '.join(DISTRIBUTED_SLACK_APIS)})",
            hint="remove it from net.user_pf_options, or solve the scenarios one by one with runpp",
        )
    build = build_options(opts)
    del build["enforce_q_lims"], build["delta_q"]
    return {"voltage_depend_loads": opts["voltage_depend_loads"], "pp_options": build}
