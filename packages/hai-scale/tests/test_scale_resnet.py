"""ResNet-18 for AB-training: torchvision's architecture, factored and trained on gloo ranks."""

from __future__ import annotations

import pytest
import torch

from hai.scale.abtrain.lowrank import to_full_rank, to_low_rank
from hai.scale.resnet import resnet18, synthetic_images


def test_resnet18_has_torchvisions_shape_and_size() -> None:
    net = resnet18(10, (32, 32))
    assert sum(p.numel() for p in net.parameters()) == 11_181_642  # torchvision's resnet18(num_classes=10)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 20  # stem + 16 in the blocks + 3 downsamples
    assert net(torch.zeros(2, 3 * 32 * 32)).shape == (2, 10)
    # one input channel and 4 classes: the stem loses 2·64·7·7 weights, the classifier 6·513
    one_channel = sum(p.numel() for p in resnet18(4, (8, 8), channels=1).parameters())
    assert one_channel == 11_181_642 - 2 * 64 * 7 * 7 - 6 * 513


def test_a_resnet_stage_factors_into_ab_layers_and_back_exactly() -> None:
    # layer2 of ResNet-18: two BasicBlocks, strided 3x3 convolutions and a 1x1 downsample
    # (the whole network is factored in the distributed test below; its SVDs take a while)
    torch.manual_seed(0)
    stage = resnet18(10, (16, 16))[1].layer2.eval()
    x = torch.randn(3, 64, 8, 8)
    reference = stage(x)
    summary = to_low_rank(stage, cutoff=1e-9)  # keeps every singular value: the same function
    assert len(summary.layers) == 5  # four 3x3 convolutions and the downsample
    assert torch.allclose(stage(x), reference, atol=1e-4)
    assert to_full_rank(stage) == 5
    assert torch.allclose(stage(x), reference, atol=1e-4)


def test_synthetic_images_are_seeded_and_learnable_by_class() -> None:
    a, b = synthetic_images(8, 4, 200, seed=3), synthetic_images(8, 4, 200, seed=3)
    assert torch.equal(a.x_train, b.x_train)
    assert a.n_features == 3 * 64
    # class means differ far more than the noise averages out: the classes are separable
    means = torch.stack([a.x_train[a.y_train == c].mean(0) for c in range(4)])
    assert float(torch.cdist(means, means).masked_fill(torch.eye(4, dtype=torch.bool), 1e9).min()) > 5


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(300)
def test_ab_training_a_resnet18_on_two_ranks() -> None:
    from hai.scale.abtrain import ABSchedule
    from hai.scale.abtrain.run import launch_ab
    from hai.scale.abtrain.trainer import ABTrainConfig

    schedule = ABSchedule(warmup_steps=2, steps_between_syncs=3, ddp_steps_after_sync=1, lr_rebound_steps=1)
    config = ABTrainConfig(
        method="ab", data="images", image_size=8, model="resnet18", steps=7, batch_size=4, schedule=schedule
    )
    results = launch_ab(config, nproc=2, timeout_s=280)
    assert results[0]["checksum"] == pytest.approx(results[1]["checksum"], rel=1e-12)
    assert [e["events"] for e in results[0]["trace"]][2] == ["svd"]
    assert len(results[0]["ranks"][0]["layers"]) == 21  # every conv and the classifier factored
    assert results[0]["comm"]["total_bytes"] > 0
