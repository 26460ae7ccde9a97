"""PETNet.fit_encodings: the local network trained from sparse encodings equals fit on dense ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hai.pet import CylinderSource, PETNet, encode_spikes, get_scanner, simulate
from hai.shared import InputError


def _encodings() -> tuple[list, int]:
    scanner = get_scanner("clinical", rings=1)
    source = [CylinderSource(1.5e9, radius_mm=100.0, length_mm=scanner.axial_length_mm)]
    opts = {
        "n_crystals": scanner.n_crystals,
        "crystals_per_sector": scanner.crystals_per_sector,
        "crystals_per_ring": scanner.crystals_per_ring,
        "bin_ns": 0.5,
        "n_steps": 16,
    }
    encs = [
        encode_spikes(simulate(scanner, source, seconds=s, seed=k).singles, **opts)
        for k, s in ((0, 4e-5), (1, 3e-5))
    ]
    return encs, scanner.n_crystals


def _net(n: int) -> PETNet:
    return PETNet(
        n, local=True, crystals_per_ring=240, fan=20, init_scale=2.0, lr=5e-3, epochs=2, batch_size=64, seed=3
    )


def test_fit_encodings_equals_fit_on_the_stacked_dense_samples() -> None:
    encs, n = _encodings()
    x = np.concatenate([e.dense(e.nonempty_samples) for e in encs])
    y = np.concatenate([e.labels_dense(e.nonempty_samples) for e in encs])
    assert y.sum() > 20  # there are targets to learn
    dense = _net(n).fit(x, y)
    sparse = _net(n).fit_encodings(encs)
    assert sparse.pos_weight_ == dense.pos_weight_
    assert [(r.train_loss, r.val_loss) for r in sparse.history_] == [
        (r.train_loss, r.val_loss) for r in dense.history_
    ]
    a, b = dense.module_.state_dict(), sparse.module_.state_dict()
    assert set(a) == set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    np.testing.assert_array_equal(sparse.predict(x[:50]), dense.predict(x[:50]))


def test_fit_encodings_refuses_what_it_cannot_train() -> None:
    encs, n = _encodings()
    with pytest.raises(InputError, match="local=True"):
        PETNet(n).fit_encodings(encs)
    with pytest.raises(InputError, match="at least one encoding"):
        _net(n).fit_encodings([])
    with pytest.raises(InputError, match="channels"):
        _net(n + 1).fit_encodings(encs)
