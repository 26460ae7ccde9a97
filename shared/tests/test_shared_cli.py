"""The `hai` command and the namespace, with a real (dist-info) test distribution on sys.path."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hai.shared import __version__
from hai.shared.cli import main

TEST_CLI = """
import argparse
from hai.shared import InputError


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(metavar="COMMAND")
    hello = sub.add_parser("hello")
    hello.add_argument("--name", default="world")
    hello.set_defaults(handler=lambda args: print(f"hello {args.name}") or 0)
    fail = sub.add_parser("fail")
    fail.set_defaults(handler=_fail)


def _fail(args):
    raise InputError("the toy input is wrong", hint="pass a better one")
"""

TEST_DEMO = """
from hai.shared import Section


def run(context):
    context.workdir.mkdir(parents=True, exist_ok=True)
    return Section(domain="toy", title="Toy demo", metrics={"answer": 42, "seed": context.seed})


def broken(context):
    raise ValueError("demo exploded")
"""


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory) -> Path:
    """A second distribution, hai-toy, providing hai.toy with a command group and two demos."""
    site = tmp_path_factory.mktemp("site")
    package = site / "hai" / "toy"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 'from hai-toy'\n")
    (package / "cli.py").write_text(TEST_CLI)
    (package / "demo.py").write_text(TEST_DEMO)
    info = site / "hai_toy-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hai-toy\nVersion: 0.3.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [hai.commands]
            toy = hai.toy.cli:register

            [hai.demos]
            toy = hai.toy.demo:run
            toybroken = hai.toy.demo:broken
            """
        )
    )
    return site


def with_site(site: Path) -> dict[str, str]:
    """The environment with ``site`` put in front of any PYTHONPATH already set."""
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def run_hai(site: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**with_site(site), "HAI_QUIET": "1"}
    env.pop("HAI_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "hai.shared", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_two_distributions_share_the_hai_namespace(toy_site: Path):
    code = "import hai, hai.shared, hai.toy; print(hai.toy.VALUE); print(len(list(hai.__path__)))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=with_site(toy_site), capture_output=True, text=True, check=True
    )
    value, paths = out.stdout.splitlines()
    assert value == "from hai-toy"
    assert int(paths) >= 2  # hai is a namespace spread over two folders


def test_cli_runs_a_subcommand_registered_by_another_distribution(toy_site: Path):
    result = run_hai(toy_site, "toy", "hello", "--name", "grid engineer")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello grid engineer"


def test_user_error_is_one_line_and_exit_2_and_debug_shows_traceback(toy_site: Path):
    result = run_hai(toy_site, "toy", "fail")
    assert result.returncode == 2
    assert result.stderr.strip() == "hai: error: the toy input is wrong (pass a better one)"
    debug = run_hai(toy_site, "--debug", "toy", "fail")
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr


def test_info_lists_the_other_distribution(toy_site: Path):
    result = run_hai(toy_site, "info", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["distributions"]["hai-toy"] == "0.3.0"
    assert info["commands"]["toy"] == "hai-toy"
    assert info["devices"][0] == "cpu"
    # every energy source is either readable or unavailable with a reason, never silently absent
    assert info["energy_sources"] or info["energy_unavailable"]
    assert all(isinstance(reason, str) and reason for reason in info["energy_unavailable"].values())


def test_demo_writes_one_report_and_records_a_failing_demo(toy_site: Path, tmp_path: Path):
    result = run_hai(toy_site, "demo", "--out", str(tmp_path / "rep"), "--seed", "3")
    assert result.returncode == 1  # one demo failed
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["domains"]["toy"]["metrics"] == {"answer": 42, "seed": 3}
    assert metrics["domains"]["toybroken"]["error"] == "ValueError: demo exploded"
    assert "Toy demo" in (tmp_path / "rep" / "index.html").read_text()
    only = run_hai(toy_site, "demo", "--out", str(tmp_path / "only"), "--only", "toy", "--json")
    assert only.returncode == 0, only.stderr
    assert json.loads(only.stdout)["domains"] == {"toy": {"ok": True, "error": None}}


def test_missing_domain_says_what_to_install(capsys, monkeypatch):
    from hai.shared import plugins

    monkeypatch.setattr(plugins, "commands", dict)  # as if no domain were installed
    monkeypatch.setattr(plugins, "demos", dict)
    assert main(["grid", "run"]) == 2
    err = capsys.readouterr().err
    assert "hai-grid" in err
    assert "pip install" in err
    assert main(["demo", "--only", "photonics", "--out", "unused"]) == 2
    assert "hai-photonics" in capsys.readouterr().err


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hai {__version__}"
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "info" in err
    assert "a command is needed" in err


def test_demo_with_no_domain_says_so(tmp_path: Path, monkeypatch, capsys):
    from hai.shared import plugins

    monkeypatch.setattr(plugins, "demos", dict)
    assert main(["demo", "--out", str(tmp_path)]) == 0
    assert "No hai domain package is installed" in capsys.readouterr().out
    assert "nothing to show" in (tmp_path / "index.html").read_text()


def test_unopenable_file_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path: Path):
    def handler(args):
        open(tmp_path / "missing.csv")  # noqa: SIM115 - the error is the point

    import hai.shared.cli as cli_module

    real = cli_module.build_parser

    def parser_with_failing_info(argv=()):
        parser = real(argv)
        parser.set_defaults(handler=handler)
        return parser

    monkeypatch.setattr(cli_module, "build_parser", parser_with_failing_info)
    assert main(["--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"hai: error: {tmp_path / 'missing.csv'}: No such file or directory"]


def test_quiet_holds_for_one_command_only(capsys):
    from hai.shared import is_quiet

    assert not is_quiet()
    assert main(["--quiet", "info"]) == 0
    capsys.readouterr()
    assert not is_quiet()  # a later command (or library call) draws its bars again
