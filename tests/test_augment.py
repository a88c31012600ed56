"""Tests for sslcore.augment: shapes, reproducibility, per-sample randomness and exact special cases."""
from __future__ import annotations

import pytest
import torch

from sslcore import augment as A
from sslcore.augment import geometric


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(b: int = 8, c: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand((b, c, h, w), generator=_gen(seed))


RANDOM_OPS = {
    "crop": lambda x, g: A.random_resized_crop(x, g),
    "crop_rot": lambda x, g: A.random_resized_crop(x, g, max_rotation_deg=15.0),
    "flip": lambda x, g: A.random_horizontal_flip(x, g),
    "jitter": lambda x, g: A.color_jitter(x, g),
    "gray": lambda x, g: A.random_grayscale(x, g, p=0.5),
    "noise": lambda x, g: A.gaussian_noise(x, g, std=0.1),
    "salt": lambda x, g: A.salt_and_pepper(x, g, amount=0.1),
    "view": lambda x, g: A.default_view_augment(x.shape[1], x.shape[2])(x, g),
}


@pytest.mark.parametrize("name", sorted(RANDOM_OPS))
@pytest.mark.parametrize("shape", [(8, 1, 28, 28), (8, 3, 32, 32), (4, 3, 12, 20)])
def test_shape_dtype_range_and_new_tensor(name: str, shape: tuple[int, int, int, int]) -> None:
    x = torch.rand(shape, generator=_gen(1))
    out = RANDOM_OPS[name](x, _gen(2))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("name", sorted(RANDOM_OPS))
def test_same_seed_same_output_different_seed_different(name: str) -> None:
    x = _images(c=3)
    op = RANDOM_OPS[name]
    assert torch.equal(op(x, _gen(7)), op(x, _gen(7)))
    assert not torch.equal(op(x, _gen(7)), op(x, _gen(8)))


def test_float64_and_bfloat16_inputs_keep_dtype() -> None:
    for dtype in (torch.float64, torch.bfloat16):
        x = _images().to(dtype)
        assert A.default_view_augment(3, 16)(x, _gen(0)).dtype == dtype


def test_identical_images_get_different_crops() -> None:
    x = _images(b=1).expand(6, -1, -1, -1).contiguous()
    out = A.random_resized_crop(x, _gen(3), max_rotation_deg=10.0)
    assert all(not torch.allclose(out[0], out[i]) for i in range(1, 6))


def test_identical_images_get_different_jitter() -> None:
    x = _images(b=1).expand(6, -1, -1, -1).contiguous()
    out = A.color_jitter(x, _gen(3), p=1.0)
    assert all(not torch.allclose(out[0], out[i]) for i in range(1, 6))


@pytest.mark.parametrize("shape", [(3, 2, 16, 16), (3, 1, 12, 20), (3, 3, 20, 12)])
def test_full_crop_without_rotation_is_identity(shape: tuple[int, int, int, int]) -> None:
    x = torch.rand(shape, generator=_gen(0))
    out = A.random_resized_crop(x, _gen(1), scale=(1.0, 1.0), ratio=(1.0, 1.0), max_rotation_deg=0.0)
    if shape[2] == shape[3]:
        torch.testing.assert_close(out, x, atol=1e-5, rtol=0)
    else:  # the ratio cannot hold on a non-square image: the largest 1:1 crop is taken instead
        assert out.shape == x.shape


def test_crop_without_rotation_stays_inside_the_image() -> None:
    x = torch.ones(64, 1, 12, 20)
    out = A.random_resized_crop(x, _gen(0), scale=(0.05, 1.0), ratio=(0.2, 5.0))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_crop_area_follows_scale() -> None:
    ramp = torch.linspace(0, 1, 64).expand(256, 1, 64, 64).contiguous()  # value = column position
    out = A.random_resized_crop(ramp, _gen(0), scale=(0.25, 0.25), ratio=(1.0, 1.0))
    width = out[:, 0, 0, -1] - out[:, 0, 0, 0]  # a 0.25 area square crop spans half the width
    torch.testing.assert_close(width, torch.full_like(width, 0.5), atol=0.02, rtol=0)


def test_crop_with_rotation_pads_with_black() -> None:
    x = torch.ones(4, 1, 28, 28)
    out = A.random_resized_crop(x, _gen(0), scale=(1.0, 1.0), ratio=(1.0, 1.0), max_rotation_deg=45.0)
    assert out[:, :, 0, 0].max() < 0.5  # corners rotate out of the image


def test_flip_probability_zero_and_one_exact() -> None:
    x = _images()
    assert torch.equal(A.random_horizontal_flip(x, _gen(0), p=0.0), x)
    assert torch.equal(A.random_horizontal_flip(x, _gen(0), p=1.0), x.flip(-1))


def test_flip_is_per_sample() -> None:
    x = _images(b=64)
    out = A.random_horizontal_flip(x, _gen(0), p=0.5)
    flipped = torch.tensor([torch.equal(out[i], x[i].flip(-1)) for i in range(64)])
    assert 0 < flipped.sum() < 64


def test_rotate90_matches_torch_rot90_per_sample() -> None:
    x = _images(b=12, c=2, h=7, w=7)
    k = torch.arange(12, dtype=torch.int64) % 4
    out = A.rotate90(x, k)
    for i in range(12):
        assert torch.equal(out[i], torch.rot90(x[i], int(k[i]), dims=(1, 2)))


def test_rotate90_identity_and_composition() -> None:
    x = _images(b=5)
    assert torch.equal(A.rotate90(x, torch.zeros(5, dtype=torch.int64)), x)
    k = torch.tensor([0, 1, 2, 3, 1])
    out = x
    for _ in range(4):
        out = A.rotate90(out, k)
    assert torch.equal(out, x)
    ones = torch.ones(5, dtype=torch.int64)
    assert torch.equal(A.rotate90(A.rotate90(x, ones), 3 * ones), x)


def test_rotate90_rejects_non_square_and_bad_k() -> None:
    with pytest.raises(ValueError, match="square"):
        A.rotate90(torch.rand(2, 1, 4, 6), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="int64"):
        A.rotate90(torch.rand(2, 1, 4, 4), torch.zeros(2, dtype=torch.int32))


@pytest.mark.parametrize("h,w,p,ratio", [(28, 28, 7, 0.75), (32, 32, 4, 0.5), (28, 28, 5, 0.6), (10, 13, 3, 0.3)])
def test_patch_mask_hides_exact_patch_count(h: int, w: int, p: int, ratio: float) -> None:
    mask = A.random_patch_mask(16, 3, h, w, p, ratio, _gen(0), "cpu")
    assert mask.shape == (16, 1, h, w) and mask.dtype == torch.bool
    grid_h, grid_w = -(-h // p), -(-w // p)
    per_patch = mask[:, :, ::p, ::p]  # one pixel per patch: its top-left corner
    assert per_patch.shape[2:] == (grid_h, grid_w)
    assert (per_patch.flatten(1).sum(1) == round(ratio * grid_h * grid_w)).all()
    # whole patches are hidden, never parts of one
    expanded = per_patch.repeat_interleave(p, 2).repeat_interleave(p, 3)[:, :, :h, :w]
    assert torch.equal(expanded, mask)
    assert not all(torch.equal(mask[0], mask[i]) for i in range(1, 16))


def test_patch_mask_ratio_zero_and_one() -> None:
    assert not A.random_patch_mask(4, 1, 28, 28, 7, 0.0, _gen(0), "cpu").any()
    assert A.random_patch_mask(4, 1, 28, 28, 7, 1.0, _gen(0), "cpu").all()


def test_patch_mask_bad_patch_size_raises_clear_error() -> None:
    with pytest.raises(ValueError, match=r"patch_size must be between 1 and min\(height, width\) = 8"):
        A.random_patch_mask(2, 1, 8, 10, 9, 0.5, _gen(0), "cpu")
    with pytest.raises(ValueError, match="patch_size"):
        A.random_patch_mask(2, 1, 8, 8, 0, 0.5, _gen(0), "cpu")


def test_salt_and_pepper_extremes() -> None:
    x = _images()
    assert torch.equal(A.salt_and_pepper(x, _gen(0), amount=0.0), x)
    out = A.salt_and_pepper(x, _gen(0), amount=1.0)
    assert ((out == 0) | (out == 1)).all()
    assert (out == out[:, :1]).all()  # the same pixel is hit in every channel
    assert 0 < out.mean() < 1


def test_gaussian_noise_zero_std_is_identity() -> None:
    x = _images()
    assert torch.equal(A.gaussian_noise(x, _gen(0), std=0.0), x)


def test_color_jitter_keeps_grey_images_grey() -> None:
    grey_rgb = torch.rand(16, 1, 8, 8, generator=_gen(0)).expand(-1, 3, -1, -1).contiguous()
    out = A.color_jitter(grey_rgb, _gen(1), p=1.0)
    torch.testing.assert_close(out, out[:, :1].expand_as(out), atol=1e-5, rtol=0)
    assert not torch.allclose(out, grey_rgb)
    one_channel = torch.rand(16, 1, 8, 8, generator=_gen(0))
    assert A.color_jitter(one_channel, _gen(1), p=1.0).shape == (16, 1, 8, 8)


def test_color_jitter_changes_hue_of_colour_images_and_p_zero_is_identity() -> None:
    x = _images()
    assert torch.equal(A.color_jitter(x, _gen(0), p=0.0), x)
    out = A.color_jitter(x, _gen(0), brightness=0.0, contrast=0.0, saturation=0.0, hue=0.2, p=1.0)
    assert not torch.allclose(out, x, atol=1e-3)
    unchanged = A.color_jitter(x, _gen(0), brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, p=1.0)
    torch.testing.assert_close(unchanged, x, atol=1e-5, rtol=0)


def test_random_grayscale() -> None:
    x = _images()
    out = A.random_grayscale(x, _gen(0), p=1.0)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    assert torch.equal(A.random_grayscale(x, _gen(0), p=0.0), x)
    grey = _images(c=1)
    assert torch.equal(A.random_grayscale(grey, _gen(0), p=1.0), grey)


def test_default_view_augment_recipes() -> None:
    digits = A.default_view_augment(1, 28)
    assert not digits.flip and digits.rotation_deg == 10.0 and digits.crop_scale_min >= 0.4
    colour = A.default_view_augment(3, 32)
    assert colour.flip and colour.crop_scale_min == 0.2 and colour.grayscale_p == 0.2
    assert A.default_view_augment(1, 8).crop_scale_min > digits.crop_scale_min


def test_view_augment_validates_fields() -> None:
    with pytest.raises(ValueError, match="crop_scale_min"):
        A.ViewAugment(crop_scale_min=0.9, crop_scale_max=0.5)
    with pytest.raises(ValueError, match="grayscale_p"):
        A.ViewAugment(grayscale_p=1.5)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        A.random_horizontal_flip(torch.rand(3, 8, 8), _gen(0))
    with pytest.raises(ValueError, match="scale"):
        A.random_resized_crop(_images(), _gen(0), scale=(0.0, 1.0))


def test_affine_grid_matches_torch() -> None:
    theta = torch.randn(5, 2, 3, generator=_gen(0))
    expected = torch.nn.functional.affine_grid(theta, [5, 1, 6, 9], align_corners=False)
    torch.testing.assert_close(geometric._affine_grid(theta, 6, 9), expected)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (
    ["mps"] if torch.backends.mps.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_the_input_device_with_a_device_generator(device: str) -> None:
    x = torch.rand(4, 3, 16, 16, device=device)
    g = torch.Generator(device=device).manual_seed(0)
    for op in RANDOM_OPS.values():
        assert op(x, g).device == x.device
    assert A.rotate90(x, torch.tensor([0, 1, 2, 3], device=device)).device == x.device
    assert A.random_patch_mask(4, 3, 16, 16, 4, 0.5, g, device).device == x.device
