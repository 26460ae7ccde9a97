"""Thin-film stacks and their token form (``"TiO2_60"`` = 60 nm of TiO2), as in OptoGPT/OptoLlama.

A :class:`Stack` lists its layers from the top (the incidence side) down. A
:class:`Vocabulary` maps the special tokens and every material × thickness token to an integer id;
sequences have a fixed length (20 layers + EOS by default), ended by ``<EOS>`` and padded with
``<PAD>``.

>>> stack = Stack.parse("TiO2_60 SiO2_100")
>>> vocab = Vocabulary()
>>> ids = vocab.encode(stack)
>>> vocab.decode(ids) == stack
True
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hai.photonics.materials import LAYER_MATERIALS, known_materials
from hai.shared import InputError

__all__ = ["BOS", "EOS", "MASK", "PAD", "SPECIAL_TOKENS", "Layer", "Stack", "Vocabulary"]

PAD, MASK, EOS, BOS = "<PAD>", "<MSK>", "<EOS>", "<BOS>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, MASK, EOS, BOS)
DEFAULT_THICKNESSES_NM: tuple[int, ...] = tuple(range(10, 501, 10))
_TOKEN = re.compile(r"^(?P<material>[^_\s]+)_(?P<thickness>[^_\s]+)$")


@dataclass(frozen=True)
class Layer:
    """One layer: a material name and a thickness in nanometres."""

    material: str
    thickness_nm: float

    def __post_init__(self) -> None:
        if not isinstance(self.material, str) or not self.material:
            raise InputError(f"a layer needs a material name, got {self.material!r}")
        t = float(self.thickness_nm)
        if math.isnan(t) or math.isinf(t) or t < 0:
            raise InputError(
                f"layer {self.material}: thickness must be a finite number >= 0 nm, got {self.thickness_nm!r}"
            )

    @property
    def token(self) -> str:
        t = float(self.thickness_nm)
        return f"{self.material}_{int(t) if t.is_integer() else t:g}"


@dataclass(frozen=True)
class Stack:
    """Layers from the top (incidence side) down.

    >>> Stack.parse("TiO2_60 SiO2_100").thicknesses_nm
    [60.0, 100.0]
    """

    layers: tuple[Layer, ...]

    @classmethod
    def parse(cls, text: str | Sequence[str]) -> Stack:
        """A stack from tokens: ``"TiO2_60 SiO2_100"`` or ``["TiO2_60", "SiO2_100"]``.

        Special tokens: ``<BOS>`` is skipped, ``<EOS>`` ends the stack, ``<PAD>`` and ``<MSK>``
        are errors.
        """
        tokens = text.replace(",", " ").split() if isinstance(text, str) else list(text)
        layers = []
        for token in tokens:
            if token == BOS:
                continue
            if token == EOS:
                break
            if token in SPECIAL_TOKENS:
                raise InputError(f"the token {token} cannot appear in a stack")
            match = _TOKEN.match(token)
            if match is None:
                raise InputError(
                    f"cannot read the layer token {token!r}",
                    hint="write layers as MATERIAL_THICKNESS, e.g. TiO2_60",
                )
            try:
                thickness = float(match["thickness"])
            except ValueError:
                raise InputError(f"the thickness in {token!r} is not a number of nanometres") from None
            layers.append(Layer(match["material"], thickness))
        return cls(tuple(layers))

    @classmethod
    def from_layers(cls, layers: Iterable[tuple[str, float]]) -> Stack:
        return cls(tuple(Layer(m, float(t)) for m, t in layers))

    @property
    def materials(self) -> list[str]:
        return [layer.material for layer in self.layers]

    @property
    def thicknesses_nm(self) -> list[float]:
        return [float(layer.thickness_nm) for layer in self.layers]

    @property
    def tokens(self) -> list[str]:
        return [layer.token for layer in self.layers]

    def __len__(self) -> int:
        return len(self.layers)

    def __str__(self) -> str:
        return " ".join(self.tokens)


class Vocabulary:
    """Special tokens, then every material × thickness token, each with an integer id.

    ``max_layers`` (default 20) fixes the sequence length at ``max_layers + 1`` (room for EOS).

    >>> vocab = Vocabulary()
    >>> len(vocab), vocab.id("<PAD>"), vocab.token(vocab.id("TiO2_60"))
    (904, 0, 'TiO2_60')
    """

    def __init__(
        self,
        materials: Sequence[str] = LAYER_MATERIALS,
        thicknesses_nm: Sequence[int] = DEFAULT_THICKNESSES_NM,
        *,
        max_layers: int = 20,
    ) -> None:
        known = set(known_materials())
        unknown = [m for m in materials if m not in known]
        if unknown:
            raise InputError(f"unknown materials {unknown}", hint=f"known: {', '.join(sorted(known))}")
        if len(set(materials)) != len(materials) or not materials:
            raise InputError("materials must be a non-empty list without repeats")
        thick = [int(t) for t in thicknesses_nm]
        if not thick or any(t <= 0 for t in thick) or len(set(thick)) != len(thick):
            raise InputError("thicknesses_nm must be distinct positive integers (nm)")
        if max_layers < 1:
            raise InputError("max_layers must be at least 1")
        self.materials: tuple[str, ...] = tuple(materials)
        self.thicknesses_nm: tuple[int, ...] = tuple(thick)
        self.max_layers = int(max_layers)
        self.tokens: list[str] = [*SPECIAL_TOKENS] + [
            f"{m}_{t}" for m in self.materials for t in self.thicknesses_nm
        ]
        self._ids = {tok: i for i, tok in enumerate(self.tokens)}
        self.pad_id, self.mask_id, self.eos_id, self.bos_id = (self._ids[t] for t in SPECIAL_TOKENS)
        # lookup tables for vectorised decoding: material index and thickness of every id
        # (-1 and nan for the special tokens)
        n_special = len(SPECIAL_TOKENS)
        self.material_of_id = np.full(len(self.tokens), -1, dtype=np.int64)
        self.thickness_of_id = np.full(len(self.tokens), np.nan)
        for m_i in range(len(self.materials)):
            for t_i, t in enumerate(self.thicknesses_nm):
                idx = n_special + m_i * len(self.thicknesses_nm) + t_i
                self.material_of_id[idx] = m_i
                self.thickness_of_id[idx] = t

    @property
    def sequence_length(self) -> int:
        return self.max_layers + 1

    def __len__(self) -> int:
        return len(self.tokens)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "materials": list(self.materials),
            "thicknesses_nm": list(self.thicknesses_nm),
            "max_layers": self.max_layers,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        vocab = cls(data["materials"], data["thicknesses_nm"], max_layers=int(data["max_layers"]))
        if "tokens" in data and list(data["tokens"]) != vocab.tokens:
            raise InputError("the token list does not match the materials and thicknesses it was saved with")
        return vocab

    def id(self, token: str) -> int:
        """The id of ``token``; unknown materials and off-grid thicknesses are explained."""
        try:
            return self._ids[token]
        except KeyError:
            pass
        match = _TOKEN.match(token)
        if match is None:
            raise InputError(
                f"unknown token {token!r}", hint="write layers as MATERIAL_THICKNESS, e.g. TiO2_60"
            )
        material = match["material"]
        if material not in self.materials:
            raise InputError(
                f"material {material!r} is not in the vocabulary",
                hint=f"materials: {', '.join(self.materials)}",
            )
        try:
            thickness = float(match["thickness"])
        except ValueError:
            raise InputError(f"the thickness in {token!r} is not a number of nanometres") from None
        grid = np.asarray(self.thicknesses_nm, dtype=float)
        nearest = int(grid[np.argmin(np.abs(grid - thickness))])
        raise InputError(
            f"thickness {thickness:g} nm of {material} is not on the vocabulary's grid",
            hint=(
                f"grid {self.thicknesses_nm[0]}–{self.thicknesses_nm[-1]} nm; nearest is {material}_{nearest}"
            ),
        )

    def token(self, token_id: int) -> str:
        if not 0 <= int(token_id) < len(self.tokens):
            raise InputError(f"token id {token_id} is outside the vocabulary (0..{len(self.tokens) - 1})")
        return self.tokens[int(token_id)]

    def encode(self, stack: Stack | str, *, length: int | None = None) -> list[int]:
        """Ids of the stack's layers, then ``<EOS>``, padded with ``<PAD>`` to ``length``."""
        if isinstance(stack, str):
            stack = Stack.parse(stack)
        length = self.sequence_length if length is None else length
        if len(stack) + 1 > length:
            raise InputError(
                f"the stack has {len(stack)} layers; at most {length - 1} fit in {length} tokens"
            )
        ids = [self.id(layer.token) for layer in stack.layers] + [self.eos_id]
        return ids + [self.pad_id] * (length - len(ids))

    def encode_batch(self, stacks: Sequence[Stack | str], *, length: int | None = None) -> torch.Tensor:
        """``encode`` every stack: an int64 tensor of shape (stacks, length)."""
        return torch.tensor([self.encode(s, length=length) for s in stacks], dtype=torch.int64).reshape(
            len(stacks), self.sequence_length if length is None else length
        )

    def decode(self, ids: Sequence[int] | torch.Tensor | np.ndarray) -> Stack:
        """The stack of a token sequence; reading stops at ``<EOS>``, ``<BOS>``/``<PAD>`` are skipped.

        A ``<MSK>`` token before ``<EOS>`` is an error (the sequence is not finished).
        """
        layers = []
        for raw in np.asarray(ids).reshape(-1).tolist():
            token = self.token(int(raw))
            if token == EOS:
                break
            if token in (BOS, PAD):
                continue
            if token == MASK:
                raise InputError("the sequence still holds a <MSK> token: it is not a finished design")
            material, thickness = token.rsplit("_", 1)
            layers.append(Layer(material, float(thickness)))
        return Stack(tuple(layers))

    def decode_batch(self, ids: torch.Tensor | np.ndarray) -> list[Stack]:
        return [self.decode(row) for row in np.asarray(ids)]
