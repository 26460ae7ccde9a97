"""hai-photonics: thin-film optics for inverse design.

A batched, differentiable transfer-matrix simulator in torch (exact against ``tmm``), n,k data of
the OptoGPT/OptoLlama materials from the refractiveindex.info database, stacks and their tokens,
simulation presets, random data sets, a template-matching baseline and its evaluation.

>>> from hai.photonics import simulate
>>> spectra = simulate("TiO2_60 SiO2_100")
>>> bool(((spectra.R + spectra.A + spectra.T - 1).abs() < 1e-12).all())
True
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("hai-photonics")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from hai.photonics import materials, tmm
from hai.photonics.baseline import Match, TemplateBaseline
from hai.photonics.dataset import Dataset, DatasetInfo, generate_dataset, load_dataset, random_stacks
from hai.photonics.evaluate import Evaluation, evaluate, plot_designs
from hai.photonics.materials import Material, MaterialInfo, known_materials, material_info, nk, register_csv
from hai.photonics.simulate import (
    OPTOGPT,
    OPTOLLAMA,
    SimulationConfig,
    Spectra,
    get_config,
    simulate,
    simulate_ids,
)
from hai.photonics.stacks import Layer, Stack, Vocabulary
from hai.photonics.tmm import TMMResult, coherent, incoherent

__all__ = [
    "OPTOGPT",
    "OPTOLLAMA",
    "Dataset",
    "DatasetInfo",
    "Evaluation",
    "Layer",
    "Match",
    "Material",
    "MaterialInfo",
    "SimulationConfig",
    "Spectra",
    "Stack",
    "TMMResult",
    "TemplateBaseline",
    "Vocabulary",
    "__version__",
    "coherent",
    "evaluate",
    "generate_dataset",
    "get_config",
    "incoherent",
    "known_materials",
    "load_dataset",
    "material_info",
    "materials",
    "nk",
    "plot_designs",
    "random_stacks",
    "register_csv",
    "simulate",
    "simulate_ids",
    "tmm",
]
