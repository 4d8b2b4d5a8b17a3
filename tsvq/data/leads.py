"""Standard ECG lead names, so windows of one electrode placement carry one label across databases.

Databases name one lead differently (MIT-BIH's modified limb lead ``MLII`` is lead II; PTB-XL writes ``AVR`` for
aVR); a lead-conditional prior needs one name for each. A channel whose placement is not a standard lead (BIDMC's
unspecified chest lead ``V``, a handheld device's ``ECG``) gets no label unless the recipe names it.
"""

from __future__ import annotations

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
