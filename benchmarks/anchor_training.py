"""The training loop of the outside anchor (``anchors.py``), apart from the anchor's package so it can be tested
without it.

The wheel ships models and losses but no loop. A wall-clock budget is measured in one sitting. An epoch budget
(the authors' 2000 + 10000 epochs) is hours on a 2-core CPU, longer than a working session: with a checkpoint
path it saves its whole state (weights, optimiser, the shuffle's and the model's random generators, counters)
at the end of an epoch every few minutes, and a rerun resumes where it stopped, drawing the same batches and
masks as an unbroken run would.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from tsvq.io import atomic_file

OPTIMISER = {"lr": 1e-3, "weight_decay": 1e-5}  # the authors' AdamW (configs/config.yaml of ML4ITS/TimeVQVAE)
SAVE_EVERY_S = 600.0


def batches(windows: torch.Tensor, size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, bool]]:
    """Endless shuffled batches, one epoch after another (the authors' loader drops no window), each with whether
    it ends its epoch. The shuffle of an epoch is drawn when the epoch starts, so a generator saved at an epoch's
    end continues with the next epoch's order."""
    while True:
        order = torch.randperm(len(windows), generator=generator)
        for start in range(0, len(windows), size):
            yield windows[order[start : start + size]], start + size >= len(windows)


def _random_states() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _restore_random_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def train_stage(
    name: str,
    model: torch.nn.Module,
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    windows: torch.Tensor,
    batch_size: int,
    seconds: float | None,
    epochs: int | None,
    seed: int,
    checkpoint: Path | None = None,
    save_every_s: float = SAVE_EVERY_S,
) -> dict:
    """Train until the wall-clock or epoch budget is spent; returns steps, epochs, seconds (over every sitting),
    the last loss and how many sittings it took. ``checkpoint`` (epoch budgets only) is resumed from if it
    exists and saved at an epoch's end every ``save_every_s`` seconds and when the budget is spent."""
    if checkpoint is not None and epochs is None:
        raise ValueError(f"{name}: only an epoch budget resumes; a wall-clock budget is measured in one sitting")
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(parameters, **OPTIMISER)
    generator = torch.Generator().manual_seed(seed)
    steps, done_epochs, last, earlier_s, sittings = 0, 0, float("nan"), 0.0, 1
    if checkpoint is not None and checkpoint.exists():
        try:
            state = torch.load(checkpoint, weights_only=False)  # our own file; numpy's generator state is not a tensor
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
        except Exception as error:
            raise SystemExit(
                f"{checkpoint}: cannot resume from this checkpoint ({error}); delete it to start over"
            ) from error
        generator.set_state(state["shuffle"])
        _restore_random_states(state["random"])
        steps, done_epochs, last, earlier_s, sittings = (
            state[key] for key in ("steps", "epochs", "loss", "seconds", "sittings")
        )
        sittings += 0 if done_epochs >= epochs else 1
        print(
            f"  {name}: resumed from {checkpoint} at epoch {done_epochs} of {epochs} ({earlier_s / 3600:.2f} h so far)",
            flush=True,
        )

    def log() -> dict:
        return {
            "steps": steps,
            "epochs": done_epochs,
            "seconds": round(earlier_s + time.perf_counter() - started, 1),
            "final_loss": last,
            "sittings": sittings,
        }

    def save() -> None:
        progress = log()
        with atomic_file(checkpoint, "wb") as handle:  # a run killed while saving keeps the previous checkpoint
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "shuffle": generator.get_state(),
                    "random": _random_states(),
                    "steps": steps,
                    "epochs": done_epochs,
                    "loss": last,
                    "seconds": progress["seconds"],
                    "sittings": sittings,
                },
                handle,
            )

    started = saved = time.perf_counter()
    if epochs is not None and done_epochs >= epochs:
        return log()
    model.train()
    for batch, epoch_end in batches(windows, batch_size, generator):
        loss = loss_of(batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        steps, last = steps + 1, float(loss.detach())
        done_epochs += int(epoch_end)
        elapsed = time.perf_counter() - started
        if steps % 20 == 0:
            print(
                f"  {name}: step {steps}, epoch {done_epochs}, loss {last:.4f}, {earlier_s + elapsed:.0f} s", flush=True
            )
        finished = (seconds is not None and elapsed >= seconds) or (epochs is not None and done_epochs >= epochs)
        if checkpoint is not None and epoch_end and (finished or time.perf_counter() - saved >= save_every_s):
            save()
            saved = time.perf_counter()
        if finished:
            break
    return log()
