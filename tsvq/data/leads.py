"""Standard ECG lead names, so windows of one electrode placement carry one label across databases.

Databases name one lead differently (MIT-BIH's modified limb lead ``MLII`` is lead II; PTB-XL writes ``AVR`` for
aVR); a lead-conditional prior needs one name for each. A channel whose placement is not a standard lead (BIDMC's
unspecified chest lead ``V``, a handheld device's ``ECG``) gets no label unless the recipe names it. Four limb leads
are sums of I and II (``with_derived_limb_leads``): a 12-lead codec codes eight leads and derives the rest.
"""

from __future__ import annotations

import numpy as np

STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
_BY_UPPER = {lead.upper(): lead for lead in STANDARD_LEADS}
_PREFIXES = ("ECG ", "LEAD ", "ML")  # "ECG II", "Lead II", MIT-BIH's modified limb leads MLI, MLII, MLIII


def lead_label(channel_name: str, names: dict[str, str] | None = None) -> str:
    """The label of a lead: ``names[channel_name]`` where given (a recipe's own names, e.g. ``{ECG: handheld}``),
    else its standard name (``MLII`` -> ``II``, ``AVR`` -> ``aVR``), else "" (no label)."""
    if names and channel_name in names:
        return str(names[channel_name])
    upper = channel_name.strip().upper()
    if upper in _BY_UPPER:
        return _BY_UPPER[upper]
    for prefix in _PREFIXES:
        if upper.startswith(prefix) and upper[len(prefix) :].strip() in _BY_UPPER:
            return _BY_UPPER[upper[len(prefix) :].strip()]
    return ""


INDEPENDENT_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")  # the other four follow from I and II
LIMB_LEADS_FROM_I_II = {"III": (-1.0, 1.0), "aVR": (-0.5, -0.5), "aVL": (1.0, -0.5), "aVF": (-0.5, 1.0)}


def with_derived_limb_leads(signal: np.ndarray, channel_names: list[str]) -> tuple[np.ndarray, list[str]]:
    """``signal`` ``(L, C)`` with III, aVR, aVL and aVF appended, computed from its leads I and II (Einthoven's
    and Goldberger's identities: III = II - I, aVR = -(I + II) / 2, aVL = I - II / 2, aVF = II - I / 2). Why: a
    12-lead ECG holds eight independent leads; a codec that codes those eight gives the other four exactly as the
    electrodes would, for no bits. Leads the recording already has are not added again."""
    labels = [lead_label(name) for name in channel_names]
    if "I" not in labels or "II" not in labels:
        raise ValueError(f"deriving limb leads needs leads I and II; the recording holds {', '.join(channel_names)}")
    lead_i, lead_ii = signal[:, labels.index("I")], signal[:, labels.index("II")]
    added = [lead for lead in LIMB_LEADS_FROM_I_II if lead not in labels]
    columns = [a * lead_i + b * lead_ii for a, b in (LIMB_LEADS_FROM_I_II[lead] for lead in added)]
    return np.column_stack([signal, *columns]).astype(signal.dtype), [*channel_names, *added]


def codes_independent_leads(channel_names: list[str]) -> bool:
    """Whether ``channel_names`` are the eight independent leads of a 12-lead ECG and none of the four derived."""
    labels = {lead_label(name) for name in channel_names}
    return set(INDEPENDENT_LEADS) <= labels and not labels & set(LIMB_LEADS_FROM_I_II)
