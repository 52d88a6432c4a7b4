"""Physics traps that used to pass silently: DICOM timing, BED precedence, CT density, low density,
partial voxels, plausibility. Expected values are analytic or from the cited sources."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from test_dicom import write_pet_series

from sirt.main import main as sirt_main
from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration, decay_factor_to_implant
from SIRTDosimetryLib.dose.engine import DoseParameters, compute_dose
from SIRTDosimetryLib.dose.radiobiology import PRESET_HALF_LIFE_H, PRESET_SOURCES, PRESETS, bed_gy
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


# --- BED: precedence where segments overlap; map and summary agree ------------------------------


@pytest.fixture(scope="module")
def patient1_bed(tmp_path_factory, patient1_paths):
    """Tumour parameters given first, the containing liver's last: the order must not matter."""
    pet, seg = patient1_paths
    out = tmp_path_factory.mktemp("bed")
    argv = ["dose", "--activity", pet, "--segmentation", seg, "--mode", "absolute", "--units", "bq_per_ml", "--output", out / "dose",
            "--segments", "Liver,Tumor 2", "--bed-params", "Tumor 2=tumour", "--bed-params", "Liver=normal_liver"]  # fmt: skip
    assert sirt_main([str(a) for a in argv]) == 0
    return out, seg


def test_a_tumour_inside_its_liver_keeps_its_own_lq_parameters_in_the_bed_map(patient1_bed):
    out, _ = patient1_bed
    summary = json.loads((out / "dose" / "summary.json").read_text())
    dose = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "dose" / "dose_gy.nrrd"))).astype(np.float64)
    bed = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "dose" / "bed_gy.nrrd"))).astype(np.float64)
    tumour = bed_gy(dose, PRESETS["tumour"], Y90.half_life_h)
    liver = bed_gy(dose, PRESETS["normal_liver"], Y90.half_life_h)
    hot = dose > 50  # where the two parameter sets differ clearly
    uses_tumour = np.isclose(bed, tumour, rtol=1e-5) & hot
    uses_liver = np.isclose(bed, liver, rtol=1e-5) & hot
    assert uses_tumour.sum() > 1000 and uses_liver.sum() > 100
    by_name = {s["name"]: s for s in summary["segments"]}
    mean_dose = by_name["Tumor 2"]["dose_mean_gy"]
    # Tumour-parameter BED of the tumour is a few % above its mean dose; normal-liver parameters would give about double.
    assert by_name["Tumor 2"]["bed_mean_gy"] < 2.0 * mean_dose
    assert any("'Liver'" in w and "LQ parameters of 'Tumor 2'" in w for w in summary["warnings"])


def test_dvh_on_the_bed_map_reproduces_the_dose_summary(patient1_bed):
    out, seg = patient1_bed
    argv = ["dvh", "--dose", out / "dose" / "dose_gy.nrrd", "--bed", out / "dose" / "bed_gy.nrrd", "--segmentation", seg,
            "--segments", "Liver,Tumor 2", "--output", out / "dvh"]  # fmt: skip
    assert sirt_main([str(a) for a in argv]) == 0
    summary = {s["name"]: s for s in json.loads((out / "dose" / "summary.json").read_text())["segments"]}
    dvh = {s["name"]: s["features"] for s in json.loads((out / "dvh" / "constraints.json").read_text())["structures"]}
    for name in ("Liver", "Tumor 2"):
        assert dvh[name]["bed_mean_gy"] == pytest.approx(summary[name]["bed_mean_gy"], rel=0.01), name


def test_the_hcc_glass_dosiomics_preset_is_offered_with_its_source():
    lq = PRESETS["tumour_hcc_glass_dosiomics"], PRESETS["normal_liver_hcc_glass_dosiomics"]
    assert [(p.alpha_beta_gy, p.repair_half_time_h) for p in lq] == [(10.0, 1.5), (10.0, 2.5)]
    assert PRESET_HALF_LIFE_H["normal_liver_hcc_glass_dosiomics"] == 64.2
    assert all("Chiesa" in PRESET_SOURCES[name] for name in PRESETS)
    assert all("PubMed 40064820" in PRESET_SOURCES[name] for name in ("tumour_hcc_glass_dosiomics", "normal_liver_hcc_glass_dosiomics"))
    # Dale's formula with these values: D = 100 Gy, T_rep = 2.5 h, T_phys = 64.2 h, alpha/beta = 10 Gy.
    assert float(bed_gy(100.0, lq[1], 64.2)) == pytest.approx(100 * (1 + 100 * 2.5 / ((2.5 + 64.2) * 10)))


# --- partial voxels: exact overlap of segment and activity voxels ---------------------------------


MRI_SPACING_MM = (0.8203, 0.8203, 2.2)  # the grid the sample patient's lesions were drawn on
PET_SPACING_MM = (2.34375, 2.34375, 2.78)


def _voxelised_sphere(radius_mm, centre_mm, spacing_mm=MRI_SPACING_MM, size=(24, 24, 10)):
    """A labelmap (z, y, x) of the voxels whose centre lies in the sphere, on an MRI-like grid at the origin."""
    z, y, x = np.indices(size[::-1])
    points = [c * h for c, h in zip((x, y, z), spacing_mm)]
    inside = sum((p - c) ** 2 for p, c in zip(points, centre_mm)) <= radius_mm**2
    image = sitk.GetImageFromArray(inside.astype(np.uint8))
    image.SetSpacing(spacing_mm)
    return image, inside


def _sampled_fractions(inside, spacing_mm, reference, samples=24):
    """Fraction of each reference voxel covered by the labelmap ``inside``, by dense point sampling: an
    independent check of the exact overlap (both grids at the origin with identity directions)."""
    ref_spacing = np.asarray(reference.GetSpacing())
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    fractions = np.zeros(reference.GetSize()[::-1])
    for index in np.ndindex(*reference.GetSize()):
        axes = [(index[k] + offsets) * ref_spacing[k] for k in range(3)]
        cells = [np.floor(a / spacing_mm[k] + 0.5).astype(int) for k, a in enumerate(axes)]
        valid = [(c >= 0) & (c < inside.shape[2 - k]) for k, c in enumerate(cells)]
        if not all(v.any() for v in valid):
            continue
        block = inside[np.ix_(np.clip(cells[2], 0, inside.shape[0] - 1), np.clip(cells[1], 0, inside.shape[1] - 1), np.clip(cells[0], 0, inside.shape[2] - 1))]
        block = block & valid[2][:, None, None] & valid[1][None, :, None] & valid[0][None, None, :]
        fractions[index[::-1]] = block.mean()
    return fractions


def test_a_sub_ml_lesion_keeps_its_volume_and_mean_dose_on_a_coarse_pet_grid():
    """A 0.3 mL lesion drawn on a 0.82 × 0.82 × 2.2 mm MRI grid, mapped onto a 2.34 × 2.34 × 2.78 mm PET grid:
    its mapped volume is its contoured volume and the mean of a voxel-wise random dose agrees with dense
    sampling within 1 % (3 × 3 × 3 nearest-neighbour samples were 2-5 % off here)."""
    from SIRTDosimetryLib.io.segmentations import Segment, Segmentation
    from SIRTDosimetryLib.structures import map_segments

    layer, inside = _voxelised_sphere(4.2, (9.7, 10.1, 10.9))
    contoured_ml = inside.sum() * np.prod(MRI_SPACING_MM) / 1000
    assert 0.2 < contoured_ml < 1.0
    reference = sitk.Image(10, 10, 9, sitk.sitkFloat32)
    reference.SetSpacing(PET_SPACING_MM)
    structure = map_segments(Segmentation((layer,), (Segment("lesion", 0, 1),), "sphere"), reference, ["lesion"])["lesion"]
    assert structure.mapped_volume_ml == pytest.approx(contoured_ml, rel=1e-4)
    assert structure.coverage == pytest.approx(1.0, abs=1e-4)
    dose = np.random.default_rng(3).uniform(0, 200, size=structure.weights.shape)
    sampled = _sampled_fractions(inside, MRI_SPACING_MM, reference)
    assert np.sum(sampled) * np.prod(PET_SPACING_MM) / 1000 == pytest.approx(contoured_ml, rel=0.01)
    expected_mean = np.sum(dose * sampled) / np.sum(sampled)
    assert np.sum(dose * structure.weights) / np.sum(structure.weights) == pytest.approx(expected_mean, rel=0.01)


def test_small_lesions_of_the_sample_patient_lie_fully_inside_the_dose_grid(patient1_paths):
    from SIRTDosimetryLib.structures import map_segments

    pet, seg = patient1_paths
    structures = map_segments(read_segmentation(seg), sitk.ReadImage(str(pet)))
    for name in ("Tumor 3", "Tumor 4", "Tumor 5"):  # 0.2-0.7 mL
        assert structures[name].coverage == pytest.approx(1.0, abs=1e-4), name


# --- density: outside the CT, physical floor, low-density warning -----------------------------------


def test_activity_voxels_outside_the_ct_get_soft_tissue_not_air():
    """A CT covering only half of the activity grid: the other half gets the default density (not −1000 HU air,
    which made those LDM doses a thousand times too high) and the count of such voxels is reported."""
    from conftest import make_image
    from SIRTDosimetryLib.dose.density import HUDensityTable, density_from_ct

    table = HUDensityTable((-1000.0, 0.0, 1000.0), (0.001, 1.0, 1.6), "test")
    ct = make_image(np.full((10, 10, 5), 0.0), spacing=(2.0, 2.0, 2.0))  # x in [-1, 9] mm
    reference = make_image(np.zeros((10, 10, 10)), spacing=(2.0, 2.0, 2.0))  # x in [-1, 19] mm
    result = density_from_ct(ct, reference, table, outside_density_g_per_ml=1.03)
    np.testing.assert_allclose(result.density_g_per_ml[:, :, :4], 1.0, rtol=1e-6)
    np.testing.assert_allclose(result.density_g_per_ml[:, :, 5:], 1.03, rtol=1e-6)
    assert result.voxels_outside_ct == 10 * 10 * 5  # columns 5 to 9


@pytest.mark.parametrize("density", [1e-300, 0.0, -1.0, float("nan"), 1e6])
def test_unphysical_densities_are_refused(density):
    from SIRTDosimetryLib.nuclides import check_density

    with pytest.raises(SIRTInputError, match="between 0.001"):
        check_density(density)


def _uniform_case(tmp_path, activity_bq_per_ml=1e5, lung_value=None):
    """A 12³ image with a liver label (1) and, optionally, a lung label (2) with activity ``lung_value``."""
    from conftest import make_image

    values = np.zeros((12, 12, 12), dtype=np.float32)
    labels = np.zeros((12, 12, 12), dtype=np.uint8)
    labels[2:10, 2:10, 2:7] = 1
    values[labels == 1] = activity_bq_per_ml
    if lung_value is not None:
        labels[2:10, 2:10, 7:10] = 2
        values[labels == 2] = lung_value
    sitk.WriteImage(make_image(values), str(tmp_path / "pet.nrrd"))
    sitk.WriteImage(make_image(labels), str(tmp_path / "labels.nrrd"))
    names = {1: "liver", 2: "lungs"} if lung_value is not None else {1: "liver"}
    return read_activity_image(tmp_path / "pet.nrrd", "bq_per_ml"), read_segmentation(tmp_path / "labels.nrrd", names)


def test_low_density_tissue_receiving_vsv_dose_is_reported(tmp_path):
    activity, segmentation = _uniform_case(tmp_path, lung_value=2e4)
    params = DoseParameters(AbsoluteCalibration("bq_per_ml"), method="vsv", segment_densities_g_per_ml={"lungs": 0.3})
    result = compute_dose(activity, segmentation, params)
    assert [w for w in result.warnings if "below 0.9 g/mL" in w and "not transport-correct" in w]
    soft = compute_dose(activity, segmentation, DoseParameters(AbsoluteCalibration("bq_per_ml"), method="vsv"))
    assert not [w for w in soft.warnings if "below 0.9 g/mL" in w]
    # with a lung segment the summary reports the lung dose: its mean dose
    assert result.lung.method == "segment" and result.lung.dose_gy == pytest.approx(
        next(s.dose_mean_gy for s in result.segments if s.name == "lungs"))


# --- plausibility warnings -----------------------------------------------------------------------


def test_implausible_results_are_warned_about_not_refused(tmp_path):
    activity, segmentation = _uniform_case(tmp_path, activity_bq_per_ml=1e9, lung_value=2e8)
    # 1e9 Bq/mL in 2.56 mL of liver + 2e8 Bq/mL in 1.54 mL of lung = 2.9 GBq: above the 1 GBq administered,
    # 11 % of it in the lungs, a mean liver dose of ~48,000 Gy.
    calibration = AbsoluteCalibration("bq_per_ml", administered_activity_bq=1e9)
    result = compute_dose(activity, segmentation, DoseParameters(calibration))
    text = " | ".join(result.warnings)
    assert "more than the 1 GBq administered" in text
    assert "outside the liver and perfused segments" in text
    assert "'liver': mean absorbed dose" in text and "above 1000 Gy" in text
    (tmp_path / "quiet").mkdir()
    quiet = compute_dose(*_uniform_case(tmp_path / "quiet", activity_bq_per_ml=1e5),
                         DoseParameters(AbsoluteCalibration("bq_per_ml", administered_activity_bq=1e9)))
    assert not [w for w in quiet.warnings if "administered" in w or "outside the liver" in w or "above 1000" in w]


def test_the_lung_dose_from_the_shunt_follows_the_partition_model(tmp_path):
    """A = 2 GBq, LSF = 10 %, R = 0, m_L = 1000 g: D_L = 49.67 J/GBq × 0.2 GBq / 1 kg = 9.93 Gy."""
    from SIRTDosimetryLib.dose.calibration import RelativeCalibration

    activity, segmentation = _uniform_case(tmp_path)
    params = DoseParameters(RelativeCalibration(2e9, lung_shunt_fraction=0.1), lung_mass_g=1000.0)
    result = compute_dose(activity, segmentation, params)
    assert result.lung.method == "partition"
    assert result.lung.dose_gy == pytest.approx(Y90.energy_per_activity_j_per_gbq * 0.2, rel=1e-9)
    assert compute_dose(activity, segmentation, DoseParameters(RelativeCalibration(2e9, lung_shunt_fraction=0.1))).lung is None


def test_hours_after_administration_replace_a_dateless_dicom_time_and_are_compared_with_a_full_one(tmp_path):
    """The hours given settle a DICOM start time without a date (no refusal); against a full DICOM
    date-time (administered 14:30 the day before a 10:19 acquisition start: 19.8 h) a 24 h interval is reported."""
    dateless, segmentation = _pet_with(tmp_path / "dateless", start_time="090000")
    result = _dose(dateless, segmentation, scan_after_administration_h=25.25)
    assert result.calibration.decay_factor == pytest.approx(math.exp(math.log(2) * 25.25 / Y90.half_life_h))
    full, segmentation = _pet_with(tmp_path / "full")
    far = _dose(full, segmentation, scan_after_administration_h=24.0)
    assert [w for w in far.warnings if "the hours given are used" in w]
    near = _dose(full, segmentation, scan_after_administration_h=19.8)
    assert not [w for w in near.warnings if "the hours given are used" in w]
