"""tsvq: generative modelling of 1D biosignals with vector-quantized latents.

Data flows one way: ``tsvq.data`` -> ``tsvq.codec`` -> ``tsvq.priors`` -> ``tsvq.pipeline`` -> ``tsvq.evaluation``.
Signals at every public API are ``(B, L, C)`` float32 in physical units (mV for ECG).
"""

__version__ = "0.2.0"

from tsvq.errors import CheckpointError, ConfigError, DataError, TsvqError  # noqa: E402

__all__ = ["__version__", "TsvqError", "DataError", "CheckpointError", "ConfigError", "Pipeline", "list_pretrained"]


def __getattr__(name: str):
    # The pipeline pulls in diffusers (seconds to import); load it only when asked for.
    if name == "Pipeline":
        from tsvq.pipeline import Pipeline

        return Pipeline
    if name == "list_pretrained":
        from tsvq.pretrained import list_pretrained

        return list_pretrained
    raise AttributeError(name)
