"""MAE, masked autoencoders (He et al. 2022): hide most patches of the image, and from the few visible
ones predict the pixels of the hidden ones.

The Vision Transformer encoder sees only the visible patches (a quarter of them by default), so the task
cannot be solved by copying neighbouring pixels: the model has to infer the missing parts of the object
from its visible parts. A light decoder puts a shared "mask" token at every hidden position and predicts
its pixels; the loss is the mean squared error on the hidden patches only. Needs a ViT encoder
(`vit_tiny`); the decoder is thrown away after pre-training.

The default decoder is two 3x3 convolutions over the grid of patches (as ConvNeXt V2's FCMAE), not MAE's
transformer blocks (``task.decoder = transformer``): on mnist5k, 10 epochs on 2 CPU cores, the transformer
decoder never got below guessing each pixel's mean value, while the convolutional one did within 2 epochs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from sslcore.config_schema import ConfigError, TaskConfig, param
from sslcore.models.vit import MLP_RATIO, ViTTiny, sincos_position_codes
from sslcore.pairing import DataRequirements
from sslcore.tasks._reconstruction import PANELS
from sslcore.tasks.base import PretextTask, StepOutput, batched_eval, register_task, to_uint8


@dataclass(frozen=True)
class MAEConfig(TaskConfig):
    mask_ratio: float = param(0.75, "Share of patches hidden from the encoder (MAE: 0.75). Below 1: some must stay "
                                    "visible.", min=0.05, max=0.95)
    decoder: str = param("conv", "The light decoder over the grid of patches: 'conv' (3x3 convolutions, as ConvNeXt "
                                 "V2's FCMAE; learns in a few epochs on small data) or 'transformer' (MAE's own).",
                         choices=("conv", "transformer"))
    decoder_dim: int = param(64, "Channels (token size) of the decoder.", choices=(32, 64, 128, 256))
    decoder_depth: int = param(2, "Layers of the decoder: 3x3 convolutions or transformer blocks (MAE uses 8 "
                                  "blocks on ImageNet).", min=1, max=8)
    norm_pix_loss: bool = param(False, "Score each hidden patch after normalising it by its own mean and std (MAE's "
                                       "variant for better features); the pictures then de-normalise the prediction "
                                       "with the true patch's statistics.", advanced=True)


class MAEPass(NamedTuple):
    """One mask -> encode -> decode pass. hidden: (B, L) bool; patches (B, L, P) with P = p * p * C pixels;
    ``error`` (B,): mean squared error over the hidden pixels, in [0, 1] pixel units."""

    hidden: torch.Tensor
    predicted_pixels: torch.Tensor
    loss: torch.Tensor
    error: torch.Tensor


def _decoder_blocks(config: MAEConfig) -> nn.Sequential | nn.ModuleList:
    """``decoder_depth`` layers of width ``decoder_dim``: 3x3 conv + GELU on the patch grid, or pre-norm
    transformer blocks on the token sequence."""
    d = config.decoder_dim
    if config.decoder == "conv":
        return nn.Sequential(*(m for _ in range(config.decoder_depth)
                               for m in (nn.Conv2d(d, d, 3, padding=1), nn.GELU())))
    return nn.ModuleList(nn.TransformerEncoderLayer(d, max(1, d // 32), MLP_RATIO * d, dropout=0.0, activation="gelu",
                                                    batch_first=True, norm_first=True)
                         for _ in range(config.decoder_depth))


@register_task("mae", "MAE on a ViT: hide most patches (mask ratio), encode only the visible ones, predict the "
                      "hidden pixels (He et al. 2022)")
class MaskedAutoencoderViT(PretextTask):
    Config = MAEConfig
    config: MAEConfig
    encoder: ViTTiny
    decoder_position: torch.Tensor  # a buffer (register_buffer), declared for the type checker
    display_name = "MAE"
    requires = DataRequirements(encoder_families=("vit",))
    panels = PANELS.retitled("input", "visible patches", explanation=(
        "Most patches of each test image are hidden (grey); the ViT encoder sees only the visible ones, and the "
        "decoder predicts the pixels of the hidden ones. The reconstruction shows the visible patches as given and "
        "the hidden ones as predicted; the error counts only the hidden pixels."))

    def __init__(self, encoder: ViTTiny, config: MAEConfig, image_shape: tuple[int, int, int]) -> None:
        if encoder.num_patches < 2:
            raise ConfigError(f"encoder.patch_size = {encoder.patch_size} is not allowed for task mae: expected a "
                              f"patch smaller than the {image_shape[1]}x{image_shape[2]} image, so some patches can "
                              "be hidden")
        super().__init__(encoder, config, image_shape)
        d, p, c = config.decoder_dim, encoder.patch_size, image_shape[0]
        self.decoder_embed = nn.Linear(encoder.feature_dim, d)
        self.mask_token = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.register_buffer("decoder_position", sincos_position_codes(encoder.grid, d)[None], persistent=False)
        self.decoder_blocks = _decoder_blocks(config)
        self.decoder_norm = nn.LayerNorm(d)
        self.decoder_pred = nn.Linear(d, p * p * c)

    # -- patches ---------------------------------------------------------------------------------
    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, L, p*p*C), patches in the encoder's token order (row-major)."""
        b, c, _, _ = images.shape
        (gh, gw), p = self.encoder.grid, self.encoder.patch_size
        return images.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 3, 5, 1).reshape(b, gh * gw, p * p * c)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, L, p*p*C) -> (B, C, H, W); the inverse of :meth:`patchify`."""
        b, c = patches.shape[0], self.image_shape[0]
        (gh, gw), p = self.encoder.grid, self.encoder.patch_size
        return patches.reshape(b, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, gh * p, gw * p)

    def pixel_mask(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden patches (B, L) -> hidden pixels (B, 1, H, W)."""
        p = self.encoder.patch_size
        grid = hidden.reshape(hidden.shape[0], *self.encoder.grid)
        return grid.repeat_interleave(p, 1).repeat_interleave(p, 2)[:, None]

    def random_split(self, batch: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """Indices of the visible patches (B, K), a random K of the L patches per image (per-sample shuffle by
        argsort)."""
        n = self.encoder.num_patches
        keep = min(n - 1, max(1, round(n * (1 - self.config.mask_ratio))))
        noise = torch.rand(batch, n, generator=generator, device=device)
        return noise.argsort(dim=1)[:, :keep]

    def hidden_patches(self, visible: torch.Tensor) -> torch.Tensor:
        """Visible patch indices (B, K) -> (B, L) bool, True where a patch is hidden."""
        hidden = torch.ones(visible.shape[0], self.encoder.num_patches, dtype=torch.bool, device=visible.device)
        return hidden.scatter_(1, visible, False)

    # -- the model -------------------------------------------------------------------------------
    def decode(self, latent: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """Encoder output (B, 1 + K, D) for the patches ``visible`` (B, K) -> predictions for every patch (B, L, P)."""
        x = self.decoder_embed(latent)
        b, d = x.shape[0], x.shape[2]
        full = self.mask_token.to(x.dtype).expand(b, self.encoder.num_patches, d).clone()
        full.scatter_(1, visible[..., None].expand(-1, -1, d), x[:, 1:])
        full = full + self.decoder_position.to(x.dtype)
        if self.config.decoder == "conv":  # the tokens as a (B, d, gh, gw) map: hidden patches see their neighbours
            grid = self.decoder_blocks(full.transpose(1, 2).reshape(b, d, *self.encoder.grid))
            return self.decoder_pred(self.decoder_norm(grid.flatten(2).transpose(1, 2)))
        x = torch.cat([x[:, :1], full], dim=1)
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x[:, 1:]))

    def forward_pass(self, images: torch.Tensor, generator: torch.Generator) -> MAEPass:
        """Mask, encode the visible patches, decode all of them; score the hidden ones."""
        tokens = self.encoder.embed_patches(images)
        visible = self.random_split(images.shape[0], generator, images.device)
        kept = tokens.gather(1, visible[..., None].expand(-1, -1, tokens.shape[2]))
        predicted = self.decode(self.encoder.encode_tokens(kept), visible).float()
        hidden = self.hidden_patches(visible)
        target = self.patchify(images.float())
        if self.config.norm_pix_loss:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            scale = (var + 1e-6).sqrt()
            loss = self._hidden_mean((predicted - (target - mean) / scale) ** 2, hidden)
            predicted = predicted * scale + mean  # pixels, with the true patch's statistics (as MAE's demo)
        else:
            loss = self._hidden_mean((predicted - target) ** 2, hidden)
        error = self._hidden_mean((predicted.clamp(0, 1) - target) ** 2, hidden)
        return MAEPass(hidden, predicted, loss, error)

    @staticmethod
    def _hidden_mean(squared: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Per-patch squared errors (B, L, P) -> (B,) mean over the hidden patches' pixels."""
        per_patch = squared.mean(dim=-1)
        return (per_patch * hidden).sum(dim=1) / hidden.sum(dim=1)

    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        return StepOutput(loss=self.forward_pass(images, generator).loss.mean())

    # -- what a person sees ----------------------------------------------------------------------
    def visible_input(self, images: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """The visible patches as given, the hidden ones mid-grey (B, C, H, W)."""
        return images.masked_fill(self.pixel_mask(hidden), 0.5)

    def make_views(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        hidden = self.hidden_patches(self.random_split(images.shape[0], generator, images.device))
        return {"original": images, "visible patches": self.visible_input(images, hidden)}

    def snapshot(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, np.ndarray]:
        p = self.forward_pass(images, generator)
        mask = self.pixel_mask(p.hidden)
        reconstruction = torch.where(mask, self.unpatchify(p.predicted_pixels).clamp(0, 1), images.float())
        return {"original": to_uint8(images), "input": to_uint8(self.visible_input(images, p.hidden)),
                "reconstruction": to_uint8(reconstruction), "error": p.error.cpu().numpy().astype(np.float32)}

    def evaluate(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        return batched_eval(lambda x: {"test_recon_mse": self.forward_pass(x, generator).error}, images)
