"""The dose engine end to end on real files: DICOM timing, VSV vs LDM, inputs left untouched."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest
import SimpleITK as sitk
from test_dicom import write_pet_series

from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration
from SIRTDosimetryLib.dose.engine import DoseParameters, compute_dose
from SIRTDosimetryLib.io.segmentations import read_segmentation
from SIRTDosimetryLib.io.volumes import read_activity_image, voxel_volume_ml
from SIRTDosimetryLib.nuclides import Y90


def _labelmap_like(image: sitk.Image, path) -> None:
    labels = np.zeros(image.GetSize()[::-1], dtype=np.uint8)
    labels[1:4, 2:8, 3:9] = 1
    out = sitk.GetImageFromArray(labels)
    out.CopyInformation(image)
    sitk.WriteImage(out, str(path))


def test_dicom_pet_is_decay_corrected_to_implantation(tmp_path):
    """PET decay-corrected to the series start (2024-03-12 10:15), administered 2024-03-11 14:30:
    the activity at implantation is exp(lambda * 19.75 h) times the image activity."""
    write_pet_series(tmp_path / "pet")
    activity = read_activity_image(tmp_path / "pet")
    assert activity.units == "bq_per_ml"
    _labelmap_like(activity.image, tmp_path / "labels.nrrd")
    seg = read_segmentation(tmp_path / "labels.nrrd", {1: "liver"})
    values = sitk.GetArrayFromImage(activity.image)
    values = np.clip(values, 0, None)
    result = compute_dose(activity, seg, DoseParameters(calibration=AbsoluteCalibration(units=None), clamp_invalid=True))
    elapsed_h = (datetime(2024, 3, 12, 10, 15) - datetime(2024, 3, 11, 14, 30)).total_seconds() / 3600
    factor = math.exp(math.log(2) * elapsed_h / 64.1)
    assert result.calibration.decay_factor == pytest.approx(factor)
    expected_total = values.sum() * voxel_volume_ml(activity.image) * factor
    assert result.calibration.total_activity_in_image_bq == pytest.approx(expected_total)
    assert result.calibration.details["scan_time"] == "2024-03-12T10:15:00"


def test_user_times_override_dicom(tmp_path):
    write_pet_series(tmp_path / "pet")
    activity = read_activity_image(tmp_path / "pet")
    _labelmap_like(activity.image, tmp_path / "labels.nrrd")
    seg = read_segmentation(tmp_path / "labels.nrrd")
    t0 = datetime(2024, 3, 12, 10, 15)
    cal = AbsoluteCalibration(units=None, administration_time=t0, scan_time=t0)
    result = compute_dose(activity, seg, DoseParameters(calibration=cal, clamp_invalid=True))
    assert result.calibration.decay_factor == 1.0


def test_engine_leaves_inputs_untouched(patient2_paths):
    spect, seg_path = patient2_paths
    activity = read_activity_image(spect)
    before = sitk.GetArrayFromImage(activity.image).copy()
    seg = read_segmentation(seg_path)
    layers_before = [sitk.GetArrayFromImage(layer).copy() for layer in seg.layers]
    from SIRTDosimetryLib.dose.calibration import RelativeCalibration

    params = DoseParameters(calibration=RelativeCalibration(2e9), clamp_invalid=True, segments=("liver", "Tumor 1"))
    compute_dose(activity, seg, params)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(activity.image), before)
    assert (before < 0).sum() > 0  # the negative voxels were clamped in a copy only
    for layer, old in zip(seg.layers, layers_before):
        np.testing.assert_array_equal(sitk.GetArrayFromImage(layer), old)


def test_engine_total_energy_balance_ldm(patient1_paths):
    """LDM conserves energy: sum(D * m) = E_A * A_total."""
    pet, seg_path = patient1_paths
    activity = read_activity_image(pet, "bq_per_ml")
    result = compute_dose(activity, read_segmentation(seg_path), DoseParameters(AbsoluteCalibration("bq_per_ml"), segments=("Liver",)))
    dose = sitk.GetArrayFromImage(result.dose_gy).astype(np.float64)
    energy_j = np.sum(dose) * 1.03 * voxel_volume_ml(activity.image) * 1e-3
    assert energy_j == pytest.approx(Y90.energy_per_activity_j_per_gbq * result.calibration.total_activity_in_image_bq / 1e9, rel=1e-5)


@pytest.mark.parametrize("suffix", [".nii.gz", ".mha"])
def test_nifti_and_mha_give_the_same_dose_as_nrrd(tmp_path, patient1_paths, suffix):
    pet, seg_path = patient1_paths
    converted = tmp_path / f"pet{suffix}"
    sitk.WriteImage(sitk.ReadImage(str(pet)), str(converted))
    seg = read_segmentation(seg_path)
    params = DoseParameters(AbsoluteCalibration("bq_per_ml"), segments=("Tumor 1",))
    reference = compute_dose(read_activity_image(pet, "bq_per_ml"), seg, params)
    other = compute_dose(read_activity_image(converted, "bq_per_ml"), seg, params)
    assert other.segments[0].dose_mean_gy == pytest.approx(reference.segments[0].dose_mean_gy, rel=1e-6)
    np.testing.assert_allclose(other.dose_gy.GetOrigin(), reference.dose_gy.GetOrigin(), atol=1e-4)
