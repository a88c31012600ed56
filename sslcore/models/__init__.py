"""Encoders (registry) and the heads pretext tasks put on top of them."""
from sslcore.models.encoders import ENCODERS, Encoder, build_encoder, channel_stats
from sslcore.models.heads import ConvDecoder, linear_classifier, projection_mlp

# Imported for its side effect: it registers `vit_tiny` in ENCODERS.
from sslcore.models import vit  # noqa: E402,F401  isort: skip

__all__ = ["ENCODERS", "Encoder", "build_encoder", "channel_stats", "ConvDecoder",
           "linear_classifier", "projection_mlp"]
