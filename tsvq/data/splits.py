"""Patient-wise splits: every window of a group (patient) lands in one split, never two."""

from __future__ import annotations

import numpy as np

from tsvq.errors import DataError

SPLITS = ("train", "val", "test")


def assign_group_splits(
    groups: list[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    test_groups: list[str] | None = None,
    val_groups: list[str] | None = None,
    strata: dict[str, str] | None = None,
) -> dict[str, str]:
    """Map each group to a split. Named groups go where asked; the rest are shuffled (seeded) and cut by count,
    within each stratum when ``strata`` (group -> e.g. its class) is given, so every class is split alike."""
    unique = sorted(set(groups))
    test_groups, val_groups = list(test_groups or []), list(val_groups or [])
    for name in test_groups + val_groups:
        if name not in unique:
            raise DataError(f"split: group '{name}' was asked for but no record belongs to it; groups: {unique}")
    assignment = {g: "test" for g in test_groups} | {g: "val" for g in val_groups}
    rest = [g for g in unique if g not in assignment]
    fractions = (0 if test_groups else test_fraction, 0 if val_groups else val_fraction)  # named groups replace them
    rng = np.random.default_rng(seed)
    if strata is None:
        return assignment | _cut(rest, *fractions, len(unique), rng)
    for stratum in sorted({strata[g] for g in rest}):
        members = [g for g in rest if strata[g] == stratum]
        assignment |= _cut(members, *fractions, len(members), rng, f" of '{stratum}'")
    return assignment


def _cut(rest: list[str], test_fraction: float, val_fraction: float, total: int, rng, what: str = "") -> dict[str, str]:
    """Shuffle ``rest`` and give test and val their share of ``total`` groups (at least one each if asked)."""
    order = rng.permutation(len(rest))
    rest = [rest[i] for i in order]
    n_test = max(int(round(test_fraction * total)), 1) if test_fraction > 0 else 0
    n_val = max(int(round(val_fraction * total)), 1) if val_fraction > 0 else 0
    if n_test + n_val >= len(rest):
        raise DataError(
            f"split: {total} group(s){what} {sorted(rest)[:8]} cannot give train, val and test their own patients; "
            "use more records, smaller fractions, or split_by='time' for a single patient"
        )
    return (
        {g: "test" for g in rest[:n_test]}
        | {g: "val" for g in rest[n_test : n_test + n_val]}
        | {g: "train" for g in rest[n_test + n_val :]}
    )


def splits_from_label(labels_of_group: dict[str, set[str]], label: str, values: dict[str, list]) -> dict[str, str]:
    """Map each group to a split by a record label, e.g. PTB-XL's ``strat_fold`` (1-8 train, 9 val, 10 test).

    A patient whose records carry values of two splits would straddle them; that is refused, never resolved silently.
    """
    unknown = sorted(set(values) - set(SPLITS))
    if unknown:
        raise DataError(f"split_values: unknown split(s) {unknown}; choose from {SPLITS}")
    split_of_value = {str(v): split for split, listed in values.items() for v in listed}
    assignment = {}
    for group, found in labels_of_group.items():
        splits = {split_of_value.get(v) for v in found}
        if None in splits:
            missing = sorted(v for v in found if v not in split_of_value)
            raise DataError(f"split: group '{group}' has {label} value(s) {missing} that split_values does not place")
        if len(splits) > 1:
            raise DataError(
                f"split: group '{group}' has records in {sorted(splits)} by '{label}'; a patient must stay in one split"
            )
        assignment[group] = splits.pop()
    return assignment


def time_split_bounds(length: int, val_fraction: float, test_fraction: float) -> dict[str, tuple[int, int]]:
    """Contiguous time blocks of one record: train first, then val, then test (no shuffling across time)."""
    train_end = int(length * (1 - val_fraction - test_fraction))
    val_end = int(length * (1 - test_fraction))
    return {"train": (0, train_end), "val": (train_end, val_end), "test": (val_end, length)}
