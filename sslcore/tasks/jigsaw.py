"""Jigsaw puzzles (Noroozi & Favaro 2016): cut the image into a grid of tiles, shuffle them with one of N
fixed orderings, and predict which ordering was used.

Putting the tiles back requires knowing what the parts of an object look like and where they belong.
The N orderings are chosen far apart (large Hamming distance: many tiles move between any two of
them), so they cannot be told apart from one misplaced tile alone; the choice is deterministic, so a
run's classes are the same on every machine. Unlike the paper's tile-by-tile network, the shuffled
image is encoded whole: any encoder then works, and it sees images as it will at evaluation.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sslcore.config_schema import ConfigError, TaskConfig, param
from sslcore.models import Encoder
from sslcore.tasks.base import PretextTask, StepOutput, batched_eval, register_task, to_uint8
from sslcore.tasks.panels import ImageColumn, SnapshotPanels, Summary, guess_values

#: Above this many tiles, orderings are chosen from a seeded random pool instead of all n! of them.
_ALL_ORDERINGS_UP_TO = 7
_POOL_SIZE = 20_000


@dataclass(frozen=True)
class JigsawConfig(TaskConfig):
    grid: int = param(2, "Tiles per side (grid x grid tiles); must divide the image side: 2 or 4 for 28x28 and "
                         "32x32 images, 3 for sides divisible by 3 (the paper's 3x3 on 225x225 crops).", min=2, max=4)
    permutations: int = param(24, "Tile orderings to tell apart, chosen far apart in Hamming distance (the paper: 100 "
                                  "of the 9! for 3x3); at most (grid x grid)!.", min=2, max=1000)
    hidden_dim: int = param(256, "Hidden units of the ordering classifier head (0 = linear head).", min=0, max=4096)


@lru_cache(maxsize=8)
def hamming_permutations(tiles: int, count: int) -> torch.Tensor:
    """``count`` orderings of ``tiles`` tiles (count, tiles) int64, greedily chosen far apart.

    Starts from the identity and repeatedly adds the candidate whose smallest Hamming distance to
    those already chosen is largest (first one on ties), as Noroozi & Favaro's selection. Candidates:
    all orderings for up to 7 tiles, else a fixed-seed random pool; so the result depends only on the arguments.
    """
    if tiles <= _ALL_ORDERINGS_UP_TO:
        pool = torch.tensor(list(itertools.permutations(range(tiles))), dtype=torch.int64)
    else:
        g = torch.Generator().manual_seed(tiles)
        pool = torch.cat([torch.arange(tiles)[None], torch.rand(_POOL_SIZE, tiles, generator=g).argsort(dim=1)])
    chosen = [0]  # the identity comes first in both pools
    nearest = (pool != pool[0]).sum(dim=1)
    for _ in range(count - 1):
        pick = int(nearest.argmax())
        chosen.append(pick)
        nearest = torch.minimum(nearest, (pool != pool[pick]).sum(dim=1))
    return pool[chosen]


def shuffle_tiles(images: torch.Tensor, order: torch.Tensor, grid: int) -> torch.Tensor:
    """Images (B, C, H, W) with their grid x grid tiles rearranged: tile slot j shows tile ``order[b, j]`` (B, grid²).

    One reshape + gather + reshape for the whole batch; H and W must be multiples of ``grid``.
    """
    b, c, h, w = images.shape
    th, tw = h // grid, w // grid
    tiles = images.reshape(b, c, grid, th, grid, tw).permute(0, 2, 4, 1, 3, 5).reshape(b, grid * grid, c, th, tw)
    moved = tiles.gather(1, order[:, :, None, None, None].expand(-1, -1, c, th, tw))
    return moved.reshape(b, grid, grid, c, th, tw).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


@register_task("jigsaw", "Cut the image into grid x grid tiles, shuffle them with one of N far-apart orderings, "
                         "predict which (Noroozi & Favaro 2016)")
class Jigsaw(PretextTask):
    Config = JigsawConfig
    config: JigsawConfig
    orderings: torch.Tensor  # a buffer (register_buffer), declared for the type checker
    display_name = "jigsaw puzzles"
    panels = SnapshotPanels(
        images=(ImageColumn("original", "original"), ImageColumn("shuffled", "shuffled input"),
                ImageColumn("restored", "put back by the guess")),
        values=guess_values("predicted_permutation", "true_permutation"),
        caption="ordering #{predicted_permutation} ({confidence:.0%}) {mark} · true #{true_permutation}",
        worst_first="sure_and_right", worst_label="Wrong and least sure first",
        summary=Summary("right", "Ordering accuracy", axis="accuracy", fmt="{:.0%}", percent=True),
        required=("true_permutation", "predicted_permutation"),
        explanation="The tiles of each test image are shuffled by one of the task's orderings, and the model says "
                    "which. The third picture puts the tiles back the way the model guessed: the original again when "
                    "it is right. Under each image: the guessed ordering, how sure the model is, and the true one.")

    @classmethod
    def settings_problem(cls, config: TaskConfig, image_shape: tuple[int, ...] | None) -> str | None:
        assert isinstance(config, JigsawConfig)  # the config validation passes the task's own config
        tiles = config.grid * config.grid
        if config.permutations > math.factorial(tiles):
            return (f"task.permutations = {config.permutations} is not allowed: expected at most "
                    f"{math.factorial(tiles)}, the orderings of {config.grid}x{config.grid} tiles")
        if image_shape is None or all(side % config.grid == 0 for side in image_shape[1:]):
            return None
        h, w = image_shape[1:]
        fits = [g for g in range(2, 5) if h % g == 0 and w % g == 0]
        allowed = f"one of {', '.join(map(str, fits))}" if fits else "none of 2, 3, 4 does; pick another task"
        return (f"task.grid = {config.grid} is not allowed: expected a grid that divides the image side "
                f"({h}x{w} images): {allowed}")

    def __init__(self, encoder: Encoder, config: JigsawConfig, image_shape: tuple[int, int, int]) -> None:
        problem = self.settings_problem(config, image_shape)
        if problem is not None:
            raise ConfigError(problem)
        super().__init__(encoder, config, image_shape)
        d, n = encoder.feature_dim, config.permutations
        self.head: nn.Module = (nn.Linear(d, n) if config.hidden_dim == 0 else
                                nn.Sequential(nn.Linear(d, config.hidden_dim), nn.ReLU(inplace=True),
                                              nn.Linear(config.hidden_dim, n)))
        # A buffer, so it moves to the training device with the task; not saved: a pure function of the config.
        self.register_buffer("orderings", hamming_permutations(config.grid ** 2, n).clone(), persistent=False)

    def shuffled_batch(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(images shuffled by a random ordering each (B, C, H, W), ordering index (B,) in 0..permutations-1)."""
        index = torch.randint(0, self.config.permutations, (images.shape[0],), generator=generator,
                              device=images.device)
        return shuffle_tiles(images, self.orderings[index], self.config.grid), index

    def logits(self, shuffled: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> ordering logits (B, permutations)."""
        return self.head(self.encoder(shuffled))

    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        shuffled, index = self.shuffled_batch(images, generator)
        logits = self.logits(shuffled)
        accuracy = (logits.argmax(dim=1) == index).float().mean()
        return StepOutput(loss=F.cross_entropy(logits.float(), index), metrics={"jigsaw_acc": accuracy})

    def make_views(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"original": images, "shuffled": self.shuffled_batch(images, generator)[0]}

    def snapshot(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, np.ndarray]:
        shuffled, index = self.shuffled_batch(images, generator)
        confidence, predicted = self.logits(shuffled).float().softmax(dim=1).max(dim=1)
        # Undo the predicted ordering: the original again when the prediction is right.
        restored = shuffle_tiles(shuffled, self.orderings[predicted].argsort(dim=1), self.config.grid)
        return {"original": to_uint8(images), "shuffled": to_uint8(shuffled), "restored": to_uint8(restored),
                "true_permutation": index.cpu().numpy(), "predicted_permutation": predicted.cpu().numpy(),
                "confidence": confidence.cpu().numpy().astype(np.float32)}

    def evaluate(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        def correct(x: torch.Tensor) -> dict[str, torch.Tensor]:
            shuffled, index = self.shuffled_batch(x, generator)
            return {"test_jigsaw_acc": (self.logits(shuffled).argmax(dim=1) == index).float()}

        return batched_eval(correct, images)
