"""The lab panels the demo clinic orders, with LOINC codes, units and adult reference ranges.

Ranges are typical adult values from public references (MedlinePlus, NIH); a real clinic's
laboratory supplies its own with each result.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Analyte:
    loinc: str
    name: str
    unit: str
    low: float
    high: float
    decimals: int
    # Ranges that differ by sex: (female_low, female_high, male_low, male_high)
    by_sex: tuple[float, float, float, float] | None = None

    def range_for(self, sex: str) -> tuple[float, float]:
        if self.by_sex is None:
            return self.low, self.high
        female_low, female_high, male_low, male_high = self.by_sex
        return (male_low, male_high) if sex == "male" else (female_low, female_high)


@dataclass(frozen=True)
class Panel:
    loinc: str
    name: str
    analytes: tuple[Analyte, ...]


CBC = Panel(
    "58410-2",
    "Complete blood count (CBC)",
    (
        Analyte("6690-2", "White blood cells", "10*3/uL", 4.5, 11.0, 1),
        Analyte("718-7", "Hemoglobin", "g/dL", 12.0, 17.5, 1, (12.0, 15.5, 13.5, 17.5)),
        Analyte("4544-3", "Hematocrit", "%", 36.0, 50.0, 1, (36.0, 46.0, 41.0, 50.0)),
        Analyte("777-3", "Platelets", "10*3/uL", 150.0, 400.0, 0),
    ),
)
BMP = Panel(
    "51990-0",
    "Basic metabolic panel",
    (
        Analyte("2345-7", "Glucose", "mg/dL", 70.0, 99.0, 0),
        Analyte("2951-2", "Sodium", "mmol/L", 135.0, 145.0, 0),
        Analyte("2823-3", "Potassium", "mmol/L", 3.5, 5.1, 1),
        Analyte("2160-0", "Creatinine", "mg/dL", 0.6, 1.3, 2),
        Analyte("3094-0", "Urea nitrogen (BUN)", "mg/dL", 7.0, 20.0, 0),
        Analyte("17861-6", "Calcium", "mg/dL", 8.6, 10.3, 1),
    ),
)
LIPIDS = Panel(
    "57698-3",
    "Lipid panel",
    (
        Analyte("2093-3", "Total cholesterol", "mg/dL", 0.0, 200.0, 0),
        Analyte("2085-9", "HDL cholesterol", "mg/dL", 40.0, 100.0, 0),
        Analyte("13457-7", "LDL cholesterol", "mg/dL", 0.0, 100.0, 0),
        Analyte("2571-8", "Triglycerides", "mg/dL", 0.0, 150.0, 0),
    ),
)
A1C = Panel(
    "4548-4",
    "Hemoglobin A1c",
    (Analyte("4548-4", "Hemoglobin A1c", "%", 4.0, 5.6, 1),),
)
TSH = Panel(
    "3016-3",
    "Thyroid stimulating hormone (TSH)",
    (Analyte("3016-3", "TSH", "m[IU]/L", 0.4, 4.0, 2),),
)
CHLAMYDIA = Panel(
    "21613-5",
    "Chlamydia test",
    (Analyte("21613-5", "Chlamydia trachomatis DNA", "", 0.0, 0.0, 0),),
)

PANELS = (CBC, BMP, LIPIDS, A1C, TSH)


def interpretation(value: float, low: float, high: float) -> str:
    """HL7 interpretation code; critical when far outside the range."""
    span = max(high - low, abs(high) * 0.1, 1e-9)
    if value < low:
        return "LL" if value < low - span * 0.5 else "L"
    if value > high:
        return "HH" if value > high + span * 1.0 else "H"
    return "N"
