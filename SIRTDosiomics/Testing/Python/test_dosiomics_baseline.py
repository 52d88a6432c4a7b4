"""The SIRTDosiomics wrapper against pyradiomics' own baseline values (breast1 test case).

Same image, mask and settings as the baseline, run through the wrapper's planning/extraction path
(cropping, per-class tasks, shape task, B-spline resampling through pyradiomics' loader, shape-2D
on the largest slice): every value must agree with the published baseline.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SIRTDosiomicsLib.extract import Planner, assemble, run_serial
from SIRTDosiomicsLib.masks import StructureMask
from SIRTDosiomicsLib.presets import FEATURE_CLASSES, ImageSettings, Preset

DATA = Path(__file__).resolve().parents[3] / "Testing" / "Data" / "pyradiomics"
TOLERANCE = 1e-9  # relative; measured ~3e-12 (the baseline was written by pyradiomics 2.x)


def _baseline() -> tuple[dict[str, dict[str, float]], dict]:
    values: dict[str, dict[str, float]] = {}
    with open(DATA / "baseline_breast1.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            values.setdefault(row["case"], {})[row["feature"]] = float(row["value"])
    return values, json.loads((DATA / "baseline_breast1_settings.json").read_text())


def _preset(settings: dict, shape2d: bool = False, classes=FEATURE_CLASSES) -> Preset:
    s = dict(settings)
    bin_width = s.pop("binWidth", 25)  # pyradiomics' default bin width
    resample = s.pop("resampledPixelSpacing", None)
    interpolator = s.pop("interpolator", None) or "sitkBSpline"
    for key in ("additionalInfo", "label", "resegmentRange", "force2D", "binCount"):
        s.pop(key, None)
    image = ImageSettings(bin_width=float(bin_width), resample_mm=tuple(resample) if resample else None, interpolator=interpolator)
    return Preset(name="baseline", description="pyradiomics baseline settings", images={"ct": image}, classes=tuple(classes),
                  shape2d=shape2d, structures=("tumour",), pyradiomics=s)


def _extract(preset: Preset) -> dict[str, float]:
    image = sitk.ReadImage(str(DATA / "breast1_image.nrrd"))  # int16, as in pyradiomics' tests
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(DATA / "breast1_label.nrrd"))) == 1
    planner = Planner(preset, "breast1")
    planner.add_image("y90", "ct", image, {"tumour": StructureMask(label)})
    row = assemble(preset, planner.feature_sets, run_serial(planner.tasks))
    assert row["y90_ct_tumour_error"] == "", row["y90_ct_tumour_error"]
    return {k[len("y90_ct_tumour_"):]: v for k, v in row.items() if k.startswith("y90_ct_tumour_")}


def _relative_differences(expected: dict[str, float], got: dict[str, float]) -> dict[str, float]:
    out = {}
    for key, ref in expected.items():
        name = key[len("original_"):]
        value = got[name]
        out[name] = abs(value - ref) / abs(ref) if ref != 0 else abs(value)
    return out


@pytest.mark.parametrize("case", ["breast1", "breast1_resampling"])
def test_107_features_match_pyradiomics_baseline(case):
    values, settings = _baseline()
    assert settings[case]["image_hash"] == sitk.Hash(sitk.ReadImage(str(DATA / "breast1_image.nrrd")))
    got = _extract(_preset(settings[case]["settings"]))
    expected = values[case]
    assert len(expected) == 107
    diffs = _relative_differences(expected, got)
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] < TOLERANCE, f"{case}: {worst} differs by {diffs[worst]:.3g} (relative)"


def test_shape2d_on_largest_slice_matches_pyradiomics_2d_case():
    values, settings = _baseline()
    entry = settings["breast1_shape2D"]
    # pyradiomics' 2D test mask is the slice of breast1's label with the largest cross-section.
    label = sitk.ReadImage(str(DATA / "breast1_label.nrrd"), sitk.sitkUInt32)
    counts = sitk.GetArrayFromImage(label).reshape(label.GetSize()[2], -1).sum(axis=1)
    z = int(np.argmax(counts))
    assert sitk.Hash(label[:, :, z : z + 1]) == entry["mask_hash"]
    got = _extract(_preset(entry["settings"], shape2d=True, classes=("shape",)))
    expected = values["breast1_shape2D"]
    assert len(expected) == 9
    diffs = _relative_differences(expected, got)
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] < TOLERANCE, f"{worst} differs by {diffs[worst]:.3g} (relative)"
