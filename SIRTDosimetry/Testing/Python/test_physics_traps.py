"""Physics traps that used to pass silently: DICOM timing, BED precedence, CT density, low density,
partial voxels, plausibility. Expected values are analytic or from the cited sources."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from test_dicom import write_pet_series

from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration, decay_factor_to_implant
from SIRTDosimetryLib.dose.engine import DoseParameters, compute_dose
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.segmentations import read_segmentation
from SIRTDosimetryLib.io.volumes import read_activity_image
from SIRTDosimetryLib.nuclides import Y90

# --- DICOM timing ------------------------------------------------------------------------------


def _pet_with(folder, **changes):
    """The test PET series (administered 2024-03-11 14:30, series 2024-03-12 10:15, acquired 10:19-10:23),
    each file edited: ``start_time`` replaces the full administration date-time by a time only."""
    paths = write_pet_series(folder)
    for path in paths:
        ds = pydicom.dcmread(path)
        item = ds.RadiopharmaceuticalInformationSequence[0]
        if "start_time" in changes:
            del item.RadiopharmaceuticalStartDateTime
            item.RadiopharmaceuticalStartTime = changes["start_time"]
        if "series_time" in changes:
            ds.SeriesTime = changes["series_time"]
        ds.save_as(path)
    activity = read_activity_image(folder)
    labels = np.zeros(activity.image.GetSize()[::-1], dtype=np.uint8)
    labels[1:4, 2:8, 3:9] = 1
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(activity.image)
    sitk.WriteImage(image, str(folder.parent / "labels.nrrd"))
    return activity, read_segmentation(folder.parent / "labels.nrrd", {1: "liver"})


def _dose(activity, segmentation, **times):
    return compute_dose(activity, segmentation, DoseParameters(AbsoluteCalibration(units=None, **times), clamp_invalid=True))


def test_a_dicom_administration_time_without_date_is_refused_not_put_on_the_scan_day(tmp_path):
    """Administered at 09:00 the day before a 10:15 scan: taking the scan day would drop 24 h of decay
    (a dose 23 % too low); without the date the dose is refused, with the user's date-time it is right."""
    activity, segmentation = _pet_with(tmp_path / "pet", start_time="090000")
    with pytest.raises(SIRTInputError, match="not its date"):
        _dose(activity, segmentation)
    result = _dose(activity, segmentation, administration_time=datetime(2024, 3, 11, 9, 0))
    elapsed_h = (datetime(2024, 3, 12, 10, 15) - datetime(2024, 3, 11, 9, 0)).total_seconds() / 3600
    assert result.calibration.decay_factor == pytest.approx(math.exp(math.log(2) * elapsed_h / Y90.half_life_h))
    assert not [w for w in result.warnings if "differs from the DICOM" in w]


def test_a_user_administration_time_far_from_the_dicom_is_reported_across_midnight_too(tmp_path):
    activity, segmentation = _pet_with(tmp_path / "pet", start_time="235500")
    near = _dose(activity, segmentation, administration_time=datetime(2024, 3, 11, 0, 2))  # 7 min across midnight
    assert not [w for w in near.warnings if "differs from the DICOM" in w]
    far = _dose(activity, segmentation, administration_time=datetime(2024, 3, 11, 23, 30))
    assert [w for w in far.warnings if "differs from the DICOM" in w and "25 min" in w]


def test_a_rewritten_series_time_yields_to_the_acquisition_start(tmp_path):
    """QIBA: a Series Time after the earliest Acquisition Time (10:19) means the series was re-created."""
    activity, segmentation = _pet_with(tmp_path / "pet", series_time="153000")
    result = _dose(activity, segmentation)
    assert result.calibration.details["scan_time"] == "2024-03-12T10:19:00"
    assert [w for w in result.warnings if "re-created" in w]


def test_mixed_time_zones_and_absurd_intervals_are_refused():
    admin = datetime(2024, 3, 11, 9, 0)
    with pytest.raises(SIRTInputError, match="time zone"):
        decay_factor_to_implant(Y90, admin, datetime(2024, 3, 12, 9, 0, tzinfo=timezone.utc))
    with pytest.raises(SIRTInputError, match="half-lives"):
        decay_factor_to_implant(Y90, admin, admin + timedelta(days=10_000))
    assert decay_factor_to_implant(Y90, admin, admin + timedelta(hours=64.1)) == pytest.approx(2.0)
