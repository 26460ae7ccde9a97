import random
import sys

import numpy as np
import pytest
import torch

from hai.shared import DeviceError, RngStreams, available_devices, resolve_device, seed_everything


def test_cpu_and_auto_resolve_to_real_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize("spec", ["tpu", "cuda:x", "gpu0", "", "auto:1", 3, None])
def test_unknown_device_is_a_clear_error(spec):
    with pytest.raises(DeviceError, match="device"):
        resolve_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_unavailable_cuda_says_so():
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="not available"):
        resolve_device("cuda:1")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_index_past_the_last_gpu_is_an_error():
    assert resolve_device("cuda:0").type == "cuda"
    with pytest.raises(DeviceError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_available_devices_start_with_cpu():
    devices = available_devices()
    assert devices[0] == "cpu"
    assert (any(d.startswith("cuda") for d in devices)) == torch.cuda.is_available()


def test_seed_everything_reproduces_python_numpy_and_torch():
    def draw():
        legacy = np.random.rand()  # noqa: NPY002 - the global RNG is what is under test
        return random.random(), legacy, torch.rand(1).item()

    seed_everything(123)
    first = draw()
    seed_everything(123)
    assert draw() == first
    seed_everything(124)
    assert draw() != first
    with pytest.raises(ValueError, match="non-negative"):
        seed_everything(-1)


def test_named_streams_are_reproducible_and_independent():
    a1 = RngStreams(5).numpy("noise").normal(size=4)
    streams = RngStreams(5)
    streams.numpy("other").normal(size=100)  # using another stream must not shift "noise"
    a2 = streams.numpy("noise").normal(size=4)
    np.testing.assert_array_equal(a1, a2)
    assert not np.allclose(a1, RngStreams(5).numpy("dropout").normal(size=4))
    assert not np.allclose(a1, RngStreams(6).numpy("noise").normal(size=4))
    # keys (step, sample) give distinct, reproducible sub-streams
    assert RngStreams(5).entropy("noise", 1, 2) == RngStreams(5).entropy("noise", 1, 2)
    assert RngStreams(5).entropy("noise", 1, 2) != RngStreams(5).entropy("noise", 2, 1)


def test_torch_streams_are_reproducible():
    g1 = RngStreams(9).torch("init")
    g2 = RngStreams(9).torch("init")
    assert torch.equal(torch.randn(5, generator=g1), torch.randn(5, generator=g2))


def test_without_torch_the_core_still_works_and_says_what_to_install(monkeypatch):
    from hai.shared import MissingPackageError
    from hai.shared.info import collect_info, format_info

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(MissingPackageError, match=r"hai-shared\[torch\]"):
        resolve_device("cpu")
    assert available_devices() == ["cpu"]
    info = collect_info()
    assert info.torch is None
    assert "torch:    not installed" in format_info(info)
    seed_everything(1)  # seeds python and numpy without torch


def test_torch_threads_sets_and_restores_the_thread_count_even_on_error():
    import pytest
    import torch

    from hai.shared import torch_threads

    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(other):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with torch_threads(np.int64(other)):  # any integer type
        assert torch.get_num_threads() == other
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"), torch_threads(bad):  # type: ignore[arg-type]
            pass
