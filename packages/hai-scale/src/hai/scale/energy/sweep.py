"""Run an energy sweep point by point into one results table, resumable, locally or on SLURM.

The table is a JSON-lines file: a header with the sweep's definition and key, then one row per
finished point. Each row is added by rewriting the file atomically, so an interrupted sweep
leaves every finished point in place and a rerun skips them. A table whose header holds
another definition is refused. Locally every point runs through
:func:`hai.scale.local_ranks.run_ranks`; with submitit each point is one SLURM job (nodes ×
tasks from the world size) that runs the same worker command under ``srun``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hai.scale.energy.spec import SweepPoint, SweepSpec
from hai.scale.local_ranks import RankJob, rank_folder, run_ranks
from hai.shared import InputError, MissingPackageError, progress, write_json, write_text

FORMAT = "hai-energy-sweep"
FORMAT_VERSION = 1

__all__ = ["FORMAT", "SweepTable", "point_command", "read_table", "run_sweep", "submit_sweep"]


@dataclass
class SweepTable:
    """A results table: the sweep it belongs to and its finished rows."""

    path: Path
    spec: SweepSpec
    rows: list[dict[str, Any]]

    @property
    def done(self) -> set[str]:
        return {row["name"] for row in self.rows}


def read_table(path: str | Path) -> SweepTable:
    """Read a results table (header + rows); a malformed file is a clear error."""
    path = Path(path)
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        header = json.loads(lines[0])
        rows = [json.loads(line)["row"] for line in lines[1:]]
    except (OSError, ValueError, IndexError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a readable energy-sweep table: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InputError(f"{path} is not an energy-sweep table (no {FORMAT!r} header)")
    version = header.get("version", 0)
    if not isinstance(version, int):
        raise InputError(f"{path} is not an energy-sweep table (version {version!r})")
    if version > FORMAT_VERSION:
        raise InputError(f"{path} was written by a newer hai (table version {version})", hint="upgrade")
    try:
        spec = SweepSpec.from_dict(header.get("spec"))
    except InputError as exc:
        raise InputError(f"{path} holds a sweep definition that is not valid: {exc.message}") from None
    for number, row in enumerate(rows, start=2):
        _check_row(path, number, row)
    return SweepTable(path, spec, rows)


#: What every row holds (written by the worker), with the types a report relies on.
_ROW_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "point": dict,
    "wall_s": (int, float),
    "device_hours": (int, float),
    "samples_per_device_hour": (int, float),
    "updates_per_device_hour": (int, float),
    "metric_name": str,
    "metric": (int, float),
}


def _check_row(path: Path, line: int, row: Any) -> None:
    if not isinstance(row, dict):
        raise InputError(f"{path} line {line}: a row must be a JSON object, not {type(row).__name__}")
    for name, kind in _ROW_FIELDS.items():
        if not isinstance(row.get(name), kind) or isinstance(row.get(name), bool):
            raise InputError(f"{path} line {line}: the row has no valid {name!r}", hint="is it a hai table?")
    energy = row.get("energy_j")
    if energy is not None and (not isinstance(energy, int | float) or isinstance(energy, bool)):
        raise InputError(f"{path} line {line}: energy_j must be a number or null")
    point = row["point"]
    for name in ("world_size", "global_batch", "local_batch"):
        if not isinstance(point.get(name), int) or isinstance(point.get(name), bool):
            raise InputError(f"{path} line {line}: the row's point has no valid {name!r}")


def _write_table(path: Path, spec: SweepSpec, rows: Sequence[dict[str, Any]]) -> None:
    header = {"format": FORMAT, "version": FORMAT_VERSION, "key": spec.key, "spec": spec.to_dict()}
    lines = [json.dumps(header)] + [json.dumps({"row": row}) for row in rows]
    write_text(path, "\n".join(lines) + "\n")


def _open_table(path: Path, spec: SweepSpec) -> SweepTable:
    if path.is_dir():
        raise InputError(f"the table {path} is a folder", hint="give a file name such as sweep.jsonl")
    if not path.exists():
        _write_table(path, spec, [])
        return SweepTable(path, spec, [])
    table = read_table(path)
    if table.spec.key != spec.key:
        raise InputError(
            f"{path} holds the results of another sweep definition "
            f"(key {table.spec.key}, this one {spec.key})",
            hint="use a new table file, or the same options as the sweep that wrote it",
        )
    return table


def point_command(spec_file: Path, point: SweepPoint, out: Path, timeout_s: float) -> list[str]:
    """The worker's command line after ``python`` (rank arguments are added by the launcher)."""
    return [
        "-m", "hai.scale.energy.worker", "--spec", str(spec_file), "--point", point.name,
        "--out", str(out), "--timeout", str(timeout_s),
    ]  # fmt: skip


def _run_local(spec_file: Path, point: SweepPoint, timeout_s: float) -> dict[str, Any]:
    with rank_folder("hai-energy-") as folder:

        def command(job: RankJob, rank: int) -> list[str]:
            return [*point_command(spec_file, point, folder, timeout_s), *job.rank_args(rank)]

        run_ranks(folder, point.world_size, command, timeout_s=timeout_s, what=f"sweep point {point.name}")
        result: dict[str, Any] = json.loads((folder / "point.json").read_text())
        return result


def run_sweep(
    spec: SweepSpec,
    table_path: str | Path,
    *,
    timeout_s: float = 1800.0,
    runner: Callable[[Path, SweepPoint, float], dict[str, Any]] | None = None,
) -> SweepTable:
    """Run every point of ``spec`` that ``table_path`` does not hold yet; return the table."""
    path = Path(table_path)
    table = _open_table(path, spec)
    todo = [p for p in spec.points() if p.name not in table.done]
    spec_file = path.with_name(f".{path.name}.spec.json")
    write_json(spec_file, spec.to_dict())
    run = runner or _run_local
    try:
        for point in progress(todo, desc="energy sweep", unit="point"):
            row = run(spec_file, point, timeout_s)
            table.rows.append(row)
            _write_table(path, spec, table.rows)
    finally:
        spec_file.unlink(missing_ok=True)
    return table


class _Command:
    """A picklable callable that runs the worker on a SLURM task (what submitit ships)."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    def __call__(self) -> int:
        return subprocess.run([sys.executable, *self.argv], check=True).returncode


def submit_sweep(
    spec: SweepSpec,
    folder: str | Path,
    *,
    gpus_per_node: int = 4,
    timeout_min: int = 60,
    partition: str | None = None,
    executor: Any | None = None,
) -> list[Any]:
    """Submit every point as one SLURM job through submitit; return the jobs.

    Each job runs the worker under torchrun's environment (``RANK``/``WORLD_SIZE`` from
    submitit's ``submitit.helpers.TorchDistributedEnvironment``); rows land in
    ``folder/points/NAME/point.json`` and :func:`collect_submitted` adds them to the table.
    """
    folder = Path(folder)
    if executor is None:
        try:
            import submitit
        except ImportError as exc:
            raise MissingPackageError(
                "submitting to SLURM needs submitit", hint="pip install 'hai-scale[slurm]'"
            ) from exc
        executor = submitit.AutoExecutor(folder=folder / "slurm")
    spec_file = folder / "spec.json"
    write_json(spec_file, spec.to_dict())
    jobs = []
    for point in spec.points():
        nodes = max(1, -(-point.world_size // gpus_per_node))
        tasks = min(point.world_size, gpus_per_node)
        params: dict[str, Any] = {"nodes": nodes, "tasks_per_node": tasks, "timeout_min": timeout_min}
        params["gpus_per_node"] = tasks
        if partition:
            params["slurm_partition"] = partition
        executor.update_parameters(**params)
        out = folder / "points" / point.name
        jobs.append(executor.submit(_Command(point_command(spec_file, point, out, timeout_min * 60.0))))
    return jobs


def collect_submitted(spec: SweepSpec, folder: str | Path, table_path: str | Path) -> SweepTable:
    """Add the rows of finished submitted points to the table (the others stay to do)."""
    table = _open_table(Path(table_path), spec)
    for point in spec.points():
        row_file = Path(folder) / "points" / point.name / "point.json"
        if point.name not in table.done and row_file.is_file():
            table.rows.append(json.loads(row_file.read_text()))
    _write_table(table.path, spec, table.rows)
    return table
