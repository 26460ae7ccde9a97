import argparse
import math

import numpy as np
import pytest

from hai.shared import InputError, checks


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "abc", "", True])
def test_positive_int_refuses(value):
    with pytest.raises(InputError, match="epochs"):
        checks.positive_int("epochs", value)


@pytest.mark.parametrize("value", ["nan", "inf", "1.5", "-0.5", "0", "1"])
def test_fraction_refuses_outside_open_interval(value):
    with pytest.raises(InputError, match="test_fraction"):
        checks.fraction("test_fraction", value)


def test_maximum_and_finite_array():
    assert checks.positive_int("n", "7", maximum=7) == 7
    with pytest.raises(InputError, match="at most 7"):
        checks.positive_int("n", 8, maximum=7)
    with pytest.raises(InputError, match=r"2 non-finite value.*index 1"):
        checks.finite_array("loads", [1.0, math.nan, math.inf])
    np.testing.assert_array_equal(checks.finite_array("x", [1, 2]), [1.0, 2.0])


def test_argparse_types_give_usage_errors_with_exit_2(capsys):
    parser = argparse.ArgumentParser(prog="t")
    parser.add_argument("--epochs", type=checks.arg_positive_int())
    parser.add_argument("--split", type=checks.arg_fraction)
    assert parser.parse_args(["--epochs", "3", "--split", "0.2"]).epochs == 3
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--epochs", "0"])
    assert exit_info.value.code == 2
    assert "must be a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--split", "nan"])
    assert "finite" in capsys.readouterr().err


def test_memory_and_disk_checks_refuse_absurd_sizes(tmp_path):
    with pytest.raises(InputError, match="would need about"):
        checks.check_memory(1e18, "the data set")
    checks.check_memory(1e3, "a small array")
    with pytest.raises(InputError, match="would write about"):
        checks.check_disk(tmp_path / "new" / "folder", 1e18, "the data set")
    checks.check_disk(tmp_path, 10, "a tiny file")
