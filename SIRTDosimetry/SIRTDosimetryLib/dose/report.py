"""The ``summary.json`` written beside every dose map."""

from __future__ import annotations

from pathlib import Path

from ..provenance import provenance, to_jsonable
from .engine import DoseParameters, DoseResult

SUMMARY_SCHEMA = "slicer-sirt/dose-summary/1"


def dose_summary(result: DoseResult, params: DoseParameters, inputs: dict[str, str | Path | None], outputs: dict[str, str]) -> dict:
    """Per-segment results plus everything needed to reproduce them."""
    nuclide = result.nuclide
    return {
        "schema": SUMMARY_SCHEMA,
        "method": params.method,
        "radionuclide": {
            "name": nuclide.name,
            "half_life_h": nuclide.half_life_h,
            "energy_per_activity_j_per_gbq": nuclide.energy_per_activity_j_per_gbq,
            "mean_beta_energy_mev": nuclide.mean_beta_energy_mev,
            "source": nuclide.source,
        },
        "kernel": result.kernel_source,
        "lung_dose_method": result.lung_dose_note,
        "monte_carlo": result.monte_carlo,
        "calibration": to_jsonable(result.calibration),
        "invalid_voxels": result.invalid_voxels,
        "warnings": result.warnings,
        "outputs": outputs,
        "segments": [to_jsonable(s) for s in result.segments],
        "lung": to_jsonable(result.lung) if result.lung is not None else None,
        "provenance": provenance(inputs, params),
    }
