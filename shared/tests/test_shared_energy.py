import time
from pathlib import Path

import pytest

from hai.shared import EnergyCounter, measure
from hai.shared import energy as energy_mod
from hai.shared.energy import discover_rapl, discover_sensors


def _zone(folder: Path, name: str, energy_uj: int, max_uj: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "name").write_text(name + "\n")
    (folder / "energy_uj").write_text(f"{energy_uj}\n")
    (folder / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return folder


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    root = tmp_path / "powercap"
    pkg = _zone(root / "intel-rapl:0", "package-0", 1_000_000, 9_999_999)
    _zone(root / "intel-rapl:0:0", "core", 5, 9_999_999)  # overlaps the package: skipped
    _zone(root / "intel-rapl:0:1", "dram", 2_000_000, 4_999_999)
    (pkg / "unused").write_text("")
    return root


def test_rapl_package_and_dram_are_found_and_core_is_skipped(powercap: Path):
    sources, unavailable = discover_rapl(powercap)
    names = [s.name for s in sources]
    assert names == ["rapl:0:package-0", "rapl:0:1:dram"]
    assert unavailable == {}
    assert sources[0].read_j() == pytest.approx(1.0)
    assert sources[0].wrap_j == pytest.approx(10.0)  # (max_energy_range_uj + 1) µJ


def test_rapl_counter_wrap_is_added_back(powercap: Path):
    (package,) = [s for s in discover_rapl(powercap)[0] if "package" in s.name]
    counter_file = powercap / "intel-rapl:0" / "energy_uj"

    def set_counter(microjoules: int) -> None:  # atomically, as sysfs presents it
        tmp = counter_file.with_suffix(".tmp")
        tmp.write_text(str(microjoules))
        tmp.replace(counter_file)

    set_counter(9_000_000)  # 9 J, the counter range is 10 J
    with measure([package], interval_s=0.01) as cost:
        set_counter(9_500_000)
        time.sleep(0.05)  # the sampler sees 9.5 J
        set_counter(500_000)  # wrapped: 9.5 -> 10 -> 0.5
        time.sleep(0.05)
        set_counter(2_000_000)
    # 0.5 J before the wrap + 0.5 J to the wrap + 2 J after it = 3 J
    assert cost.energy_j == {"rapl:0:package-0": pytest.approx(3.0)}
    assert cost.total_energy_j == pytest.approx(3.0)


def test_synthetic_counter_with_wraparound_between_samples():
    # A counter of range 100 J read at start (95), by the sampler (99), after a wrap (3) and at
    # the end (10): 4 J + (100 - 99 + 3) J + 7 J = 15 J.
    readings = iter([95.0, 99.0, 3.0, 10.0])
    counter = EnergyCounter("meter", lambda: next(readings), wrap_j=100.0)
    accumulator = energy_mod._Accumulator(counter)
    for _ in range(3):
        accumulator.update()
    assert accumulator.failure is None
    assert accumulator.total == pytest.approx(15.0)


def test_measure_uses_start_and_end_readings_when_no_sample_falls_in_between():
    readings = iter([98.0, 1.0])  # wraps once between start and end
    counter = EnergyCounter("meter", lambda: next(readings), wrap_j=100.0)
    with measure([counter], interval_s=3600) as cost:
        pass
    # the sampler never fired; the one wrap between the two readings is still added back
    assert cost.energy_j == {"meter": pytest.approx(3.0)}


def test_constant_power_gives_power_times_time():
    watts = 50.0
    counter = EnergyCounter("constant", lambda: watts * time.perf_counter())
    with measure([counter], interval_s=0.01) as cost:
        time.sleep(0.2)
    assert cost.energy_j["constant"] == pytest.approx(watts * cost.wall_s, rel=0.05)


def test_counter_that_goes_backwards_without_wrap_is_unavailable_not_zero():
    readings = iter([10.0, 4.0])
    counter = EnergyCounter("resetting", lambda: next(readings))
    with measure([counter], interval_s=3600) as cost:
        pass
    assert "resetting" not in cost.energy_j
    assert "backwards" in cost.unavailable["resetting"]
    assert cost.total_energy_j is None


def test_missing_powercap_is_reported_unavailable(tmp_path: Path):
    sources, unavailable = discover_rapl(tmp_path / "absent")
    assert sources == []
    assert "does not exist" in unavailable["rapl"]


def test_unreadable_zone_is_reported_with_reason(tmp_path: Path):
    root = tmp_path / "powercap"
    zone = _zone(root / "intel-rapl:0", "package-0", 1, 100)
    (zone / "energy_uj").unlink()
    (zone / "energy_uj").mkdir()  # reading it raises IsADirectoryError, as root chmod would not
    sources, unavailable = discover_rapl(root)
    assert sources == []
    assert "rapl:0:package-0" in unavailable


def test_measure_never_reports_zero_for_unreadable_sources(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(energy_mod, "POWERCAP_ROOT", tmp_path / "none")
    monkeypatch.setattr(energy_mod, "optional", lambda name: None)  # no nvidia-ml-py
    report = discover_sensors(tmp_path / "none")
    assert report.sources == []
    assert set(report.unavailable) == {"rapl", "nvml"}
    assert "nvidia-ml-py" in report.unavailable["nvml"]
    with measure() as cost:
        sum(range(10_000))
    assert cost.energy_j == {}
    assert cost.total_energy_j is None
    assert cost.wall_s > 0
    assert cost.cpu_s >= 0
    assert cost.to_dict()["total_energy_j"] is None


def test_measurement_is_filled_when_the_block_raises():
    counter = EnergyCounter("constant", lambda: 10.0 * time.perf_counter())
    with pytest.raises(RuntimeError), measure([counter], interval_s=0.01) as cost:
        raise RuntimeError("boom")
    assert cost.wall_s >= 0
    assert "constant" in cost.energy_j


def test_counter_that_never_advances_is_unavailable_not_zero():
    frozen = EnergyCounter("frozen", lambda: 42.0)
    with measure([frozen], interval_s=0.01) as cost:
        time.sleep(0.03)
    assert "frozen" not in cost.energy_j
    assert cost.unavailable["frozen"] == "counter did not advance during the measurement"
    assert cost.total_energy_j is None
