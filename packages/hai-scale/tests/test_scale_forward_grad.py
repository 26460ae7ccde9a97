"""Forward-mode directional derivatives and gradient estimates against backprop (torch.autograd)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hai.scale.forward_grad import (
    ForwardGradient,
    aggregate,
    directional_derivatives,
    flatten_tangents,
    forward_gradient,
    sample_tangent_matrix,
    sample_tangents,
    split_tangents,
    true_gradient,
)
from hai.shared import InputError

F64 = torch.float64


def mlp64(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)).to(F64)  # n = 24 + 15 = 39


def batch(seed: int = 0, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g, dtype=F64), torch.randint(0, 3, (n,), generator=g)


def cnn_bn_dropout(p: float) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(p),
        nn.Linear(3 * 16, 4),
    ).to(F64)


def test_directional_derivatives_equal_gradient_dot_tangent() -> None:
    model, (x, y) = mlp64(), batch()
    loss_fn = nn.CrossEntropyLoss()
    v = sample_tangents(
        [p.shape for p in model.parameters()], 7, generator=torch.Generator().manual_seed(0), dtype=F64
    )
    out = directional_derivatives(model, loss_fn, x, y, v)
    grad = true_gradient(model, loss_fn, x, y)
    assert torch.allclose(out.derivatives, flatten_tangents(v) @ grad, rtol=0, atol=1e-13)
    with torch.no_grad():
        assert float(out.loss) == pytest.approx(float(loss_fn(model(x), y)), abs=1e-15)
    assert all(p.grad is None for p in model.parameters())  # no backward pass happened


def test_batchnorm_matches_backprop_and_updates_statistics_once() -> None:
    model, reference = cnn_bn_dropout(p=0.0), cnn_bn_dropout(p=0.0)
    model.train()
    reference.train()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(16, 1, 4, 4, generator=g, dtype=F64), torch.randint(0, 4, (16,), generator=g)
    loss_fn = nn.CrossEntropyLoss()
    v = sample_tangents([p.shape for p in model.parameters()], 5, generator=g, dtype=F64)
    out = directional_derivatives(model, loss_fn, x, y, v)
    grad = true_gradient(reference, loss_fn, x, y)
    assert torch.allclose(out.derivatives, flatten_tangents(v) @ grad, rtol=0, atol=1e-12)
    bn, bn_ref = model[1], reference[1]
    assert int(bn.num_batches_tracked) == int(bn_ref.num_batches_tracked) == 1
    assert torch.allclose(bn.running_mean, bn_ref.running_mean, atol=1e-15)
    assert torch.allclose(bn.running_var, bn_ref.running_var, atol=1e-15)


def test_dropout_mask_is_shared_by_all_tangents_of_a_step() -> None:
    """Directional derivatives are linear in the tangent only if every tangent sees the same mask."""
    model = cnn_bn_dropout(p=0.5).train()
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(16, 1, 4, 4, generator=g, dtype=F64), torch.randint(0, 4, (16,), generator=g)
    shapes = [p.shape for p in model.parameters()]
    base = sample_tangent_matrix(shapes, 6, generator=g, dtype=F64)
    tangents = torch.cat([base, base[:3] + 2 * base[3:6]])  # rows 6-8 are combinations of rows 0-5
    for _ in range(3):
        d = directional_derivatives(
            model, nn.CrossEntropyLoss(), x, y, split_tangents(tangents, shapes)
        ).derivatives
        assert float((d[6:] - (d[:3] + 2 * d[3:6])).abs().max()) < 1e-12
    # and the masks change from step to step (dropout is really on)
    a = directional_derivatives(model, nn.CrossEntropyLoss(), x, y, split_tangents(base, shapes)).loss
    b = directional_derivatives(model, nn.CrossEntropyLoss(), x, y, split_tangents(base, shapes)).loss
    assert float(a) != float(b)


def test_frozen_parameters_are_left_out() -> None:
    model, (x, y) = mlp64(), batch()
    model[0].weight.requires_grad_(False)
    shapes = [p.shape for p in model.parameters() if p.requires_grad]
    v = sample_tangents(shapes, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    out = directional_derivatives(model, nn.CrossEntropyLoss(), x, y, v)
    grad = true_gradient(model, nn.CrossEntropyLoss(), x, y)
    assert grad.numel() == 39 - 20
    assert torch.allclose(out.derivatives, flatten_tangents(v) @ grad, atol=1e-13)


@pytest.mark.parametrize(
    ("distribution", "scope"),
    [
        ("normal", "global"),
        ("orthonormal", "global"),
        ("basis", "global"),
        ("rademacher", "global"),
        ("orthonormal", "per_tensor"),
        ("normal", "per_tensor"),
    ],
)
def test_projection_with_k_equal_n_is_the_backprop_gradient(distribution: str, scope: str) -> None:
    model, (x, y) = mlp64(), batch()
    loss_fn = nn.CrossEntropyLoss()
    est = forward_gradient(
        model,
        loss_fn,
        x,
        y,
        tangents=39,
        distribution=distribution,
        scope=scope,
        generator=torch.Generator().manual_seed(11),
    )
    grad = true_gradient(model, loss_fn, x, y)
    assert est.n_parameters == est.tangents_used == 39
    assert float((est.flat() - grad).abs().max()) < 1e-10
    assert [tuple(g.shape) for g in est.gradients] == [tuple(p.shape) for p in model.parameters()]


def test_projection_with_k_above_n_draws_n_tangents_and_is_exact() -> None:
    model, (x, y) = mlp64(), batch()
    est = forward_gradient(
        model, nn.CrossEntropyLoss(), x, y, tangents=100, generator=torch.Generator().manual_seed(0)
    )
    assert est.tangents_used == 39
    assert est.derivatives.shape == (39,)
    assert float((est.flat() - true_gradient(model, nn.CrossEntropyLoss(), x, y)).abs().max()) < 1e-10
    mean = forward_gradient(model, nn.CrossEntropyLoss(), x, y, tangents=100, aggregation="mean")
    assert mean.tangents_used == 100


def test_projection_residual_is_orthogonal_to_the_tangents_for_a_model() -> None:
    model, (x, y) = mlp64(), batch()
    loss_fn = nn.CrossEntropyLoss()
    v = sample_tangents(
        [p.shape for p in model.parameters()], 9, generator=torch.Generator().manual_seed(4), dtype=F64
    )
    out = directional_derivatives(model, loss_fn, x, y, v)
    flat = flatten_tangents(v)
    p = aggregate(flat, out.derivatives, "projection")
    grad = true_gradient(model, loss_fn, x, y)
    assert float((flat @ (grad - p)).abs().max()) < 1e-13
    coeff = torch.linalg.lstsq(flat.T, grad.unsqueeze(1)).solution
    assert torch.allclose(p, (flat.T @ coeff).squeeze(1), atol=1e-13)


@pytest.mark.parametrize(
    ("distribution", "unbiased"), [("normal", True), ("rademacher", True), ("basis", False)]
)
def test_mean_of_single_tangent_estimates_is_unbiased(distribution: str, unbiased: bool) -> None:
    """z-test per coordinate with a fixed seed; random standard basis vectors (E[vvᵀ] = I/n) must fail it."""
    model, (x, y) = mlp64(), batch()
    loss_fn = nn.CrossEntropyLoss()
    draws = 6000
    grad = true_gradient(model, loss_fn, x, y)
    n = grad.numel()
    v = sample_tangents(
        [p.shape for p in model.parameters()],
        draws,
        distribution=distribution,
        generator=torch.Generator().manual_seed(2024),
        dtype=F64,
    )
    flat = flatten_tangents(v)
    d = directional_derivatives(model, loss_fn, x, y, v).derivatives
    singles = d[:, None] * flat  # the single-tangent forward gradients (∇f·vᵢ) vᵢ
    estimate = aggregate(flat, d, "mean")
    assert torch.allclose(estimate, singles.mean(dim=0), atol=1e-14)
    if distribution == "normal":  # Var[(∇f·v) vⱼ] = |∇f|² + ∇fⱼ² for v ~ N(0, I)
        variance = grad.norm() ** 2 + grad**2
    else:  # Rademacher: |∇f|² - ∇fⱼ²; for the basis use the sample variance
        variance = grad.norm() ** 2 - grad**2 if distribution == "rademacher" else singles.var(dim=0)
    z = (estimate - grad) / (variance / draws).sqrt()
    if unbiased:
        assert float(z.abs().max()) < 4.5, f"max |z| = {float(z.abs().max()):.2f} over {n} coordinates"
    else:
        assert float(z.abs().max()) > 10.0
        assert torch.allclose(estimate, grad / n, atol=float(4.5 * (variance / draws).sqrt().max()))


def test_forward_gradient_fills_grad_and_accumulates_like_backward() -> None:
    model, (x, y) = mlp64(), batch()
    fg = ForwardGradient(model, nn.CrossEntropyLoss(), tangents=39, seed=3)
    loss = fg(x, y)
    assert loss.dim() == 0
    assert not loss.requires_grad
    grad = true_gradient(model, nn.CrossEntropyLoss(), x, y)
    filled = torch.cat([p.grad.reshape(-1) for p in model.parameters()])  # type: ignore[union-attr]
    assert float((filled - grad).abs().max()) < 1e-10
    fg(x, y)  # a second call adds, as backward() does
    filled2 = torch.cat([p.grad.reshape(-1) for p in model.parameters()])  # type: ignore[union-attr]
    assert float((filled2 - 2 * grad).abs().max()) < 1e-10
    assert fg.last_estimate_ is not None
    assert fg.last_estimate_.tangents_used == 39


def test_sgd_step_with_k_equal_n_matches_backprop_step() -> None:
    model, reference = mlp64(), mlp64()
    x, y = batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    opt_ref = torch.optim.SGD(reference.parameters(), lr=0.5)
    fg = ForwardGradient(model, nn.CrossEntropyLoss(), tangents=39, distribution="orthonormal", seed=0)
    for _ in range(3):
        opt.zero_grad()
        fg(x, y)
        opt.step()
        opt_ref.zero_grad()
        nn.CrossEntropyLoss()(reference(x), y).backward()
        opt_ref.step()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(p, q, rtol=0, atol=1e-10)


def test_seeded_estimates_are_reproducible() -> None:
    x, y = batch()
    a = ForwardGradient(mlp64(), nn.CrossEntropyLoss(), tangents=4, seed=7).estimate(x, y)
    b = ForwardGradient(mlp64(), nn.CrossEntropyLoss(), tangents=4, seed=7).estimate(x, y)
    c = ForwardGradient(mlp64(), nn.CrossEntropyLoss(), tangents=4, seed=8).estimate(x, y)
    assert torch.equal(a.flat(), b.flat())
    assert not torch.equal(a.flat(), c.flat())


def test_training_with_forward_gradients_lowers_the_loss() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))
    x = torch.randn(128, 5)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0], [1.5]]) + 0.1
    loss_fn = nn.MSELoss()
    fg = ForwardGradient(model, loss_fn, tangents=8, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    with torch.no_grad():
        start = float(loss_fn(model(x), y))
    for _ in range(150):
        opt.zero_grad()
        fg(x, y)
        opt.step()
    with torch.no_grad():
        assert float(loss_fn(model(x), y)) < 0.3 * start


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_tangent_count(k: object) -> None:
    with pytest.raises(InputError, match="at least 1"):
        ForwardGradient(mlp64(), nn.CrossEntropyLoss(), tangents=k)  # type: ignore[arg-type]
    x, y = batch()
    with pytest.raises(InputError, match="at least 1"):
        forward_gradient(mlp64(), nn.CrossEntropyLoss(), x, y, tangents=k)  # type: ignore[arg-type]


def test_model_without_trainable_parameters() -> None:
    with pytest.raises(InputError, match="no trainable parameters"):
        ForwardGradient(nn.ReLU(), nn.MSELoss())
    frozen = nn.Linear(3, 1).requires_grad_(False)
    with pytest.raises(InputError, match="no trainable parameters"):
        forward_gradient(frozen, nn.MSELoss(), torch.randn(4, 3), torch.randn(4, 1))


def test_loss_that_is_not_a_scalar() -> None:
    model, (x, _) = mlp64(), batch()
    fg = ForwardGradient(model, nn.MSELoss(reduction="none"), tangents=2, seed=0)
    with pytest.raises(InputError, match="scalar"):
        fg(x, torch.zeros(32, 3, dtype=F64))
    with pytest.raises(InputError, match="scalar"):
        true_gradient(model, nn.MSELoss(reduction="none"), x, torch.zeros(32, 3, dtype=F64))
    assert all(p.grad is None for p in model.parameters())


def test_other_bad_options() -> None:
    model = mlp64()
    with pytest.raises(InputError, match="aggregation"):
        ForwardGradient(model, nn.MSELoss(), aggregation="max")
    with pytest.raises(InputError, match="distribution"):
        ForwardGradient(model, nn.MSELoss(), distribution="uniform")
    with pytest.raises(InputError, match="seed"):
        ForwardGradient(model, nn.MSELoss(), seed=-1)
    with pytest.raises(InputError, match="callable"):
        ForwardGradient(model, "mse")  # type: ignore[arg-type]
    x, y = batch()
    with pytest.raises(InputError, match="expected"):
        directional_derivatives(model, nn.CrossEntropyLoss(), x, y, [torch.zeros(2, 3)] * 4)
