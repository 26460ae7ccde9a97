"""``hai demo``: run each installed domain's demo on its embedded defaults and write the report."""

from __future__ import annotations

import os
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hai.shared import plugins
from hai.shared.energy import measure
from hai.shared.errors import HaiError, InputError
from hai.shared.report import DemoOutcome, ReportFiles, Section, write_report


@dataclass(frozen=True)
class DemoContext:
    """What a domain's demo receives: a folder of its own, a seed and a device spec."""

    workdir: Path
    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class DemoRun:
    outcomes: list[DemoOutcome]
    files: ReportFiles

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)


def run_demos(
    out_dir: str | os.PathLike[str] = "hai-demo",
    *,
    only: Sequence[str] | None = None,
    seed: int = 0,
    device: str = "auto",
) -> DemoRun:
    """Run the installed demos (or those named in ``only``) and write the report to ``out_dir``.

    A demo that fails is recorded in the report with its error; the others still run.
    """
    available = plugins.demos()
    selected = list(available)
    if only:
        unknown = [name for name in only if name not in available]
        if unknown:
            installed = ", ".join(available) or "none"
            missing = [plugins.KNOWN_DOMAINS.get(n) for n in unknown]
            hint = (
                "install " + ", ".join(m for m in missing if m)
                if all(missing)
                else f"installed demos: {installed}"
            )
            raise InputError(f"no demo named {', '.join(unknown)} is installed", hint=hint)
        selected = list(dict.fromkeys(only))
    out = Path(out_dir)
    outcomes = []
    for name in selected:
        context = DemoContext(workdir=out / name, seed=seed, device=device)
        section: Section | None = None
        error, details = None, ""
        with measure() as cost:
            try:
                run = available[name].load()
                section = run(context)
                if not isinstance(section, Section):
                    raise TypeError(f"demo returned {type(section).__name__}, expected a Section")
            except HaiError as exc:
                error = str(exc)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                details = traceback.format_exc()
        outcomes.append(DemoOutcome(name, section, cost, error, details))
    files = write_report(out, outcomes)
    return DemoRun(outcomes, files)
