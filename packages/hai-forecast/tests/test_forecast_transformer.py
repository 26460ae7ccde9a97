"""The token-per-step transformer: same contract and training loop as ReCycle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hai.forecast import ReCycle, StepTransformer, StepTransformerNet, load_model, synthetic_cyclic

SMALL = {"d_model": 16, "nhead": 2, "dim_feedforward": 32, "seed": 0}


@pytest.fixture(scope="module")
def y() -> pd.Series:
    return synthetic_cyclic(n_cycles=30, noise=0.03, seed=2)


def test_trains_and_lowers_the_loss(y: pd.Series) -> None:
    model = StepTransformer(epochs=6, patience=None, lr=3e-3, **SMALL).fit(y)
    assert isinstance(model.net_, StepTransformerNet)
    train_losses = [r.train_loss for r in model.history_[1:]]
    assert train_losses[-1] < train_losses[0]  # type: ignore[operator]
    f = model.predict(y)
    assert isinstance(f, pd.Series)
    assert len(f) == 24
    assert f.index[0] == y.index[-1] + pd.Timedelta("1h")
    assert np.isfinite(f.to_numpy()).all()


def test_needs_only_the_history_window(y: pd.Series) -> None:
    assert StepTransformer(history_cycles=3).min_history_cycles == 3
    assert ReCycle(history_cycles=3, baseline="last_profile").min_history_cycles == 3 + 7  # its context
    # the default, auto, before fitting: the widest candidate's context (same-type mean, k=3)
    assert ReCycle(history_cycles=3).min_history_cycles == 3 + 21


def test_tokens_are_steps_not_cycles(y: pd.Series) -> None:
    st = StepTransformer(epochs=0, **SMALL).fit(y)
    rc = ReCycle(epochs=0, **SMALL).fit(y)
    inputs_st, _ = st._inputs(st._prepare(y), np.array([24 * 14]))
    inputs_rc, _ = rc._inputs(rc._prepare(y), np.array([24 * 14]))
    assert tuple(inputs_st["history"].shape) == (1, 7 * 24, 1)  # 168 tokens of width 1
    assert tuple(inputs_rc["history"].shape) == (1, 7, 24)  # 7 tokens of width 24


def test_checkpoint_round_trip(y: pd.Series, tmp_path: pytest.TempPathFactory) -> None:
    model = StepTransformer(epochs=1, **SMALL).fit(y)
    path = tmp_path / "st.safetensors"  # type: ignore[operator]
    model.save(path)
    assert np.array_equal(load_model(path).predict(y).to_numpy(), model.predict(y).to_numpy())


def test_quantiles_for_several_columns_in_any_order() -> None:
    y = synthetic_cyclic(n_cycles=20, n_series=2, seed=4)
    model = StepTransformer(epochs=2, loss="quantile", quantiles=(0.9, 0.5, 0.1), **SMALL).fit(y)
    q = model.predict_quantiles(y)
    assert list(q.columns) == [f"{c}|q{p}" for c in ("load_0", "load_1") for p in ("0.1", "0.5", "0.9")]
    assert (q["load_1|q0.1"] <= q["load_1|q0.9"]).all()
    point = model.predict(y)
    np.testing.assert_array_equal(point["load_0"].to_numpy(), q["load_0|q0.5"].to_numpy())


@pytest.mark.parametrize(
    ("d_model", "nhead", "layers", "n_src", "n_tgt"),
    [
        (32, 1, 1, 7, 3),  # one head, few keys: attention as two matrix products
        (32, 1, 1, 7, 1),  # ReCycle's default: one target token (its self-attention is its value)
        (16, 1, 1, 40, 5),  # more keys than SHORT_ATTENTION: the fused kernel
        (24, 3, 2, 7, 3),  # several heads: the fused kernel
    ],
)
def test_lean_forward_matches_torch_transformer_with_gradients(
    d_model: int, nhead: int, layers: int, n_src: int, n_tgt: int
) -> None:
    """The training forward is ``torch.nn.Transformer``'s mathematics: same outputs and gradients."""
    import torch

    from hai.forecast.neural import SHORT_ATTENTION, one_shot_transformer, transformer_forward

    assert (n_src > SHORT_ATTENTION) == (n_src == 40)
    torch.manual_seed(0)
    net = one_shot_transformer(d_model, nhead, layers, layers, 2 * d_model, 0.0)
    src, tgt = torch.randn(5, n_src, d_model), torch.randn(5, n_tgt, d_model)
    results = []
    for forward in (lambda: net(src, tgt), lambda: transformer_forward(net, src, tgt)):
        net.zero_grad()
        net.train()
        out = forward()
        (out * torch.linspace(-1, 1, d_model)).sum().backward()
        grads = [p.grad.clone() for p in net.parameters()]  # type: ignore[union-attr]
        net.eval()
        with torch.no_grad():
            results.append((out.detach(), grads, forward()))
    (out_ref, grads_ref, eval_ref), (out, grads, eval_out) = results
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(eval_out, eval_ref, rtol=1e-5, atol=1e-5)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("nhead", "n_src", "n_tgt"), [(1, 5, 1), (1, 5, 3), (2, 5, 1), (1, 40, 1)])
def test_lean_forward_applies_attention_dropout_like_torch(nhead: int, n_src: int, n_tgt: int) -> None:
    """Attention dropout 1 drops every attention weight (deterministic), single target token included."""
    import torch

    from hai.forecast.neural import one_shot_transformer, transformer_forward

    torch.manual_seed(0)
    net = one_shot_transformer(8, nhead, 1, 1, 16, 0.0).train()
    for layer in (*net.encoder.layers, *net.decoder.layers):
        layer.self_attn.dropout = 1.0
        if hasattr(layer, "multihead_attn"):
            layer.multihead_attn.dropout = 1.0
    src, tgt = torch.randn(2, n_src, 8), torch.randn(2, n_tgt, 8)
    torch.testing.assert_close(transformer_forward(net, src, tgt), net(src, tgt), rtol=1e-6, atol=1e-6)


def test_epoch_loss_is_the_mean_over_the_shuffled_mini_batches() -> None:
    """One epoch with lr 0 leaves the net unchanged; its loss is the window mean of the batch losses."""
    import torch

    from hai.forecast import train_network

    net = torch.nn.Linear(3, 1)
    x, target = torch.randn(10, 3), torch.randn(10, 1)

    def loss_of(n: torch.nn.Module, b: dict[str, torch.Tensor]) -> torch.Tensor:
        return (n(b["x"]) - b["t"]).abs().mean()

    result = train_network(net, loss_of, {"x": x, "t": target}, None, epochs=1, batch_size=4, lr=0.0)
    with torch.no_grad():
        expected = float((net(x) - target).abs().mean())  # batches of 4, 4, 2 weighted by size
    assert result.history[-1].train_loss == pytest.approx(expected, rel=1e-6)


def test_flat_parameters_train_exactly_like_adam_over_the_separate_tensors() -> None:
    """Adam over the one flat tensor takes the same steps as ``torch.optim.Adam`` over the parameters."""
    import copy

    import torch

    from hai.forecast.training import flat_parameters

    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    net = copy.deepcopy(reference)
    x, target = torch.randn(16, 4), torch.randn(16, 2)
    ref_opt = torch.optim.Adam(reference.parameters(), lr=0.01, weight_decay=0.01)
    for _ in range(5):
        ref_opt.zero_grad()
        (reference(x) - target).square().mean().backward()
        ref_opt.step()
    with flat_parameters(net) as (params, zero_grad):
        assert len(params) == 1
        assert params[0].numel() == sum(p.numel() for p in reference.parameters())
        opt = torch.optim.Adam(params, lr=0.01, weight_decay=0.01)
        for _ in range(5):
            zero_grad()
            (net(x) - target).square().mean().backward()
            opt.step()
    for p, p_ref in zip(net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, p_ref, rtol=1e-6, atol=1e-7)
        assert p.grad is None
    # Each parameter has its own storage again (a checkpoint writer needs that).
    storages = {p.untyped_storage().data_ptr() for p in net.parameters()}
    assert len(storages) == len(list(net.parameters()))
