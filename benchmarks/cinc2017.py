"""CinC 2017 (single-lead handheld ECG): the codec on held-out recordings, PRDN per rhythm class (N, A, O, ~), and
the rhythm-conditional prior's `tsvq eval` figures (per class, TSTR/TRTR with atrial-fibrillation F1).

    tsvq prepare --config recipes/cinc2017/prepare.yaml --source ../shared/data/cinc2017 --out runs/cinc2017/store
    accelerate launch --config_file recipes/accelerate/cpu.yaml -m tsvq.cli \
        train codec --config recipes/cinc2017/codec.yaml
    accelerate launch --config_file recipes/accelerate/cpu.yaml -m tsvq.cli \
        train diffusion --config recipes/cinc2017/diffusion.yaml
    tsvq assemble --codec runs/cinc2017/codec/model --prior runs/cinc2017/diffusion/model --out runs/cinc2017/pipeline
    tsvq eval --pipeline runs/cinc2017/pipeline --data runs/cinc2017/store --n 300 --out runs/cinc2017/eval
    .venv/bin/python -m benchmarks.cinc2017 --report runs/cinc2017/eval

Each recording is its own unit (no patient ids were released); the compression ratio is against the database's
16-bit samples at 300 Hz (4800 bit/s)."""

from __future__ import annotations

from benchmarks.heldout import main

if __name__ == "__main__":
    main("cinc2017", 16 * 300, __doc__)
