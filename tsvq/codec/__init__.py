"""The codec: a 1D convolutional VQ-VAE between signals and discrete codes."""

from tsvq.codec.model import VQVAE, CodecModelConfig, Encoded, as_signal_tensor
from tsvq.codec.quantizer import ResidualVectorQuantizer, VectorQuantizer, kmeans, nearest_codes

__all__ = [
    "VQVAE",
    "CodecModelConfig",
    "Encoded",
    "ResidualVectorQuantizer",
    "VectorQuantizer",
    "as_signal_tensor",
    "kmeans",
    "nearest_codes",
]
