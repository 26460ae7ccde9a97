"""With every distribution installed: `hai info` sees them all and `hai demo` reports on all."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = ["hai-shared"] + [p.parent.name for p in sorted(ROOT.glob("packages/*/pyproject.toml"))]
DOMAINS = [name.removeprefix("hai-") for name in DISTRIBUTIONS[1:]]


def hai(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hai.shared", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "HAI_QUIET": "1", "MPLBACKEND": "Agg"},
    )  # fmt: skip


def test_info_lists_every_distribution_and_command():
    result = hai("info", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    for name in DISTRIBUTIONS:
        folder = ROOT / ("shared" if name == "hai-shared" else f"packages/{name}")
        version = tomllib.loads((folder / "pyproject.toml").read_text())["project"]["version"]
        assert info["distributions"][name] == version
    assert sorted(info["commands"]) == sorted(DOMAINS)
    assert sorted(info["demos"]) == sorted(DOMAINS)


@pytest.mark.timeout(1500)
def test_demo_runs_every_domain_and_writes_one_report(tmp_path: Path):
    # every method's part of every domain, on 2 CPU cores: several minutes
    result = hai("demo", "--out", str(tmp_path), "--device", "cpu", timeout=1400)
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert sorted(metrics["domains"]) == sorted(DOMAINS)
    page = (tmp_path / "index.html").read_text()
    for domain, entry in metrics["domains"].items():
        assert entry["status"] == "ok", (domain, entry.get("error"))
        assert entry["metrics"], f"{domain} demo reported no metrics"
        assert f"id='{domain}'" in page
        for figure in entry["figures"]:
            assert (tmp_path / figure).read_bytes().startswith(b"\x89PNG"), figure
        # energy is a measurement or explicitly unavailable, never a made-up zero
        cost = entry["cost"]
        assert cost["energy_j"] or cost["energy_unavailable"]
