"""The classifier trained by forward gradients, the data sets and the models."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np
import pytest
import torch

from hai.scale import (
    ForwardGradientClassifier,
    digits_classification,
    load_classification,
    mlp,
    small_cnn,
    synthetic_classification,
)
from hai.shared import InputError, MissingPackageError


def test_synthetic_data_is_seeded_split_and_standardised() -> None:
    a = synthetic_classification(400, n_features=6, n_classes=3, seed=5)
    b = synthetic_classification(400, n_features=6, n_classes=3, seed=5)
    c = synthetic_classification(400, n_features=6, n_classes=3, seed=6)
    assert torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.x_train, c.x_train)
    assert a.x_train.shape == (300, 6)
    assert a.x_test.shape == (100, 6)
    assert torch.allclose(a.x_train.mean(dim=0), torch.zeros(6), atol=1e-5)
    assert torch.allclose(a.x_train.std(dim=0, correction=0), torch.ones(6), atol=1e-5)
    assert set(a.y_train.tolist()) == {0, 1, 2}
    assert a.n_classes == 3
    assert a.n_features == 6


def test_digits_data() -> None:
    pytest.importorskip("sklearn")
    data = digits_classification(seed=0)
    assert data.x_train.shape[0] + data.x_test.shape[0] == 1797
    assert data.n_features == 64
    assert data.image_shape == (8, 8)
    assert data.n_classes == 10
    assert set(data.y_test.tolist()) <= set(range(10))


def test_digits_without_scikit_learn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_sklearn(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    monkeypatch.setattr("importlib.import_module", lambda name, *a: no_sklearn(name))
    with pytest.raises(MissingPackageError, match=r"hai-scale\[digits\]"):
        digits_classification()


def test_unknown_data_set_and_bad_sizes() -> None:
    with pytest.raises(InputError, match="unknown data set"):
        load_classification("mnist")
    with pytest.raises(InputError):
        synthetic_classification(3, n_classes=4)
    with pytest.raises(InputError, match="test_fraction"):
        synthetic_classification(test_fraction=1.5)


def test_models_parameter_counts_and_outputs() -> None:
    net = mlp(16, 4, hidden=(32, 8))
    assert sum(p.numel() for p in net.parameters()) == 16 * 32 + 32 + 32 * 8 + 8 + 8 * 4 + 4
    assert net(torch.zeros(5, 16)).shape == (5, 4)
    cnn = small_cnn(10)
    assert cnn(torch.zeros(3, 64)).shape == (3, 10)
    with pytest.raises(InputError):
        mlp(4, 0)
    with pytest.raises(InputError):
        small_cnn(10, image_shape=(1, 8))


def test_forward_gradient_training_lowers_the_loss_and_predicts() -> None:
    data = synthetic_classification(600, n_features=8, n_classes=3, seed=0)
    clf = ForwardGradientClassifier(tangents=8, epochs=8, hidden=(16,), lr=0.03, seed=0)
    assert clf.fit(data.x_train, data.y_train, validation=(data.x_test, data.y_test)) is clf
    losses = [h.train_loss for h in clf.history_]
    assert losses[-1] < 0.5 * losses[0]
    assert len(clf.history_) == 8
    assert clf.n_steps_ == 8 * 8
    assert clf.history_[-1].test_accuracy is not None
    assert clf.history_[-1].test_accuracy > 0.8
    proba = clf.predict_proba(data.x_test)
    assert proba.shape == (150, 3)
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert clf.score(data.x_test, data.y_test) == pytest.approx(clf.history_[-1].test_accuracy)
    assert clf.fit_cost_.wall_s > 0
    assert clf.n_parameters_ == 8 * 16 + 16 + 16 * 3 + 3


def test_same_seed_same_model_and_labels_are_kept() -> None:
    data = synthetic_classification(300, n_features=4, n_classes=2, seed=1)
    labels = np.where(data.y_train.numpy() == 0, 10, 20)
    a = ForwardGradientClassifier(tangents=2, epochs=2, seed=3).fit(data.x_train.numpy(), labels)
    b = ForwardGradientClassifier(tangents=2, epochs=2, seed=3).fit(data.x_train.numpy(), labels)
    for p, q in zip(a.model_.parameters(), b.model_.parameters(), strict=True):
        assert torch.equal(p, q)
    assert set(np.unique(a.predict(data.x_test))) <= {10, 20}


def test_backprop_anchor_and_cnn() -> None:
    pytest.importorskip("sklearn")
    data = digits_classification(seed=0)
    bp = ForwardGradientClassifier(gradient="backprop", epochs=2, seed=0).fit(data.x_train, data.y_train)
    assert bp.score(data.x_test, data.y_test) > 0.85
    cnn = ForwardGradientClassifier(architecture="cnn", tangents=4, epochs=1, seed=0)
    cnn.fit(data.x_train[:256], data.y_train[:256])
    assert cnn.n_parameters_ == 3818


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tangents": 0},
        {"aggregation": "max"},
        {"gradient": "zeroth"},
        {"epochs": 0},
        {"lr": -1.0},
        {"optimizer": "lbfgs"},
        {"architecture": "vit"},
        {"seed": -2},
        {"batch_size": 0},
    ],
)
def test_bad_settings_are_input_errors(kwargs: dict[str, Any]) -> None:
    data = synthetic_classification(100, n_features=4, n_classes=2)
    with pytest.raises(InputError):
        ForwardGradientClassifier(**kwargs).fit(data.x_train, data.y_train)


def test_bad_data_and_unfitted_use() -> None:
    with pytest.raises(InputError, match="not fitted"):
        ForwardGradientClassifier().predict(np.zeros((2, 3)))
    with pytest.raises(InputError, match="single class"):
        ForwardGradientClassifier(epochs=1).fit(np.zeros((4, 2)), np.ones(4))
    with pytest.raises(InputError, match=r"\(N, d\)"):
        ForwardGradientClassifier(epochs=1).fit(np.zeros((4, 2)), np.ones(3))
    with pytest.raises(InputError, match="square"):
        ForwardGradientClassifier(architecture="cnn", epochs=1).fit(np.zeros((4, 5)), np.arange(4) % 2)
