"""The ``register:`` step of ``sirt run``: one patient's moving study registered onto its fixed study.

Manifest (YAML; CSV: ``register_<key>`` columns)::

    register: {fixed: maa, moving: y90, transform: rigid, preset: ct, mask_segment: liver, qa_segment: liver, min_dice: 0.85}

When both studies have a ``ct``, the CTs are registered and the transform is applied to the moving
study's activity image (:func:`SIRTDosimetryLib.registration.register_case`); otherwise the two
activity images are registered. The moving study's segmentation is carried onto the fixed grid and
checked against the fixed study's segmentation. Results go to ``patients/<patient>/register/``;
the QA numbers become ``registration_*`` columns of the cohort table, and a patient whose
registration fails the gate is flagged there (``registration_qa`` = ``fail``), never dropped silently.
"""

from __future__ import annotations

from pathlib import Path

from SIRTDosimetryLib.errors import SIRTInputError, error_line

REGISTER_FOLDER = "register"


def run_registration(spec, folder: Path, fixed_activity: str, moving_activity: str) -> dict:
    """Register the manifest's pair for one patient into ``folder``; returns the QA columns and the folder.

    ``fixed_activity``, ``moving_activity``: the studies' activity images (those their doses come from).
    A failure (bad input, elastix error) is returned as ``registration_qa`` = ``error`` with its message.
    """
    from SIRTDosimetryLib.registration import QAGate, RegistrationSettings, register_case

    options = spec.registration
    fixed, moving = spec.studies[options["fixed"]], spec.studies[options["moving"]]
    both_ct = "ct" in fixed.images and "ct" in moving.images
    default_preset = "ct" if both_ct else ("pet" if moving_activity == moving.images.get("pet") else "spect")
    try:
        settings = RegistrationSettings(transform=options.get("transform", "rigid"), preset=options.get("preset", default_preset),
                                        **({"iterations": options["iterations"]} if "iterations" in options else {}))
        result = register_case(
            fixed_activity, moving_activity, folder,
            moving_segmentation=moving.segmentation, reference_segmentation=fixed.segmentation,
            fixed_ct=fixed.images["ct"] if both_ct else None, moving_ct=moving.images["ct"] if both_ct else None,
            settings=settings, gate=QAGate(options.get("min_dice", QAGate.min_dice)),
            qa_segment=options.get("qa_segment", "liver"), mask_segment=options.get("mask_segment"), overwrite=True,
        )
    except SIRTInputError as exc:
        return {"registration_qa": "error", "registration_error": error_line(exc), "registration_folder": str(folder)}
    return result.table_row() | {"registration_folder": str(folder)}


def add_registration_columns(table, rows: dict[str, dict]):
    """The cohort table with each patient's registration columns (patients without a registration get none)."""
    import pandas as pd

    if not rows:
        return table
    extra = pd.DataFrame([{"patient_id": str(pid), **row} for pid, row in rows.items()])
    return table.merge(extra, on="patient_id", how="left")
