"""``vit_tiny``: a small Vision Transformer (Dosovitskiy et al. 2021) for small images, shaped for MAE.

An image is cut into ``patch_size`` x ``patch_size`` patches; each is embedded linearly (a strided conv)
and given a fixed 2-D sine-cosine position code (as in MAE, He et al. 2022: nothing to learn about
positions from a few thousand images). A class token is prepended and ``depth`` pre-norm transformer
blocks run on the sequence. The features are the mean of the patch tokens after the final LayerNorm.

MAE runs the blocks on the visible patches only, so the two halves of ``forward`` are public:
:meth:`ViTTiny.embed_patches` (every patch's token, position included) and :meth:`ViTTiny.encode_tokens`
(the blocks on any subset of those tokens, plus the class token).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sslcore.config_schema import ConfigError
from sslcore.models.encoders import ENCODERS, Encoder

#: Hidden units of each block's MLP, as a multiple of the token size (ViT and MAE use 4).
MLP_RATIO = 4


def sincos_position_codes(grid: tuple[int, int], dim: int) -> torch.Tensor:
    """Fixed 2-D position codes (grid_h * grid_w, dim), row-major: half the dims code the row, half the column.

    ``dim`` must be a multiple of 4 (a sine and a cosine per frequency per axis).
    """
    quarter = dim // 4
    frequencies = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    rows, cols = torch.meshgrid(torch.arange(grid[0], dtype=torch.float32), torch.arange(grid[1], dtype=torch.float32),
                                indexing="ij")

    def code(position: torch.Tensor) -> torch.Tensor:
        angles = position.flatten()[:, None] * frequencies[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([code(rows), code(cols)], dim=1)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@ENCODERS.register("vit_tiny", "Small Vision Transformer: patches (patch_size) + class token, `depth` pre-norm blocks "
                               "of 4*width; features = mean patch token; the encoder for MAE")
class ViTTiny(Encoder):
    family = "vit"
    config_fields = ("depth", "patch_size")

    @classmethod
    def create(cls, sample_shape: tuple[int, ...], width: int, mean: torch.Tensor, std: torch.Tensor,
               depth: int = 2, patch_size: int = 4, **_: Any) -> ViTTiny:
        c, h, w = sample_shape
        return cls(c, (h, w), width, mean, std, patch_size=patch_size, depth=depth)

    @classmethod
    def settings_problem(cls, options: dict[str, Any], image_shape: tuple[int, ...]) -> str | None:
        patch, (h, w) = int(options.get("patch_size", 4)), image_shape[1:]
        if h % patch == 0 and w % patch == 0:
            return None
        allowed = [d for d in _divisors(h) if w % d == 0]
        return (f"encoder.patch_size = {patch} is not allowed: expected a patch size that divides the image side "
                f"({h}x{w} images): one of {', '.join(map(str, allowed))}")

    def __init__(self, in_channels: int, image_size: tuple[int, int], width: int, mean: torch.Tensor, std: torch.Tensor,
                 patch_size: int = 4, depth: int = 2) -> None:
        problem = self.settings_problem({"patch_size": patch_size}, (in_channels, *image_size))
        if problem is not None:
            raise ConfigError(problem)
        super().__init__(in_channels, mean, std)
        dim = 4 * width  # a multiple of 4, as the position codes need
        heads = 4 if dim >= 64 else 2 if dim >= 32 else 1
        self.feature_dim = dim
        self.patch_size = patch_size
        self.grid = (image_size[0] // patch_size, image_size[1] // patch_size)
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        # Not saved: a pure function of the grid, rebuilt with the encoder.
        self.register_buffer("position", sincos_position_codes(self.grid, dim)[None], persistent=False)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, MLP_RATIO * dim, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True)
            for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def embed_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] -> patch tokens (B, L, D) with their position codes, L = num_patches."""
        tokens = self.patch_embed(self.normalise(x)).flatten(2).transpose(1, 2)
        return tokens + self.position.to(tokens.dtype)

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Patch tokens (B, M, D), any subset in any order -> (B, 1 + M, D): the class token first, normalised."""
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1).to(tokens.dtype), tokens], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) in [0, 1] -> (B, feature_dim): the mean of the patch tokens."""
        return self.encode_tokens(self.embed_patches(x))[:, 1:].mean(dim=1)
