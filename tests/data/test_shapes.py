"""The embedded colour dataset `shapes`: drawn deterministically, balanced, and separable by shape, not colour."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from sslcore.data import dataset_info, load_dataset
from sslcore.data.shapes import SHAPE_NAMES, generate_shapes, palette


def test_the_same_seed_draws_the_same_images_and_another_seed_other_ones() -> None:
    images, labels = generate_shapes(per_class=12, seed=3)
    again, labels_again = generate_shapes(per_class=12, seed=3)
    other, _ = generate_shapes(per_class=12, seed=4)
    assert torch.equal(images, again) and torch.equal(labels, labels_again)
    assert not torch.equal(images, other)


def test_shapes_is_registered_as_an_embedded_colour_dataset_and_loads_balanced() -> None:
    info = dataset_info("shapes")
    assert info["embedded"] and not info["official_split"] and info["sample_shape"] == (3, 32, 32)
    data = load_dataset("shapes")
    assert data.train.images.dtype == torch.uint8 and data.train.images.shape[1:] == (3, 32, 32)
    assert data.class_names == SHAPE_NAMES and len(SHAPE_NAMES) == 10
    everything = torch.cat([data.train.labels, data.test.labels])
    assert torch.bincount(everything, minlength=10).tolist() == [500] * 10
    assert torch.bincount(data.test.labels, minlength=10).tolist() == [100] * 10  # stratified 20% split


def test_every_image_shows_colour_and_the_full_range() -> None:
    images, _ = generate_shapes(per_class=10, seed=0)
    x = images.float()
    channel_spread = (x.amax(dim=1) - x.amin(dim=1)).mean(dim=(1, 2))  # how far from grey each image is
    assert (channel_spread > 20).all()
    assert images.min() < 30 and images.max() > 225


def test_palette_colours_have_their_own_brightness_so_grey_pictures_keep_the_shapes() -> None:
    colours = palette()
    luma = colours @ torch.tensor([0.299, 0.587, 0.114])
    assert colours.min() >= 0 and colours.max() <= 1
    assert torch.allclose(luma, torch.linspace(0.15, 0.85, 12), atol=1e-5)  # one grey level per colour
    assert (colours.amax(dim=1) - colours.amin(dim=1) > 0.2).all()  # every one a colour, not a grey


def _mean_colour(images: torch.Tensor) -> np.ndarray:
    """(N, 3): what a classifier that sees only colour knows about an image."""
    return images.float().mean(dim=(2, 3)).numpy()


def _shape_spectrum(images: torch.Tensor, bins: int = 16) -> np.ndarray:
    """(N, bins): a colour-blind, translation- and rotation-invariant outline descriptor.

    Radial profile of the Fourier magnitude of the edge map (gradient magnitude over the channels),
    normalised by its zero frequency so contrast does not matter either.
    """
    x = images.float() / 255
    edges = (x.diff(dim=3)[:, :, :-1] ** 2 + x.diff(dim=2)[:, :, :, :-1] ** 2).sum(dim=1).sqrt()
    power = torch.fft.fft2(edges).abs()
    power = power / power[:, :1, :1]
    f = torch.fft.fftfreq(edges.shape[-1])
    radius = (f[:, None] ** 2 + f[None, :] ** 2).sqrt()
    ring = (radius / radius.max() * (bins - 1)).round().long().flatten()
    sums = torch.zeros(x.shape[0], bins).index_add_(1, ring, power.flatten(1))
    return (sums / torch.bincount(ring, minlength=bins)).log().numpy()


def test_colour_says_nothing_about_the_class_while_the_outline_does() -> None:
    data = load_dataset("shapes")
    y_train, y_test = data.train.labels.numpy(), data.test.labels.numpy()

    def accuracy(features) -> float:
        model = LinearDiscriminantAnalysis().fit(features(data.train.images), y_train)
        return model.score(features(data.test.images), y_test)

    # Chance is 10%. Measured: 11% from mean colour, 50% from the outline descriptor.
    assert accuracy(_mean_colour) < 0.18
    assert accuracy(_shape_spectrum) > 0.35
