"""The forecaster zoo: transformer forecasters on the long-horizon protocol, one model per module.

=================  ==================================================  ===========================
name               model                                               module
=================  ==================================================  ===========================
``transformer``    the vanilla token-per-step encoder–decoder          :mod:`hai.forecast.transformer`
``recycle``        ReCycle (cycle tokens, residual over a baseline)    :mod:`hai.forecast.recycle`
``informer``       Informer (ProbSparse attention, distilling)         :mod:`.informer`
``autoformer``     Autoformer (decomposition, auto-correlation)        :mod:`.autoformer`
``fedformer``      FEDformer (frequency enhanced blocks)               :mod:`.fedformer`
``crossformer``    Crossformer (DSW embedding, two-stage attention)    :mod:`.crossformer`
``patchtst``       PatchTST (patches, channel independence)            :mod:`.patchtst`
=================  ==================================================  ===========================

Every model is a :class:`hai.forecast.NeuralForecaster` (fit/predict/predict_at, early
stopping on a validation tail, scaler fitted on the training part); :func:`make_forecaster`
builds one by name. :mod:`.protocol` has the 7:1:2 split, the test windows, MSE/MAE in scaled
units and the seasonal naive reference; :mod:`.data` the multivariate series.
"""

from __future__ import annotations

from typing import Any

from hai.forecast.neural import NeuralForecaster
from hai.forecast.recycle import ReCycle
from hai.forecast.transformer import StepTransformer
from hai.forecast.zoo.autoformer import Autoformer
from hai.forecast.zoo.base import WindowForecaster
from hai.forecast.zoo.crossformer import Crossformer
from hai.forecast.zoo.fedformer import FEDformer
from hai.forecast.zoo.informer import Informer
from hai.forecast.zoo.patchtst import PatchTST
from hai.shared import InputError

ZOO: dict[str, type[NeuralForecaster]] = {
    "transformer": StepTransformer,
    "recycle": ReCycle,
    "informer": Informer,
    "autoformer": Autoformer,
    "fedformer": FEDformer,
    "crossformer": Crossformer,
    "patchtst": PatchTST,
}

#: Small configurations (seconds per epoch on one CPU thread) the study and the demo use.
SMALL: dict[str, dict[str, Any]] = {
    "transformer": {"d_model": 16, "nhead": 2, "dim_feedforward": 32},
    "recycle": {"d_model": 32, "nhead": 2, "dim_feedforward": 64},
    "informer": {"d_model": 16, "nhead": 2, "num_encoder_layers": 2, "dim_feedforward": 32},
    "autoformer": {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "dim_feedforward": 32},
    "fedformer": {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "dim_feedforward": 32, "modes": 16},
    "crossformer": {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "dim_feedforward": 32},
    "patchtst": {"d_model": 16, "nhead": 2, "num_encoder_layers": 1, "dim_feedforward": 32},
}


def make_forecaster(name: str, *, small: bool = False, **params: Any) -> NeuralForecaster:
    """The zoo model ``name`` with ``params`` (``small``: start from :data:`SMALL`'s sizes).

    The existing transformer and ReCycle get the protocol's MSE loss unless ``loss`` is given;
    ReCycle the fixed ``last_profile`` base unless ``baseline`` is given (the study prunes one
    network).

    >>> make_forecaster("patchtst", history_cycles=4, horizon_cycles=8).horizon
    192
    """
    key = str(name).strip().lower()
    if key not in ZOO:
        raise InputError(f"unknown zoo model {name!r}", hint=f"use one of {', '.join(ZOO)}")
    kwargs: dict[str, Any] = dict(SMALL[key]) if small else {}
    if key in ("transformer", "recycle"):
        kwargs.setdefault("loss", "mse")
    if key == "recycle":  # one network to prune (ReCycle's default, auto, fits one per candidate)
        kwargs.setdefault("baseline", "last_profile")
    kwargs.update(params)
    return ZOO[key](**kwargs)


__all__ = [
    "SMALL",
    "ZOO",
    "Autoformer",
    "Crossformer",
    "FEDformer",
    "Informer",
    "PatchTST",
    "WindowForecaster",
    "make_forecaster",
]
