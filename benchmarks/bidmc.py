"""BIDMC PPG (PLETH, 125 Hz): the codec on held-out ICU patients, the pulse rate of its reconstructions against the
originals', and the prior's `tsvq eval` figures (pulse peaks stand in for ECG beats; no ECG morphology).

    tsvq prepare --config recipes/bidmc/prepare.yaml --source ../shared/data/bidmc --out runs/bidmc/store
    accelerate launch --config_file recipes/accelerate/cpu.yaml -m tsvq.cli \
        train codec --config recipes/bidmc/codec.yaml
    accelerate launch --config_file recipes/accelerate/cpu.yaml -m tsvq.cli \
        train diffusion --config recipes/bidmc/diffusion.yaml
    tsvq assemble --codec runs/bidmc/codec/model --prior runs/bidmc/diffusion/model --out runs/bidmc/pipeline
    tsvq eval --pipeline runs/bidmc/pipeline --data runs/bidmc/store --n 300 --out runs/bidmc/eval
    .venv/bin/python -m benchmarks.bidmc --report runs/bidmc/eval

Units are patients; the compression ratio is against the database's 16-bit samples at 125 Hz (2000 bit/s)."""

from __future__ import annotations

import numpy as np

from benchmarks.heldout import main
from tsvq.evaluation.physiology import beat_source


def pulse_rate_kept(store, windows: np.ndarray, reconstruction: np.ndarray) -> dict:
    """How far the pulse rate of each reconstructed window is from the original's (detector of `tsvq eval`)."""
    source = beat_source(store.channel_names, store.units)
    original, kept = (source.rhythm(x, store.sampling_rate_hz)["heart_rate_bpm"] for x in (windows, reconstruction))
    error = np.abs(original - kept)
    error = error[np.isfinite(error)]
    print(
        f"  pulse rate of reconstructions vs originals: median |error| {np.median(error):.2f} per minute, "
        f"{100 * np.mean(error < 2):.1f}% within 2 per minute ({len(error)} windows)"
    )
    return {
        "pulse_rate_reconstruction": {
            "median_abs_error_per_minute": float(np.median(error)),
            "share_within_2_per_minute": float(np.mean(error < 2)),
            "windows": int(len(error)),
        }
    }


if __name__ == "__main__":
    main("bidmc", 16 * 125, __doc__, extra=pulse_rate_kept)
