"""The demo report: domains hand over figures and numbers, this module writes the files.

``write_report`` produces ``index.html`` (one section per domain, figures as PNG files beside
it, metrics and tables as HTML tables) and ``metrics.json`` (every number, plus timing and
energy per domain). All files are written atomically.
"""

from __future__ import annotations

import html
import io
import os
import platform
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hai.shared.energy import Measurement
from hai.shared.files import to_jsonable, write_bytes, write_json, write_text

MetricValue = float | int | str | bool | None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "figure"


@dataclass
class Figure:
    """A PNG image with a name (used for its file name) and a caption."""

    name: str
    png: bytes
    caption: str = ""

    @classmethod
    def from_matplotlib(cls, figure: Any, name: str, caption: str = "", dpi: int = 110) -> Figure:
        """Render a matplotlib figure (anything with ``savefig``) to PNG."""
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        return cls(name=name, png=buffer.getvalue(), caption=caption)


@dataclass
class Table:
    """A small table of values for the report, with a caption."""

    caption: str
    columns: list[str]
    rows: list[list[MetricValue]]


@dataclass
class Section:
    """One domain's part of the report.

    >>> Section(domain="grid", title="Power flow", metrics={"max_error_pu": 1e-12}).domain
    'grid'
    """

    domain: str
    title: str
    summary: str = ""
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class DemoOutcome:
    """A demo's section, or the error that stopped it, and what running it cost."""

    domain: str
    section: Section | None
    measurement: Measurement
    error: str | None = None
    details: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ReportFiles:
    index_html: Path
    metrics_json: Path


def _format(value: MetricValue) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "—" if value is None else str(value)


def _table_html(caption: str, columns: list[str], rows: list[list[MetricValue]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_format(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><caption>{html.escape(caption)}</caption><tr>{head}</tr>{body}</table>"


def _cost_text(m: Measurement) -> str:
    energy = f"{m.total_energy_j:.1f} J" if m.total_energy_j is not None else "energy unavailable here"
    return f"{m.wall_s:.1f} s wall, {m.cpu_s:.1f} s CPU, {energy}"


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}section{margin:2em 0;border-top:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}
caption{text-align:left;font-weight:bold;padding:4px 0}figure{margin:1em 0}img{max-width:100%}
.failed{color:#a00}.cost{color:#666;font-size:90%}pre{background:#f4f4f4;padding:1em;overflow:auto}
"""


def write_report(
    out_dir: str | os.PathLike[str],
    outcomes: list[DemoOutcome],
    *,
    title: str = "hai demo report",
    environment: dict[str, Any] | None = None,
) -> ReportFiles:
    """Write ``index.html``, ``metrics.json`` and ``figures/*.png`` for ``outcomes`` to ``out_dir``."""
    out = Path(out_dir)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    env = {"python": platform.python_version(), "machine": platform.platform(), **(environment or {})}
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p class='cost'>Created {created} on {html.escape(str(env['machine']))}.</p>",
    ]
    if not outcomes:
        parts.append("<p>No hai domain package is installed, so there is nothing to show.</p>")
    domains: dict[str, Any] = {}
    for outcome in outcomes:
        parts.append(f"<section id='{_slug(outcome.domain)}'>")
        entry: dict[str, Any] = {"status": "ok" if outcome.ok else "failed"}
        entry["cost"] = outcome.measurement.to_dict()
        section = outcome.section
        if section is None:
            parts.append(
                f"<h2>{html.escape(outcome.domain)}</h2><p class='failed'>The demo failed: "
                f"{html.escape(outcome.error or '')}</p>"
            )
            if outcome.details:
                parts.append(
                    f"<details><summary>details</summary><pre>{html.escape(outcome.details)}</pre></details>"
                )
            entry["error"] = outcome.error
        else:
            parts.append(f"<h2>{html.escape(section.title)}</h2>")
            if section.summary:
                parts.append(f"<p>{html.escape(section.summary)}</p>")
            if section.metrics:
                rows: list[list[MetricValue]] = [[k, v] for k, v in section.metrics.items()]
                parts.append(_table_html("Metrics", ["metric", "value"], rows))
            for table in section.tables:
                parts.append(_table_html(table.caption, table.columns, table.rows))
            figure_files = []
            for figure in section.figures:
                rel = f"figures/{_slug(section.domain)}-{_slug(figure.name)}.png"
                write_bytes(out / rel, figure.png)
                figure_files.append(rel)
                alt = html.escape(figure.caption or figure.name)
                parts.append(
                    f"<figure><img src='{html.escape(rel)}' alt='{alt}'>"
                    f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
                )
            entry.update(
                title=section.title,
                metrics=section.metrics,
                tables=[{"caption": t.caption, "columns": t.columns, "rows": t.rows} for t in section.tables],
                figures=figure_files,
            )
        parts.append(f"<p class='cost'>Demo cost: {html.escape(_cost_text(outcome.measurement))}.</p>")
        parts.append("</section>")
        domains[outcome.domain] = entry
    parts.append("</body></html>\n")
    metrics_path = write_json(
        out / "metrics.json",
        to_jsonable({"title": title, "created": created, "environment": env, "domains": domains}),
    )
    index_path = write_text(out / "index.html", "\n".join(parts))
    return ReportFiles(index_html=index_path, metrics_json=metrics_path)
