"""Encoders (registry) and the heads pretext tasks put on top of them."""
from sslcore.models.encoders import ENCODERS, Encoder, build_encoder, channel_stats
from sslcore.models.heads import ConvDecoder, linear_classifier, projection_mlp

__all__ = ["ENCODERS", "Encoder", "build_encoder", "channel_stats", "ConvDecoder",
           "linear_classifier", "projection_mlp"]
