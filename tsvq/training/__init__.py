"""Training: one accelerate loop (``loop.train``) and the stage tasks that use it."""

from tsvq.training.loop import TrainingConfig, list_checkpoints, train

__all__ = ["TrainingConfig", "list_checkpoints", "train"]
