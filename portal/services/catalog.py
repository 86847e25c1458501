"""Common laboratory tests with LOINC codes, units and adult reference ranges (pick-list, demo)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TestDefinition:
    loinc: str
    name: str
    units: str
    low: float | None
    high: float | None
    category: str
    panel: str
    critical_low: float | None = None
    critical_high: float | None = None
    #: Usual hours from collecting the sample to the result: what a result entered without a
    #: collection time is dated by (and how the demo dates its samples).
    turnaround_hours: int = 4

    @property
    def reference_range(self) -> str:
        bounds = [b for b in (self.low, self.high) if b is not None]
        # Whole numbers from 10 up print as such; smaller or fractional limits keep a decimal.
        places = 0 if all(b >= 10 and b == int(b) for b in bounds) else 1
        low, high = (None if b is None else f"{b:.{places}f}" for b in (self.low, self.high))
        if low and high:
            return f"{low}-{high}"
        if high:
            return f"<{high}"
        if low:
            return f">{low}"
        return ""


CATALOG: tuple[TestDefinition, ...] = (
    # Complete blood count
    TestDefinition(
        "6690-2", "White blood cells", "10*3/uL", 4.0, 11.0, "hematology", "CBC", 2.0, 30.0
    ),
    TestDefinition("789-8", "Red blood cells", "10*6/uL", 4.2, 5.9, "hematology", "CBC"),
    TestDefinition("718-7", "Hemoglobin", "g/dL", 12.0, 17.5, "hematology", "CBC", 7.0, 20.0),
    TestDefinition("4544-3", "Hematocrit", "%", 36.0, 52.0, "hematology", "CBC"),
    TestDefinition(
        "777-3", "Platelets", "10*3/uL", 150.0, 400.0, "hematology", "CBC", 50.0, 1000.0
    ),
    # Lipid panel
    TestDefinition(
        "2093-3", "Cholesterol, total", "mg/dL", None, 200.0, "chemistry", "Lipid panel"
    ),
    TestDefinition("2085-9", "HDL cholesterol", "mg/dL", 40.0, None, "chemistry", "Lipid panel"),
    TestDefinition(
        "13457-7", "LDL cholesterol (calculated)", "mg/dL", None, 100.0, "chemistry", "Lipid panel"
    ),
    TestDefinition("2571-8", "Triglycerides", "mg/dL", None, 150.0, "chemistry", "Lipid panel"),
    # Diabetes
    TestDefinition("4548-4", "Hemoglobin A1c", "%", 4.0, 5.6, "chemistry", "HbA1c"),
    TestDefinition(
        "2345-7", "Glucose", "mg/dL", 70.0, 99.0, "chemistry", "Basic metabolic panel", 40.0, 500.0
    ),
    # Basic metabolic panel
    TestDefinition(
        "2951-2",
        "Sodium",
        "mmol/L",
        135.0,
        145.0,
        "chemistry",
        "Basic metabolic panel",
        120.0,
        160.0,
    ),
    TestDefinition(
        "2823-3", "Potassium", "mmol/L", 3.5, 5.1, "chemistry", "Basic metabolic panel", 2.5, 6.5
    ),
    TestDefinition("2160-0", "Creatinine", "mg/dL", 0.6, 1.3, "chemistry", "Basic metabolic panel"),
    TestDefinition(
        "3094-0", "Urea nitrogen (BUN)", "mg/dL", 7.0, 20.0, "chemistry", "Basic metabolic panel"
    ),
    # Thyroid
    TestDefinition(
        "3016-3", "Thyroid stimulating hormone (TSH)", "m[IU]/L", 0.4, 4.0, "chemistry", "Thyroid"
    ),
    # Genetic (sensitive: never auto-released in the demo policy)
    TestDefinition(
        "21636-6",
        "BRCA1 gene mutations",
        "",
        None,
        None,
        "genetic",
        "Genetic",
        turnaround_hours=336,
    ),
    # Sexual health (sensitive: never auto-released; never shown to a teenager's parent)
    TestDefinition(
        "43304-5",
        "Chlamydia trachomatis rRNA [Presence] in Specimen by NAA with probe detection",
        "",
        None,
        None,
        "sexual_health",
        "Sexual health",
        turnaround_hours=48,
    ),
)

BY_CODE: dict[str, TestDefinition] = {t.loinc: t for t in CATALOG}


# --- Units as people write them ------------------------------------------------------------------

#: Whole UCUM codes whose usual written form is not a mechanical rewrite.
_UCUM_WORDS: dict[str, str] = {
    "[IU]": "IU",
    "m[IU]/L": "mIU/L",
    "u[IU]/mL": "µIU/mL",
    "[IU]/L": "IU/L",
    "10*3/uL": "10³/µL",
    "10*6/uL": "10⁶/µL",
    "10*9/L": "10⁹/L",
    "10*12/L": "10¹²/L",
    "Cel": "°C",
    "[degF]": "°F",
    "mm[Hg]": "mmHg",
    "/[HPF]": "/HPF",
    "{ratio}": "ratio",
}
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_POWER = re.compile(r"10\*(-?\d+)")
_MICRO = re.compile(r"(?<![A-Za-z])u(?=[A-Za-z])")  # the UCUM "u" prefix: uL, umol, ug
_BRACKETS = re.compile(r"\{([^}]*)\}|\[([^\]]*)\]")


def human_units(code: str | None) -> str:
    """A UCUM code as people write it (`10*3/uL` → `10³/µL`, `m[IU]/L` → `mIU/L`), for pages
    only: data, the API and exports keep the code. Unknown text comes back unchanged but
    for the mechanical rewrites (powers of ten, micro, brackets)."""
    if not code:
        return ""
    if code in _UCUM_WORDS:
        return _UCUM_WORDS[code]
    text = _POWER.sub(lambda m: "10" + m[1].translate(_SUPERSCRIPT), code)
    text = _MICRO.sub("µ", text)
    # Annotations (`{cells}`) and bracketed units (`[iU]`) read as their content.
    return _BRACKETS.sub(lambda m: (m[1] or m[2] or "").replace("_", " "), text).strip() or code
