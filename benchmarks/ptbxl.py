"""PTB-XL (12 leads at 100 Hz): the codec on fold 10, PRDN per lead and per diagnostic superclass at each residual
stage count (``--rd``: a rate-distortion curve from one model), and the superclass-conditional prior's `tsvq eval`
figures (per class, TSTR/TRTR, 12-lead sheets).

    tsvq prepare --config recipes/ptbxl/prepare.yaml --source ../shared/data/ptbxl --out runs/ptbxl/store
    accelerate launch --config_file recipes/accelerate/cpu.yaml -m tsvq.cli \
        train codec --config recipes/ptbxl/codec.yaml
    accelerate launch --config_file recipes/accelerate/cpu.yaml -m tsvq.cli \
        train diffusion --config recipes/ptbxl/diffusion.yaml
    tsvq assemble --codec runs/ptbxl/codec/model --prior runs/ptbxl/diffusion/model --out runs/ptbxl/pipeline
    tsvq eval --pipeline runs/ptbxl/pipeline --data runs/ptbxl/store --n 300 --out runs/ptbxl/eval
    .venv/bin/python -m benchmarks.ptbxl --rd --report runs/ptbxl/eval

Units are patients; the compression ratio is against the 100 Hz release's 16-bit samples of 12 leads (19,200
bit/s)."""

from __future__ import annotations

from benchmarks.heldout import main

if __name__ == "__main__":
    main("ptbxl", 16 * 100 * 12, __doc__)
