"""The outside anchor's training loop (benchmarks/anchor_training.py): an epoch budget cut into sittings ends where
an unbroken run ends, so a multi-hour CPU run can stop with a session and go on in the next."""

import numpy as np
import pytest
import torch
from torch import nn

from benchmarks.anchor_training import train_stage


class NoisyModel(nn.Module):
    """Uses all three random generators a MaskGIT step uses (torch dropout, numpy ratios, the shuffle)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, 8))

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        weight = float(np.random.uniform(0.5, 1.5))
        return weight * (self.net(batch) - batch.flip(1)).pow(2).mean()


def fresh(seed: int = 0) -> NoisyModel:
    torch.manual_seed(seed)
    np.random.seed(seed)
    return NoisyModel()


WINDOWS = torch.randn(37, 8, generator=torch.Generator().manual_seed(1))


def test_an_epoch_budget_resumed_in_sittings_ends_where_an_unbroken_run_ends(tmp_path):
    unbroken = fresh()
    whole = train_stage("stage", unbroken, unbroken.loss, WINDOWS, 8, None, 6, seed=3)

    checkpoint = tmp_path / "stage.pt"
    first = fresh()
    # save at every epoch's end; stop after 2 epochs as a session ending would
    train_stage("stage", first, first.loss, WINDOWS, 8, None, 2, seed=3, checkpoint=checkpoint, save_every_s=0)
    torch.manual_seed(123)  # whatever the next sitting's process did before resuming must not matter
    np.random.seed(123)
    second = fresh(seed=99)  # other initial weights: the checkpoint's must win
    resumed = train_stage(
        "stage", second, second.loss, WINDOWS, 8, None, 6, seed=3, checkpoint=checkpoint, save_every_s=0
    )

    assert resumed["epochs"] == whole["epochs"] == 6 and resumed["steps"] == whole["steps"] and resumed["sittings"] == 2
    for a, b in zip(unbroken.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    again = fresh()  # a finished stage loads its weights and trains no further
    done = train_stage("stage", again, again.loss, WINDOWS, 8, None, 6, seed=3, checkpoint=checkpoint)
    assert done["steps"] == whole["steps"] and torch.equal(again.net[0].weight, unbroken.net[0].weight)


def test_a_wall_clock_budget_does_not_resume(tmp_path):
    model = fresh()
    with pytest.raises(ValueError, match="one sitting"):
        train_stage("stage", model, model.loss, WINDOWS, 8, 1.0, None, seed=0, checkpoint=tmp_path / "stage.pt")


def test_a_corrupt_checkpoint_names_the_file(tmp_path):
    checkpoint = tmp_path / "stage.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    model = fresh()
    with pytest.raises(SystemExit, match="stage.pt"):
        train_stage("stage", model, model.loss, WINDOWS, 8, None, 2, seed=0, checkpoint=checkpoint)
