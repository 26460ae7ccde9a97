"""The house rules of the repository, checked on the files themselves."""

import configparser
import re
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"hai-shared": ROOT / "shared"} | {
    p.parent.name: p.parent for p in sorted(ROOT.glob("packages/*/pyproject.toml"))
}
DOMAINS = {name: folder for name, folder in FOLDERS.items() if name != "hai-shared"}


def _project(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())["project"]


def test_hai_stays_a_namespace_package():
    assert not list(ROOT.glob("**/src/hai/__init__.py"))
    for name, folder in FOLDERS.items():
        sub = name.removeprefix("hai-")
        assert (folder / "src" / "hai" / sub / "__init__.py").is_file(), name


def test_every_distribution_has_its_shape():
    for name, folder in FOLDERS.items():
        project = _project(folder)
        assert project["name"] == name
        assert (folder / "README.md").is_file()
        assert list((folder / "tests").glob("test_*.py")), f"{name} has no tests"
        extras = project.get("optional-dependencies", {})
        assert {"test", "demo", "bench"} <= set(extras), f"{name} lacks a test/demo/bench extra"
        for requirement in project.get("dependencies", []):
            assert "==" not in requirement, f"{name} pins {requirement}: libraries take ranges"


def test_domains_register_a_command_group_and_a_demo_and_import_only_shared():
    for name, folder in DOMAINS.items():
        domain = name.removeprefix("hai-")
        entry_points = _project(folder)["entry-points"]
        assert entry_points["hai.commands"] == {domain: f"hai.{domain}.cli:register"}
        assert entry_points["hai.demos"] == {domain: f"hai.{domain}.demo:run"}
        assert any(dep.startswith("hai-shared") for dep in _project(folder)["dependencies"])
        others = [d.removeprefix("hai-") for d in DOMAINS if d != name]
        for source in (folder / "src").rglob("*.py"):
            text = source.read_text()
            for other in others:
                assert not re.search(rf"^\s*(from|import)\s+hai\.{other}\b", text, re.M), source


def test_test_file_names_are_unique_across_the_repository():
    def ours(path: Path) -> bool:  # not in a virtual environment or build folder inside the clone
        parts = path.relative_to(ROOT).parts
        return not any(part.startswith(".") or part in ("build", "site-packages") for part in parts)

    names = Counter(p.name for p in ROOT.glob("**/tests/test_*.py") if ours(p))
    names.update(p.name for p in (ROOT / "integration_tests").glob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []
    for name, folder in DOMAINS.items():
        prefix = f"test_{name.removeprefix('hai-')}_"
        assert all(p.name.startswith(prefix) for p in (folder / "tests").glob("test_*.py")), name


def test_tox_has_one_environment_per_distribution():
    config = configparser.ConfigParser()
    config.read(ROOT / "tox.ini")
    env_list = [e.strip() for e in config["tox"]["env_list"].split(",")]
    assert env_list == list(FOLDERS)
    for name in DOMAINS:
        assert f"packages/{name}/tests" in config[f"testenv:{name}"]["commands"]


def test_constraints_pin_the_cpu_torch_build():
    pins = (ROOT / "constraints-dev.txt").read_text().splitlines()
    assert "torch==2.13.0" in pins
