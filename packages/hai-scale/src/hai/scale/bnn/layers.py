"""Mean-field Gaussian variational layers, their priors, the analytic KL and model conversion.

Each weight w has a posterior N(μ, σ²) with σ = softplus(ρ), trained by the reparameterisation
trick: w = μ + σ·ε. Three gradient estimators are offered:

- ``"reparam"``: one weight sample per forward pass (shared by the whole batch);
- ``"local"``: local reparameterisation, noise on the pre-activations (Kingma et al. 2015);
- ``"flipout"``: one weight perturbation per pass, decorrelated per example by random signs
  (Wen et al. 2018).

Where the noise comes from is explicit. Without a context, layers draw from torch's global
generator like any torch layer. Inside :func:`weight_sample` every layer draws from a generator
keyed by (seed, name, step, sample index, layer index) only, and per-example noise is drawn for
the *global* batch and sliced to the rows this process holds, so a weight sample is the same
whichever process evaluates it and whatever part of the batch it sees.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hai.shared import InputError, RngStreams

ESTIMATORS: tuple[str, ...] = ("reparam", "local", "flipout")


@dataclass(frozen=True)
class GaussianPrior:
    """An isotropic Gaussian prior N(mean, std²) on every weight and bias of a layer.

    >>> GaussianPrior(std=0.5)
    GaussianPrior(mean=0.0, std=0.5)
    """

    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise InputError(f"the prior needs a finite mean and a positive std, got {self}")


@dataclass(frozen=True)
class NoiseKey:
    """Where a layer's noise comes from: (seed, name, step, sample) plus the rows this process holds.

    ``rows`` are the rows of the global batch (of ``batch_size`` rows) that the layer sees.
    """

    streams: RngStreams
    name: str
    step: int
    sample: int
    rows: slice | None = None
    batch_size: int | None = None

    def generator(self, layer_index: int, device: torch.device) -> torch.Generator:
        return self.streams.torch(self.name, self.step, self.sample, layer_index, device=device)


def gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor, prior: GaussianPrior) -> torch.Tensor:
    """Σ KL(N(μ, σ²) ‖ N(m, s²)) = Σ [log(s/σ) + (σ² + (μ − m)²)/(2s²) − 1/2], analytic.

    >>> float(gaussian_kl(torch.zeros(3), torch.ones(3), GaussianPrior()))
    0.0
    """
    var_ratio = (sigma / prior.std) ** 2
    diff = ((mu - prior.mean) / prior.std) ** 2
    return 0.5 * (var_ratio + diff - 1.0 - torch.log(var_ratio)).sum()


def _rho_for(std: float) -> float:
    """The ρ with softplus(ρ) = std."""
    return std + math.log(-math.expm1(-std))


class BayesianLayer(nn.Module, ABC):
    """Common machinery: posterior parameters, KL, and the noise source."""

    weight_mu: nn.Parameter
    weight_rho: nn.Parameter
    bias_mu: nn.Parameter | None
    bias_rho: nn.Parameter | None

    def __init__(
        self,
        weight_shape: tuple[int, ...],
        bias: bool,
        *,
        prior: GaussianPrior | None = None,
        posterior_std: float = 1e-2,
        estimator: str = "reparam",
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if estimator not in ESTIMATORS:
            raise InputError(f"unknown estimator {estimator!r}", hint=f"use one of {', '.join(ESTIMATORS)}")
        if not posterior_std > 0:
            raise InputError(f"posterior_std must be positive, got {posterior_std}")
        self.prior = prior if prior is not None else GaussianPrior()
        self.estimator = estimator
        self.posterior_std = float(posterior_std)
        kw: dict[str, Any] = {"device": device, "dtype": dtype}
        rho = _rho_for(self.posterior_std)
        self.weight_mu = nn.Parameter(torch.empty(weight_shape, **kw))
        self.weight_rho = nn.Parameter(torch.full(weight_shape, rho, **kw))
        if bias:
            self.bias_mu = nn.Parameter(torch.empty(weight_shape[0], **kw))
            self.bias_rho = nn.Parameter(torch.full((weight_shape[0],), rho, **kw))
        else:
            self.register_parameter("bias_mu", None)
            self.register_parameter("bias_rho", None)
        self.noise: NoiseKey | None = None
        self.layer_index = 0

    def _init_mu(self) -> None:
        nn.init.kaiming_uniform_(self.weight_mu, a=math.sqrt(5))
        if self.bias_mu is not None:
            fan_in = self.weight_mu[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(self.bias_mu, -bound, bound)

    @property
    def weight_sigma(self) -> torch.Tensor:
        return F.softplus(self.weight_rho)

    @property
    def bias_sigma(self) -> torch.Tensor | None:
        return None if self.bias_rho is None else F.softplus(self.bias_rho)

    def kl(self) -> torch.Tensor:
        """Analytic KL divergence of this layer's posterior from its prior."""
        total = gaussian_kl(self.weight_mu, self.weight_sigma, self.prior)
        if self.bias_mu is not None and self.bias_rho is not None:
            total = total + gaussian_kl(self.bias_mu, F.softplus(self.bias_rho), self.prior)
        return total

    # -- noise ------------------------------------------------------------------------------
    def _generator(self) -> torch.Generator | None:
        if self.noise is None:
            return None
        return self.noise.generator(self.layer_index, self.weight_mu.device)

    def _randn(self, shape: tuple[int, ...], gen: torch.Generator | None) -> torch.Tensor:
        mu = self.weight_mu
        return torch.randn(shape, generator=gen, device=mu.device, dtype=mu.dtype)

    def _row_noise(
        self, shape: tuple[int, ...], gen: torch.Generator | None, signs: bool = False
    ) -> torch.Tensor:
        """Per-example noise of ``shape`` (rows first), drawn for the global batch and sliced."""
        rows = shape[0]
        key = self.noise
        full = shape
        if key is not None and key.rows is not None and key.batch_size is not None:
            full = (key.batch_size, *shape[1:])
        if signs:
            draw = torch.randint(0, 2, full, generator=gen, device=self.weight_mu.device)
            noise = (draw * 2 - 1).to(self.weight_mu.dtype)
        else:
            noise = self._randn(full, gen)
        if full is not shape and key is not None and key.rows is not None:
            noise = noise[key.rows]
        if noise.shape[0] != rows:
            raise InputError(
                f"the noise context says {noise.shape[0]} rows, but the layer got {rows}",
                hint="pass rows/batch_size that match the batch to weight_sample()",
            )
        return noise

    def sample_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One weight (and bias) sample w = μ + σ·ε from the current noise source."""
        gen = self._generator()
        weight = self.weight_mu + self.weight_sigma * self._randn(tuple(self.weight_mu.shape), gen)
        bias = None
        if self.bias_mu is not None and self.bias_rho is not None:
            bias = self.bias_mu + F.softplus(self.bias_rho) * self._randn(tuple(self.bias_mu.shape), gen)
        return weight, bias

    @abstractmethod
    def _op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The deterministic operation (linear map or convolution) with the given weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.estimator == "reparam":
            weight, bias = self.sample_weight()
            return self._op(x, weight, bias)
        gen = self._generator()
        if self.estimator == "local":
            mean = self._op(x, self.weight_mu, self.bias_mu)
            bias_var = None if self.bias_rho is None else F.softplus(self.bias_rho) ** 2
            var = self._op(x * x, self.weight_sigma**2, bias_var)
            return mean + torch.sqrt(var + 1e-20) * self._row_noise(tuple(mean.shape), gen)
        # flipout: one perturbation ΔW = σ·ε per pass, sign-flipped per example
        delta = self.weight_sigma * self._randn(tuple(self.weight_mu.shape), gen)
        bias = self.bias_mu
        if self.bias_mu is not None and self.bias_rho is not None:
            bias = self.bias_mu + F.softplus(self.bias_rho) * self._randn(tuple(self.bias_mu.shape), gen)
        mean = self._op(x, self.weight_mu, bias)
        sign_in = self._row_noise(tuple(x.shape), gen, signs=True)
        perturbed = self._op(x * sign_in, delta, None)
        sign_out = self._row_noise(tuple(perturbed.shape), gen, signs=True)
        return mean + perturbed * sign_out


class BayesLinear(BayesianLayer):
    """A mean-field Gaussian ``nn.Linear``.

    >>> layer = BayesLinear(4, 2)
    >>> tuple(layer(torch.randn(3, 4)).shape), float(layer.kl().detach()) > 0
    ((3, 2), True)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        prior: GaussianPrior | None = None,
        posterior_std: float = 1e-2,
        estimator: str = "reparam",
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            (out_features, in_features),
            bias,
            prior=prior,
            posterior_std=posterior_std,
            estimator=estimator,
            device=device,
            dtype=dtype,
        )
        self.in_features, self.out_features = in_features, out_features
        self._init_mu()

    def _op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, weight, bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, estimator={self.estimator!r}, prior={self.prior}"


class BayesConv2d(BayesianLayer):
    """A mean-field Gaussian ``nn.Conv2d`` (zero padding).

    >>> conv = BayesConv2d(1, 4, 3, padding=1, estimator="flipout")
    >>> tuple(conv(torch.randn(2, 1, 8, 8)).shape)
    (2, 4, 8, 8)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        prior: GaussianPrior | None = None,
        posterior_std: float = 1e-2,
        estimator: str = "reparam",
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        if in_channels % groups or out_channels % groups:
            raise InputError(f"channels {in_channels}→{out_channels} are not divisible by groups={groups}")
        super().__init__(
            (out_channels, in_channels // groups, *k),
            bias,
            prior=prior,
            posterior_std=posterior_std,
            estimator=estimator,
            device=device,
            dtype=dtype,
        )
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, k
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self._init_mu()

    def _op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, estimator={self.estimator!r}, prior={self.prior}"
        )


def bayesian_layers(model: nn.Module) -> list[BayesianLayer]:
    """The Bayesian layers of ``model`` in ``model.modules()`` order."""
    return [m for m in model.modules() if isinstance(m, BayesianLayer)]


def kl_divergence(model: nn.Module) -> torch.Tensor:
    """The summed analytic KL of all Bayesian layers of ``model`` (0 for a model without any)."""
    layers = bayesian_layers(model)
    if not layers:
        return torch.zeros(())
    total = layers[0].kl()
    for layer in layers[1:]:
        total = total + layer.kl()
    return total


def to_bayesian(
    model: nn.Module,
    *,
    prior: GaussianPrior | None = None,
    posterior_std: float = 1e-2,
    estimator: str = "reparam",
    inplace: bool = False,
) -> nn.Module:
    """The Bayesian counterpart of ``model``: every ``nn.Linear``/``nn.Conv2d`` becomes mean-field Gaussian.

    Posterior means start at the layer's current weights (so a trained network converts into a
    posterior centred on it), posterior standard deviations at ``posterior_std``. Other modules
    (Bayesian layers included) are kept as they are. A copy is converted unless ``inplace``.

    >>> net = to_bayesian(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)))
    >>> [type(m).__name__ for m in net]
    ['BayesLinear', 'ReLU', 'BayesLinear']
    """
    if estimator not in ESTIMATORS:
        raise InputError(f"unknown estimator {estimator!r}", hint=f"use one of {', '.join(ESTIMATORS)}")
    if not inplace:
        model = copy.deepcopy(model)
    kw: dict[str, Any] = {"prior": prior, "posterior_std": posterior_std, "estimator": estimator}
    converted = 0

    def convert(parent: nn.Module) -> None:
        nonlocal converted
        for name, child in parent.named_children():
            new: BayesianLayer | None = None
            if isinstance(child, nn.Linear):
                p = child.weight
                new = BayesLinear(
                    child.in_features,
                    child.out_features,
                    child.bias is not None,
                    device=p.device,
                    dtype=p.dtype,
                    **kw,
                )
            elif isinstance(child, nn.Conv2d):
                if child.padding_mode != "zeros" or isinstance(child.padding, str):
                    raise InputError(
                        f"{name}: only Conv2d with zero padding given as numbers can be converted",
                        hint="use padding_mode='zeros' and integer padding",
                    )
                p = child.weight
                new = BayesConv2d(
                    child.in_channels,
                    child.out_channels,
                    child.kernel_size,  # type: ignore[arg-type]
                    child.stride,  # type: ignore[arg-type]
                    child.padding,  # type: ignore[arg-type]
                    child.dilation,  # type: ignore[arg-type]
                    child.groups,
                    child.bias is not None,
                    device=p.device,
                    dtype=p.dtype,
                    **kw,
                )
            if new is None:
                convert(child)
                continue
            weight, bias = child.weight, child.bias
            assert isinstance(weight, torch.Tensor)
            with torch.no_grad():
                new.weight_mu.copy_(weight)
                if isinstance(bias, torch.Tensor) and new.bias_mu is not None:
                    new.bias_mu.copy_(bias)
            setattr(parent, name, new)
            converted += 1

    if isinstance(model, (nn.Linear, nn.Conv2d)):
        wrapper = nn.Sequential(model)
        convert(wrapper)
        return wrapper[0]
    convert(model)
    if converted == 0 and not bayesian_layers(model):
        raise InputError("the model has no nn.Linear or nn.Conv2d layer to make Bayesian")
    return model


@contextmanager
def weight_sample(
    model: nn.Module,
    *,
    seed: int,
    step: int,
    sample: int,
    rows: slice | None = None,
    batch_size: int | None = None,
    name: str = "bnn-noise",
) -> Iterator[None]:
    """Within the block, every Bayesian layer of ``model`` draws the noise of weight sample ``sample``.

    The noise depends only on (seed, name, step, sample, layer index). ``rows``/``batch_size``
    say which rows of a global batch of ``batch_size`` rows the model will see (for the
    per-example noise of ``"local"`` and ``"flipout"``); leave them out when it sees all of it.

    >>> net = to_bayesian(nn.Linear(3, 2))
    >>> x = torch.randn(4, 3)
    >>> with weight_sample(net, seed=0, step=5, sample=1):
    ...     a = net(x)
    >>> with weight_sample(net, seed=0, step=5, sample=1):
    ...     b = net(x)
    >>> bool(torch.equal(a, b))
    True
    """
    if (rows is None) != (batch_size is None):
        raise InputError("give both rows and batch_size, or neither")
    key = NoiseKey(RngStreams(seed), name, int(step), int(sample), rows, batch_size)
    layers = bayesian_layers(model)
    previous = [layer.noise for layer in layers]
    for index, layer in enumerate(layers):
        layer.noise = key
        layer.layer_index = index
    try:
        yield
    finally:
        for layer, old in zip(layers, previous, strict=True):
            layer.noise = old
