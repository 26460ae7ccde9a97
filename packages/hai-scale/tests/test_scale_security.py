"""Crafted files through hai-scale's readers (issue 12): nothing runs, errors are clear.

hai-scale reads energy-sweep tables (``read_table``, ``hai scale energy-report``,
``hai scale energy-sweep --table``) and its own checkpoints through hai.shared. A table is JSON
lines; a crafted one may be a pickle, truncated, of another format, name a user workload whose
import would run code, or carry rows of the wrong shape. Each must give an InputError (exit
status 2 and one line on the CLI), import and unpickle nothing, and write nothing.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from hai.scale.energy import SweepSpec, read_table, report
from hai.scale.energy.sweep import FORMAT, FORMAT_VERSION
from hai.shared import HaiError
from hai.shared.cli import main


class _Payload:
    """Unpickling this would write a marker file: the tests check that it never appears."""

    marker: Path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "pwned"))


MARKER_MODULE = """
from pathlib import Path
Path(__file__).with_name("marker").write_text("imported")

def boom(options, seed):
    raise SystemExit("ran")
"""


def _header(spec: dict[str, Any]) -> str:
    return json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "key": "x", "spec": spec})


def _crafted(tmp_path: Path) -> dict[str, bytes]:
    payload = _Payload()
    payload.marker = tmp_path / "marker"
    good_spec = SweepSpec(world_sizes=(1,), global_batches=(16,), local_batches=(16,)).to_dict()
    user_spec = {**good_spec, "workload": "hai_marker_module:boom"}
    return {
        "pickle": pickle.dumps(payload),
        "empty": b"",
        "truncated": _header(good_spec)[:40].encode(),
        "not-a-table": b'{"hello": 1}\n',
        "newer": json.dumps({"format": FORMAT, "version": 99, "spec": good_spec}).encode(),
        "bad-spec": _header({**good_spec, "world_sizes": [0]}).encode(),
        "unknown-spec-field": _header({**good_spec, "__class__": "os.system"}).encode(),
        "row-not-an-object": (_header(good_spec) + "\n" + json.dumps({"row": 5})).encode(),
        "row-missing-fields": (_header(good_spec) + "\n" + json.dumps({"row": {"name": "x"}})).encode(),
        "binary": b"\xff\xfe\x00garbage",
        # a user workload named in a table is never imported by reading or reporting it
        "user-workload-row": (
            _header(user_spec) + "\n" + json.dumps({"row": {"name": "w1-g16-l16"}})
        ).encode(),
    }


def test_crafted_tables_are_refused_and_nothing_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hai_marker_module.py").write_text(MARKER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, data in _crafted(tmp_path).items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(data)
        with pytest.raises(HaiError) as info:
            report(read_table(path).rows)
        assert "\n" not in str(info.value), name
    assert not (tmp_path / "marker").exists()


def test_crafted_tables_through_energy_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "hai_marker_module.py").write_text(MARKER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "report"
    for name, data in _crafted(tmp_path).items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(data)
        assert main(["scale", "energy-report", str(path), "--out", str(out)]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, (name, err)
        assert err[0].startswith("hai: error: "), (name, err)
    assert not out.exists()
    assert not (tmp_path / "marker").exists()


def test_a_crafted_table_given_to_a_sweep_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "table.jsonl"
    payload = _Payload()
    payload.marker = tmp_path / "marker"
    path.write_bytes(pickle.dumps(payload))
    argv = ["scale", "energy-sweep", "--world-sizes", "1", "--global-batches", "16", "--local-batches", "16"]
    assert main([*argv, "--table", str(path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert path.read_bytes() == pickle.dumps(payload)  # left as it was
    assert not (tmp_path / "marker").exists()
