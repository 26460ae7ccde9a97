"""Inverse design of thin-film stacks: OptoLlama (masked diffusion), the OptoGPT baseline, and
template matching as three interchangeable designers, with training, sampling, checkpoints and
thickness refinement through the differentiable TMM.

Follows Schaible et al., arXiv 2604.01106 (``jnitzz/OptoLlama``) and Ma et al., arXiv 2304.10294
(``taigaoma1997/optogpt``); each module names what it follows.
"""

from hai.photonics.inverse.checkpoints import load_model, save_model, shipped_model_path
from hai.photonics.inverse.designers import (
    DESIGNERS,
    Designs,
    OptoGPTDesigner,
    OptoLlamaDesigner,
    TemplateDesigner,
    get_designer,
)
from hai.photonics.inverse.model import ModelConfig, OptoLlama
from hai.photonics.inverse.noise import NoiseSchedule
from hai.photonics.inverse.optogpt import OptoGPT, decode
from hai.photonics.inverse.refine import refine
from hai.photonics.inverse.sampling import sample
from hai.photonics.inverse.training import TrainConfig, train

__all__ = [
    "DESIGNERS",
    "Designs",
    "ModelConfig",
    "NoiseSchedule",
    "OptoGPT",
    "OptoGPTDesigner",
    "OptoLlama",
    "OptoLlamaDesigner",
    "TemplateDesigner",
    "TrainConfig",
    "decode",
    "get_designer",
    "load_model",
    "refine",
    "sample",
    "save_model",
    "shipped_model_path",
    "train",
]
