"""vit_tiny, mae, jigsaw and colorization: what each shows the model and what it scores."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sslcore.config import ConfigError
from sslcore.data import load_dataset
from sslcore.models import build_encoder
from sslcore.tasks.build import build_task
from sslcore.tasks.colorization import chroma, luma, to_rgb
from sslcore.tasks.jigsaw import hamming_permutations, shuffle_tiles
from tests.conftest import tiny_config


def _digits(n: int = 6) -> torch.Tensor:
    return load_dataset("digits").test.images[:n].float() / 255


# -- vit_tiny -----------------------------------------------------------------------------------

def test_vit_runs_its_blocks_on_any_subset_of_patches() -> None:
    encoder = build_encoder("vit_tiny", (1, 28, 28), width=8, patch_size=7, depth=2).eval()
    images = torch.rand(3, 1, 28, 28)
    tokens = encoder.embed_patches(images)
    assert encoder.grid == (4, 4) and tokens.shape == (3, 16, 32)
    assert encoder.encode_tokens(tokens[:, [0, 5, 9]]).shape == (3, 4, 32)  # class token + the 3 kept
    assert encoder(images).shape == (3, encoder.feature_dim)


def test_vit_patch_size_must_divide_the_image() -> None:
    with pytest.raises(ConfigError,
                       match=r"encoder.patch_size = 3 is not allowed: .*\(8x8 images\): one of 1, 2, 4, 8"):
        tiny_config("simclr", **{"encoder.name": "vit_tiny", "encoder.patch_size": 3})
    with pytest.raises(ConfigError, match="encoder.depth = 0 is not allowed"):
        tiny_config("simclr", **{"encoder.name": "vit_tiny", "encoder.depth": 0})


def test_other_encoders_ignore_the_vit_fields() -> None:
    config = tiny_config("simclr", **{"encoder.patch_size": 3})  # convnet: no patches, nothing to refuse
    assert build_task(config, load_dataset("digits")).encoder(_digits(2)).shape[0] == 2


# -- mae -----------------------------------------------------------------------------------------

def test_mae_refuses_hiding_every_patch() -> None:
    with pytest.raises(ConfigError,
                       match="task.mask_ratio = 1.0 is not allowed: expected a number between 0.05 and 0.95"):
        tiny_config("mae", **{"task.mask_ratio": 1.0})


def test_mae_scores_only_the_hidden_patches() -> None:
    config = tiny_config("mae", **{"encoder.patch_size": 2, "task.mask_ratio": 0.75})
    task = build_task(config, load_dataset("digits"))
    images = _digits()
    target = task.patchify(images)
    visible = task.random_split(len(images), torch.Generator().manual_seed(0), images.device)
    assert visible.shape == (6, 4)  # 16 patches of 2x2, a quarter kept

    def decode_with(garbage_where_visible: bool):
        def decode(latent: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
            wrong = torch.zeros_like(target, dtype=torch.bool).scatter_(1, kept[..., None].expand(-1, -1, 4), True)
            return torch.where(wrong if garbage_where_visible else ~wrong, target + 5.0, target)
        return decode

    task.decode = decode_with(garbage_where_visible=True)
    assert torch.allclose(task.forward_pass(images, torch.Generator().manual_seed(0)).loss, torch.zeros(6))
    task.decode = decode_with(garbage_where_visible=False)
    assert (task.forward_pass(images, torch.Generator().manual_seed(0)).loss > 20).all()


@pytest.mark.parametrize("decoder", ["conv", "transformer"])
def test_both_mae_decoders_predict_every_patch(decoder: str) -> None:
    task = build_task(tiny_config("mae", **{"encoder.patch_size": 2, "task.decoder": decoder}), load_dataset("digits"))
    out = task.forward_pass(_digits(), torch.Generator().manual_seed(0))
    assert out.predicted_pixels.shape == (6, 16, 4) and out.hidden.sum(dim=1).tolist() == [12] * 6
    out.loss.mean().backward()  # the encoder learns through either decoder
    assert task.encoder.patch_embed.weight.grad.abs().sum() > 0


def test_mae_snapshot_shows_visible_patches_and_greys_the_hidden_ones() -> None:
    task = build_task(tiny_config("mae", **{"encoder.patch_size": 2}), load_dataset("digits")).eval()
    images = _digits()
    with torch.no_grad():
        snap = task.snapshot(images, torch.Generator().manual_seed(0))
    grey = snap["input"] == 128
    assert 0.7 < grey.mean() < 0.8  # 75% hidden (digits are never exactly mid-grey)
    assert np.array_equal(snap["input"][~grey], snap["original"][~grey])
    assert np.array_equal(snap["reconstruction"][~grey], snap["original"][~grey])
    assert snap["error"].shape == (6,) and (snap["error"] > 0).all()


def test_patchify_round_trips() -> None:
    task = build_task(tiny_config("mae", **{"encoder.patch_size": 2}), load_dataset("digits"))
    images = _digits(2)
    assert task.patchify(images).shape == (2, 16, 4)
    assert torch.equal(task.unpatchify(task.patchify(images)), images)


# -- jigsaw --------------------------------------------------------------------------------------

def test_jigsaw_orderings_are_distinct_far_apart_and_always_the_same() -> None:
    chosen = hamming_permutations(9, 30)
    assert chosen.shape == (30, 9) and torch.equal(chosen[0], torch.arange(9))
    assert len({tuple(p) for p in chosen.tolist()}) == 30
    distance = (chosen[:, None] != chosen[None]).sum(dim=2) + 99 * torch.eye(30, dtype=torch.int64)
    assert distance.min() >= 6  # random orderings of 9 tiles would include pairs only 2 apart
    hamming_permutations.cache_clear()
    assert torch.equal(hamming_permutations(9, 30), chosen)
    assert sorted(map(tuple, hamming_permutations(4, 24).tolist())) == sorted(itertools.permutations(range(4)))


def test_shuffled_tiles_go_where_the_ordering_says_and_back() -> None:
    images = torch.arange(2 * 16, dtype=torch.float32).reshape(2, 1, 4, 4)
    order = torch.tensor([[1, 0, 3, 2], [3, 2, 1, 0]])
    shuffled = shuffle_tiles(images, order, 2)
    assert torch.equal(shuffled[0, 0, :2, :2], images[0, 0, :2, 2:])  # slot 0 shows tile 1
    assert torch.equal(shuffled[1, 0, :2, :2], images[1, 0, 2:, 2:])  # slot 0 shows tile 3
    assert torch.equal(shuffle_tiles(shuffled, order.argsort(dim=1), 2), images)


@pytest.mark.parametrize("overrides, message", [
    ({"data.dataset": "mnist5k", "data.train_limit": 0, "task.grid": 3},
     "task.grid = 3 is not allowed: expected a grid that divides the image side (28x28 images): one of 2, 4"),
    ({"task.permutations": 25},
     "task.permutations = 25 is not allowed: expected at most 24, the orderings of 2x2 tiles"),
])
def test_jigsaw_refuses_what_cannot_be_cut_or_counted(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        tiny_config("jigsaw", **overrides)
    assert str(error.value) == message


def test_jigsaw_snapshot_restores_the_image_when_it_guesses_right() -> None:
    task = build_task(tiny_config("jigsaw", **{"task.permutations": 6}), load_dataset("digits")).eval()
    with torch.no_grad():
        snap = task.snapshot(_digits(), torch.Generator().manual_seed(0))
    right = snap["predicted_permutation"] == snap["true_permutation"]
    assert np.array_equal(snap["restored"][right], snap["original"][right])
    assert ((0 <= snap["predicted_permutation"]) & (snap["predicted_permutation"] < 6)).all()
    assert ((snap["confidence"] >= 1 / 6 - 1e-6) & (snap["confidence"] <= 1)).all()
    scores = task.evaluate(_digits(), torch.Generator())
    assert scores.keys() == {"test_jigsaw_acc"} and 0 <= scores["test_jigsaw_acc"] <= 1


# -- colorization --------------------------------------------------------------------------------

def test_colour_conversion_round_trips() -> None:
    x = torch.rand(4, 3, 5, 5)
    assert torch.allclose(to_rgb(luma(x), chroma(x)), x, atol=1e-5)
    assert torch.allclose(chroma(luma(x).expand_as(x)), torch.full((4, 2, 5, 5), 0.5), atol=1e-6)  # grey: no chroma


def test_colorization_sees_grey_and_keeps_the_brightness() -> None:
    config = tiny_config("colorization")
    data = load_dataset("shapes", train_limit=config.data.train_limit)
    task = build_task(config, data).eval()
    images = data.test.images[:6].float() / 255
    with torch.no_grad():
        snap = task.snapshot(images, torch.Generator())
    grey = snap["input"].astype(np.int16)
    assert (grey[:, 0] == grey[:, 1]).all() and (grey[:, 1] == grey[:, 2]).all()
    # The colours are the model's; the brightness is the input's (up to clamping and 8-bit rounding).
    brightness = luma(torch.from_numpy(snap["reconstruction"]).float() / 255)
    assert (brightness - luma(images)).abs().mean() < 0.02
