"""The front door: `nox -l` lists the sessions, `nox` runs tests, integration, lint and typecheck.

Distributions are discovered from the folders (shared/ and packages/*/ with a pyproject.toml),
so adding a package needs no edit here. Every install goes through constraints-dev.txt, which
pins the CPU build of torch and the tool versions.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
CONSTRAINTS = str(ROOT / "constraints-dev.txt")
JUNIT = ROOT / "build" / "junit"

nox.options.sessions = ["tests", "integration", "lint", "typecheck"]
nox.options.error_on_external_run = True


def distributions() -> dict[str, Path]:
    """Distribution name → folder: hai-shared first, then every package under packages/."""
    found = {"hai-shared": ROOT / "shared"}
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        found[pyproject.parent.name] = pyproject.parent
    return found


DISTS = distributions()


def _spec(folder: Path, extra: str = "test") -> str:
    return f"./{folder.relative_to(ROOT)}[{extra}]"


def _install(session: nox.Session, *folders: Path, extra: str = "test", more: tuple[str, ...] = ()) -> None:
    session.install("-c", CONSTRAINTS, *(_spec(f, extra) for f in folders), *more)


def _pytest(session: nox.Session, name: str, *paths: str) -> None:
    JUNIT.mkdir(parents=True, exist_ok=True)
    session.run(
        "pytest",
        "-c",
        str(ROOT / "pyproject.toml"),
        f"--junitxml={JUNIT / (name + '.xml')}",
        *paths,
        *session.posargs,
    )


@nox.session
@nox.parametrize("dist", [nox.param(name, id=name) for name in DISTS])
def tests(session: nox.Session, dist: str) -> None:
    """Each distribution alone with hai-shared in a fresh environment, then its own tests."""
    folder = DISTS[dist]
    folders = [DISTS["hai-shared"]] if dist == "hai-shared" else [DISTS["hai-shared"], folder]
    _install(session, *folders)
    _pytest(session, f"tests-{dist}", str((folder / "tests").relative_to(ROOT)))


@nox.session
def integration(session: nox.Session) -> None:
    """Everything installed together; the tests in integration_tests/ cross package boundaries."""
    _install(session, *DISTS.values())
    _pytest(session, "integration", "integration_tests")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    session.install("-c", CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over the sources of every hai distribution, with all of them installed."""
    _install(session, *DISTS.values(), more=("mypy",))
    sources = [str((folder / "src").relative_to(ROOT)) for folder in DISTS.values()]
    session.run("mypy", *sources, env={"MYPYPATH": os.pathsep.join(sources)})


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: `hai demo` with every package installed; the report lands in build/demo."""
    _install(session, *DISTS.values(), extra="demo")
    session.run("hai", "demo", "--out", str(ROOT / "build" / "demo"), *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Every benchmarks/*.py script (anchor and hai side by side); JSON lands in build/bench."""
    scripts = sorted(p for folder in DISTS.values() for p in folder.glob("benchmarks/*.py"))
    if not scripts:
        session.skip("no benchmarks/ scripts in any distribution yet")
    _install(session, *DISTS.values(), extra="bench")
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    for script in scripts:
        session.run("python", str(script), "--out", str(out), *session.posargs)
