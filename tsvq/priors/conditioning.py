"""The conditioning embedding both denoisers feed their blocks: the diffusion time step, plus the class label."""

from __future__ import annotations

import torch
from torch import nn


def condition_embedding(
    model: nn.Module, sample: torch.Tensor, timestep: torch.Tensor | int, class_labels: torch.Tensor | None
) -> torch.Tensor:
    """``(B, E)`` from ``model.time_proj``/``time_embedding`` and, for a conditional model, ``class_embedding``
    (a missing label is the model's ``null_class``, the "no label" token classifier-free guidance trains)."""
    batch = sample.shape[0]
    timestep = torch.as_tensor(timestep, device=sample.device)
    if timestep.ndim == 0:
        timestep = timestep.expand(batch)
    embedding = model.time_embedding(model.time_proj(timestep).to(sample.dtype))
    if model.class_embedding is not None:
        if class_labels is None:
            class_labels = torch.full((batch,), model.null_class, device=sample.device, dtype=torch.long)
        embedding = embedding + model.class_embedding(class_labels)
    return embedding
