"""One accelerate training loop for every stage (codec, diffusion prior, WaveNet prior).

It reads like plain PyTorch, in the manner of accelerate's examples: ``prepare``, ``accumulate``, ``clip``,
``save_state``/``load_state``. The same code runs on CPU, one GPU or many (``accelerate launch``), with bf16/fp16
autocast and gradient accumulation. A stage supplies a :class:`Task`: its model, datasets, loss, validation
and how to save its folder.

Crash safety: checkpoints are written under a temporary name and renamed when complete, so a process killed
at any moment leaves only finished checkpoints; the next run of the same command resumes from the newest, with
model, optimiser, LR schedule, EMA, RNG states and data order restored.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, broadcast, gather_object, set_seed
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from tsvq import plots
from tsvq.config import check_ranges
from tsvq.errors import CheckpointError, ConfigError, DataError
from tsvq.io import check_output_path, claim_workspace, output_lock, removed_if_refused, write_json
from tsvq.training.trackers import JSONLinesTracker, read_metrics

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class TrainingConfig:
    """Optimisation and bookkeeping, shared by every stage."""

    output_dir: str = "runs/stage"
    max_steps: int = 2000
    batch_size: int = 32
    learning_rate: float = 3e-4
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.99)
    lr_schedule: str = "cosine"  # cosine | constant
    warmup_steps: int = 100
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    mixed_precision: str | None = None  # no | fp16 | bf16; None: as `accelerate launch` / `accelerate config` set it
    seed: int = 0
    eval_every: int = 250
    checkpoint_every: int = 250
    checkpoints_to_keep: int = 2
    log_every: int = 10
    num_workers: int = 0
    log_with: list[str] = field(default_factory=lambda: ["jsonl", "tensorboard"])  # tensorboard only if installed
    resume: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        check_ranges(
            self,
            positive=(
                "max_steps",
                "batch_size",
                "learning_rate",
                "gradient_accumulation_steps",
                "eval_every",
                "checkpoint_every",
                "log_every",
            ),
            non_negative=("weight_decay", "warmup_steps", "max_grad_norm", "checkpoints_to_keep", "num_workers"),
            choices={"lr_schedule": ("cosine", "constant"), "mixed_precision": (None, "no", "fp16", "bf16")},
        )
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise ConfigError(f"adam_betas = {list(self.adam_betas)}: expected two numbers in [0, 1)")


class Task(Protocol):
    """What a stage gives the loop."""

    model: torch.nn.Module
    train_dataset: Dataset
    best_metric: str  # validation figure to minimise; the best model folder is kept by it
    config: Any  # the stage's dataclass config (store, model, augmentation, training): recorded with the run

    def loss(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]: ...

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]: ...

    def save(self, model: torch.nn.Module, folder: Path) -> None: ...

    def after_step(self, model: torch.nn.Module) -> None: ...

    def checkpoint_objects(self) -> list[Any]: ...


class ModelFolderTask:
    """What most stages' tasks share: the best model saved with its own ``save_pretrained`` into a folder written
    whole or not at all, no per-step work, no extra checkpoint state."""

    def save(self, model, folder: Path) -> None:
        from tsvq.io import atomic_directory

        with atomic_directory(folder) as tmp:
            model.save_pretrained(tmp)

    def after_step(self, model) -> None:
        pass

    def checkpoint_objects(self) -> list:
        return []


class TrainingState:
    """Step counter, best validation figure and the training time so far, saved in every checkpoint.

    The time and windows seen travel with the checkpoint so a run resumed after an interruption reports the
    throughput of all its steps, not only of the last stretch.
    """

    def __init__(self):
        self.step = 0
        self.best = math.inf
        self.seconds = 0.0
        self.windows = 0

    def state_dict(self) -> dict:
        return {"step": self.step, "best": self.best, "seconds": self.seconds, "windows": self.windows}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.best = int(state["step"]), float(state["best"])
        # checkpoints written before the time was kept resume with the clock at zero
        self.seconds, self.windows = float(state.get("seconds", 0.0)), int(state.get("windows", 0))


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Finished checkpoints, oldest first (folders being written have a temporary name and are ignored)."""
    folder = Path(output_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := CHECKPOINT_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def _trackers(names: list[str], logging_dir: Path) -> list:
    trackers: list = []
    for name in names:
        if name == "jsonl":
            trackers.append(JSONLinesTracker("tsvq", logging_dir))
        elif name == "tensorboard":
            try:
                import tensorboard  # noqa: F401
            except ImportError:
                continue
            trackers.append("tensorboard")
        else:
            trackers.append(name)
    return trackers


def _scheduler(optimizer, config: TrainingConfig, num_processes: int):
    from diffusers.optimization import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

    # accelerate steps a prepared scheduler once per process per optimiser step; scale the horizon to match.
    warmup, total = config.warmup_steps * num_processes, config.max_steps * num_processes
    if config.lr_schedule == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup, total)
    if config.lr_schedule == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup)
    raise ConfigError(f"unknown lr_schedule '{config.lr_schedule}' (cosine or constant)")


def _save_checkpoint(accelerator: Accelerator, output_dir: Path, step: int, keep: int) -> None:
    folder = output_dir / "checkpoints"
    final = folder / f"checkpoint-{step:07d}"
    temporary = folder / f".checkpoint-{step:07d}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(temporary, final)
        for old in list_checkpoints(output_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def train(task: Task, config: TrainingConfig) -> Path:
    """Train ``task.model``; returns the stage folder (``<output_dir>/model``) holding the best model.

    ``output_dir`` must be new, empty or a folder tsvq made; one run at a time writes it (a lock file).
    """
    output_dir = claim_output_dir(config, getattr(task.config, "store", None), getattr(task.config, "codec", None))
    # the launcher's RANK, not accelerate's state: that is made by the Accelerator below, with its settings
    with output_lock(output_dir) if os.environ.get("RANK", "0") == "0" else contextlib.nullcontext():
        return _train(task, config, output_dir)


def train_stage(make_task: Callable[[Any], Task], config: Any) -> Path:
    """Seed, build a stage's task from its config and train it (every ``train_<stage>``); a run refused before it
    wrote anything leaves no output folder behind."""
    set_seed(config.training.seed)  # before the model exists, so its initial weights are reproducible
    with removed_if_refused(config.training.output_dir):
        return train(make_task(config), config.training)


def claim_output_dir(config: TrainingConfig, *inputs) -> Path:
    """The run's folder, checked before anything is written to it (tasks call it before caching their data): new,
    empty or tsvq's own, and apart from the store and codec it reads."""
    output_dir = Path(config.output_dir)
    check_output_path(output_dir, inputs, "training output folder", replaced=False)
    check_output_path(output_dir / "model", inputs, "model folder")
    return claim_workspace(output_dir, "training output folder")


def _train(task: Task, config: TrainingConfig, output_dir: Path) -> Path:
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=_trackers(config.log_with, output_dir / "logs"),
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
    )
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes == 1:
        # Each process would train alone and all would write the same checkpoints: refuse instead.
        raise ConfigError(
            f"{launched} processes were launched but each sees only itself; on CPU-only machines "
            "launch with ACCELERATE_USE_CPU=1 (see recipes/accelerate/cpu_2proc.yaml)"
        )
    set_seed(config.seed)
    # The loader draws its worker seeds from its own generator, so resuming does not shift the global RNG.
    loader = DataLoader(
        task.train_dataset,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=config.num_workers,
        generator=torch.Generator().manual_seed(config.seed),
    )
    if len(loader) < config.gradient_accumulation_steps:
        raise DataError(
            f"the training split has {len(task.train_dataset)} windows: fewer than one batch of "
            f"{config.batch_size} x {config.gradient_accumulation_steps} accumulation steps"
        )
    optimizer = torch.optim.AdamW(
        task.model.parameters(),
        lr=config.learning_rate,
        betas=tuple(config.adam_betas),
        weight_decay=config.weight_decay,
        foreach=True,
    )
    scheduler = _scheduler(optimizer, config, accelerator.num_processes)
    model, optimizer, loader, scheduler = accelerator.prepare(task.model, optimizer, loader, scheduler)
    state = TrainingState()
    extras = task.checkpoint_objects()
    for extra in extras:  # e.g. EMA weights: they must live where the model now lives
        if hasattr(extra, "to"):
            extra.to(accelerator.device)
    accelerator.register_for_checkpointing(state, *extras)
    stage_config = asdict(task.config)  # how this run was made, beyond the loop's own settings
    flat = {k: v for k, v in stage_config.items() if k != "training"} | asdict(config)
    accelerator.init_trackers("tsvq", config={k: str(v) for k, v in flat.items()})

    checkpoints = list_checkpoints(output_dir)
    if config.resume and checkpoints:
        try:
            accelerator.load_state(str(checkpoints[-1]))
        except Exception as error:
            raise CheckpointError(
                f"{checkpoints[-1]}: cannot resume from this checkpoint ({error}); delete it or train with resume=False"
            ) from error
        accelerator.print(f"resumed from {checkpoints[-1]} at step {state.step}")

    steps_per_epoch = max(1, len(loader) // config.gradient_accumulation_steps)
    started, windows_seen = time.time(), 0  # this stretch; the state holds the earlier ones
    resumed_at, earlier_seconds, earlier_windows = state.step, state.seconds, state.windows

    def clock() -> None:
        state.seconds, state.windows = earlier_seconds + time.time() - started, earlier_windows + windows_seen

    progress = tqdm(
        total=config.max_steps,
        initial=state.step,
        desc=f"train {output_dir.name}",
        unit="step",
        disable=not (config.progress and accelerator.is_local_main_process),
    )
    model.train()
    logs: dict[str, float] = {}
    batches = loader
    while state.step < config.max_steps:
        epoch, done_in_epoch = divmod(state.step, steps_per_epoch)
        batches = (
            accelerator.skip_first_batches(loader, done_in_epoch * config.gradient_accumulation_steps)
            if done_in_epoch
            else loader
        )
        batches.set_epoch(epoch)  # the seeded shuffle of this epoch, also on a resumed (skipping) loader
        for batch in batches:
            with accelerator.accumulate(model):
                loss, logs = task.loss(model, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm:
                    logs["grad_norm"] = float(accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm))
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            windows_seen += config.batch_size * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            task.after_step(accelerator.unwrap_model(model))
            state.step += 1
            progress.update(1)
            if state.step % config.log_every == 0 or state.step == config.max_steps:
                logs |= {
                    "loss": float(loss.detach()),
                    "lr": scheduler.get_last_lr()[0],
                    "windows_per_s": windows_seen / max(time.time() - started, 1e-9),
                }  # current speed
                accelerator.log(logs, step=state.step)
                progress.set_postfix({k: f"{v:.3g}" for k, v in logs.items() if k in ("loss", "perplexity", "usage")})
            if state.step % config.eval_every == 0 or state.step == config.max_steps:
                _validate_and_keep_best(accelerator, task, model, state, output_dir)
            if state.step % config.checkpoint_every == 0 or state.step == config.max_steps:
                clock()
                _save_checkpoint(accelerator, output_dir, state.step, config.checkpoints_to_keep)
            if state.step >= config.max_steps:
                break
    progress.close()
    clock()
    rank_hashes = gather_object([state_hash(accelerator.unwrap_model(model))])
    rank_best = gather_object([state.best])
    if len(set(rank_hashes)) > 1:
        accelerator.print(f"warning: model states differ across ranks: {rank_hashes}")
    if accelerator.is_main_process and not (output_dir / "model").exists():
        task.save(accelerator.unwrap_model(model), output_dir / "model")
    if accelerator.is_main_process:
        write_json(
            output_dir / "training_summary.json",
            {
                "steps": state.step,
                "best_" + task.best_metric: state.best,
                "rank_best": rank_best,
                "seconds": round(state.seconds, 2),
                "windows": state.windows,
                "windows_per_s": round(state.windows / max(state.seconds, 1e-9), 2),
                "resumed_at_step": resumed_at,
                "num_processes": accelerator.num_processes,
                "device": str(accelerator.device),
                "mixed_precision": accelerator.mixed_precision,
                "rank_state_hashes": rank_hashes,
                "config": asdict(config),
                "stage_config": stage_config,
            },
        )
        plots.training_curves(read_metrics(output_dir / "logs"), output_dir / "training_curves.png", output_dir.name)
    accelerator.wait_for_everyone()
    # The DDP wrapper's reducer holds the process group. Dropped after end_training destroyed the group, the reducer
    # would run the group's destructor itself, holding the GIL while it joins gloo's threads, one of which may need
    # the GIL to free the last collective's tensors: a deadlock at exit, seen in 2-process CPU runs. Released here
    # first, the group's own destructor (which lets go of the GIL) runs last.
    accelerator.free_memory()
    del model, optimizer, loader, scheduler, batches
    gc.collect()
    accelerator.end_training()
    return output_dir / "model"


def state_hash(model: torch.nn.Module, leave_out: str | None = None) -> str:
    """Hash of every parameter and buffer (but those whose name starts with ``leave_out``): equal on all ranks when
    distributed training kept them in sync."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if leave_out is not None and name.startswith(leave_out):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _validate_and_keep_best(accelerator, task, model, state, output_dir) -> None:
    unwrapped = accelerator.unwrap_model(model)
    if accelerator.is_main_process:
        unwrapped.eval()
        metrics = task.evaluate(unwrapped)
        unwrapped.train()
        accelerator.log({f"val/{k}": v for k, v in metrics.items()}, step=state.step)
        figure = metrics.get(task.best_metric, math.inf)
        if figure <= state.best or not (output_dir / "model").exists():
            state.best = min(figure, state.best)
            task.save(unwrapped, output_dir / "model")
    accelerator.wait_for_everyone()
    # only the main process evaluated: every rank takes its "best", so checkpoints agree everywhere
    if accelerator.num_processes > 1:
        state.best = float(broadcast(torch.tensor([state.best], device=accelerator.device), from_process=0)[0])
