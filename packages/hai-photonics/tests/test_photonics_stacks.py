"""Stacks, tokens and the vocabulary."""

from __future__ import annotations

import pytest
import torch

from hai.photonics.stacks import EOS, PAD, Layer, Stack, Vocabulary
from hai.shared import InputError


def test_parse_and_print_round_trip() -> None:
    stack = Stack.parse("TiO2_60 SiO2_100 Ag_12.5")
    assert stack.materials == ["TiO2", "SiO2", "Ag"]
    assert stack.thicknesses_nm == [60.0, 100.0, 12.5]
    assert str(stack) == "TiO2_60 SiO2_100 Ag_12.5"
    assert Stack.parse(["<BOS>", "TiO2_60", "<EOS>", "SiO2_10"]) == Stack.parse("TiO2_60")


def test_vocabulary_layout_and_round_trip() -> None:
    vocab = Vocabulary()
    assert len(vocab) == 4 + 18 * 50
    assert vocab.tokens[:4] == ["<PAD>", "<MSK>", "<EOS>", "<BOS>"]
    assert vocab.sequence_length == 21
    stack = Stack.parse("TiO2_60 SiO2_100 Ag_500")
    ids = vocab.encode(stack)
    assert len(ids) == 21
    assert ids[3] == vocab.id(EOS)
    assert ids[4:] == [vocab.id(PAD)] * 17
    assert vocab.decode(ids) == stack
    assert vocab.decode_batch(vocab.encode_batch([stack, "Al_10"]))[1] == Stack.parse("Al_10")
    assert Vocabulary.from_dict(vocab.to_dict()).tokens == vocab.tokens


def test_clear_errors() -> None:
    vocab = Vocabulary()
    with pytest.raises(InputError, match="not in the vocabulary"):
        vocab.encode("Gold_60")
    with pytest.raises(InputError, match="nearest is TiO2_60"):
        vocab.encode("TiO2_63")
    with pytest.raises(InputError, match="at most 20"):
        vocab.encode(" ".join(["TiO2_60", "SiO2_60"] * 11))
    with pytest.raises(InputError, match="<MSK>"):
        vocab.decode(torch.tensor([vocab.id("TiO2_60"), vocab.mask_id, vocab.eos_id]))
    with pytest.raises(InputError, match=">= 0 nm"):
        Layer("TiO2", -1.0)
    with pytest.raises(InputError, match="MATERIAL_THICKNESS"):
        Stack.parse("TiO2-60")
    with pytest.raises(InputError, match="unknown materials"):
        Vocabulary(["TiO2", "Kryptonite"])
