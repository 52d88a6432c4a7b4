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
from SIRTDosimetryLib.dose.radiobiology import bed_gy
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
    expected_total = values.sum() * voxel_volume_ml(activity.image.GetSpacing()) * factor
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
    energy_j = np.sum(dose) * 1.03 * voxel_volume_ml(activity.image.GetSpacing()) * 1e-3
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


def test_vsv_equals_ldm_deep_inside_a_uniform_region(tmp_path):
    """Far from edges, a uniform activity gives the same dose by VSV and LDM, up to the energy per decay
    each deposits (kernel: 0.9299 MeV within 12 mm; LDM: 49.67 J/GBq = 0.9312 MeV)."""
    from SIRTDosimetryLib.dose.kernels import kernel_for_grid
    from SIRTDosimetryLib.nuclides import MEV_TO_J
    from conftest import make_image

    spacing = (2.34375, 2.34375, 2.78)
    values = np.zeros((40, 48, 48))
    values[5:35, 6:42, 6:42] = 1000.0  # Bq/mL
    image = make_image(values, spacing=spacing)
    labels = (values > 0).astype(np.uint8)
    labels_image = make_image(labels, spacing=spacing)
    sitk.WriteImage(labels_image, str(tmp_path / "l.nrrd"))
    seg = read_segmentation(tmp_path / "l.nrrd", {1: "block"})
    from SIRTDosimetryLib.io.volumes import ActivityImage

    activity = ActivityImage(image, "bq_per_ml", "synthetic")
    ldm = compute_dose(activity, seg, DoseParameters(AbsoluteCalibration("bq_per_ml"), method="ldm"))
    vsv = compute_dose(activity, seg, DoseParameters(AbsoluteCalibration("bq_per_ml"), method="vsv"))
    core = (slice(15, 25), slice(18, 30), slice(18, 30))
    d_ldm = sitk.GetArrayFromImage(ldm.dose_gy)[core]
    d_vsv = sitk.GetArrayFromImage(vsv.dose_gy)[core]
    kernel = kernel_for_grid(spacing, 1.03)
    ratio = kernel.absorbed_energy_per_decay_mev() / (Y90.absorbed_energy_per_decay_j / MEV_TO_J)
    np.testing.assert_allclose(d_vsv, d_ldm * ratio, rtol=2e-3)
    # and VSV spreads dose past the edge of the block, LDM does not
    assert sitk.GetArrayFromImage(vsv.dose_gy)[20, 24, 5] > 0
    assert sitk.GetArrayFromImage(ldm.dose_gy)[20, 24, 5] == 0
    assert "Graves" in vsv.kernel_source


def test_vsv_on_sample_spect_with_anisotropic_voxels(patient2_paths):
    """The MAA SPECT (4.42 x 4.42 x 2.5 mm, z flipped): VSV keeps the liver's mean dose within a few % of LDM."""
    from SIRTDosimetryLib.dose.calibration import RelativeCalibration

    spect, seg_path = patient2_paths
    activity = read_activity_image(spect)
    seg = read_segmentation(seg_path)
    base = dict(calibration=RelativeCalibration(1.5e9), clamp_invalid=True, segments=("liver",))
    ldm = compute_dose(activity, seg, DoseParameters(method="ldm", **base)).segments[0]
    vsv = compute_dose(activity, seg, DoseParameters(method="vsv", **base)).segments[0]
    assert vsv.dose_mean_gy == pytest.approx(ldm.dose_mean_gy, rel=0.05)
    assert vsv.dose_max_gy < ldm.dose_max_gy  # the beta range smooths the hot spots


def _tumour_in_liver(tmp_path):
    """A tumour block inside a liver block, segmented on a 1 mm grid, and a uniform activity on a 3 mm grid:
    partial voxels at every edge."""
    from conftest import make_image
    from SIRTDosimetryLib.io.volumes import ActivityImage

    labels = np.zeros((30, 30, 30), dtype=np.uint8)
    labels[4:26, 4:26, 4:26] = 1  # "liver"
    tumour = np.zeros_like(labels)
    tumour[10:20, 10:20, 10:17] = 1
    path = tmp_path / "s.seg.nrrd"
    import nrrd

    header = {"space": "left-posterior-superior", "kinds": ["list", "domain", "domain", "domain"],
              "space directions": [[np.nan] * 3, [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]], "space origin": [-0.5, -0.5, -0.5]}
    for i, (name, layer) in enumerate([("liver", 0), ("tumour", 1)]):
        header |= {f"Segment{i}_Name": name, f"Segment{i}_Layer": str(layer), f"Segment{i}_LabelValue": "1"}
    nrrd.write(str(path), np.stack([labels, tumour]).transpose(0, 3, 2, 1).copy(), header)
    activity = ActivityImage(make_image(np.full((10, 10, 10), 1e5), spacing=(3.0, 3.0, 3.0), origin=(1.0, 1.0, 1.0)), "bq_per_ml", "x")
    return activity, read_segmentation(path)


def test_bed_map_has_no_gaps_at_edges_and_the_tumour_wins_in_its_liver(tmp_path):
    """A tumour block inside a liver block on a coarse grid: every touched voxel gets a BED; every voxel the
    tumour touches, even partly, takes the tumour's parameters, the rest of the liver keeps the liver's."""
    from SIRTDosimetryLib.dose.radiobiology import LQParameters

    activity, seg = _tumour_in_liver(tmp_path)
    liver_lq, tumour_lq = LQParameters(2.5, 2.5), LQParameters(10.0, 1.5)
    result = compute_dose(activity, seg, DoseParameters(AbsoluteCalibration("bq_per_ml"), radiobiology={"liver": liver_lq, "tumour": tumour_lq}))
    bed = sitk.GetArrayFromImage(result.bed_gy)
    dose = sitk.GetArrayFromImage(result.dose_gy).astype(float)
    touched = (result.structures["liver"].weights > 0) | (result.structures["tumour"].weights > 0)
    assert np.isfinite(bed[touched]).all() and np.isnan(bed[~touched]).all()
    t = result.structures["tumour"].weights
    expect_tumour = np.isclose(bed, bed_gy(dose, tumour_lq, 64.1), rtol=1e-5)
    expect_liver = np.isclose(bed, bed_gy(dose, liver_lq, 64.1), rtol=1e-5)
    assert expect_tumour[t >= 0.5].all()
    partial = (t > 0) & (t < 0.5) & (result.structures["liver"].weights >= 0.5)
    assert partial.any() and expect_tumour[partial].all()
    liver_only = (t == 0) & (result.structures["liver"].weights > 0) & (dose > 0)
    assert liver_only.any() and expect_liver[liver_only].all()


def test_lq_parameter_map_of_a_region_is_that_part_of_the_whole_map():
    """The BED maps are filled slab by slab from the map of each slab: it must equal the slab of the whole map."""
    from SIRTDosimetryLib.dose.engine import lq_parameter_map
    from SIRTDosimetryLib.structures import boxed

    grid = (9, 10, 11)
    z, y, x = np.indices(grid)
    big = (((z - 4) ** 2 + (y - 5) ** 2 + (x - 5) ** 2) < 16).astype(np.float32)
    small = (((z - 6) ** 2 + (y - 5) ** 2 + (x - 7) ** 2) < 3).astype(np.float32) * 0.5
    structures = {"liver": boxed("liver", big, (0, 0, 0), grid, 100.0, 1.0), "tumour": boxed("tumour", small, (0, 0, 0), grid, 2.0, 1.0)}
    whole = lq_parameter_map(structures, ["liver", "tumour"])
    assert set(np.unique(whole)) == {-1, 0, 1}
    assert np.all(whole[small > 0] == 1)  # the smaller structure wins where they overlap
    for region in [(slice(0, 3), slice(0, 10), slice(0, 11)), (slice(5, 9), slice(2, 7), slice(6, 11)), (slice(8, 9), slice(0, 1), slice(0, 1))]:
        np.testing.assert_array_equal(lq_parameter_map(structures, ["liver", "tumour"], region=region), whole[region])


def test_eqd2_made_on_demand_from_the_bed_map_is_each_voxels_eqd2_and_gives_the_summary(tmp_path):
    """EQD2 is not kept by the result but derived from the BED map with each voxel's α/β (2.5 Gy in the liver,
    10 Gy where the tumour wins): the same float32 values as EQD2 computed on the whole BED map at once, NaN
    where BED is, and the summary's mean EQD2 is the weighted mean of that map."""
    from SIRTDosimetryLib.dose.engine import lq_parameter_map
    from SIRTDosimetryLib.dose.radiobiology import LQParameters, eqd2_gy

    activity, seg = _tumour_in_liver(tmp_path)
    lq = {"liver": LQParameters(2.5, 2.5), "tumour": LQParameters(10.0, 1.5)}
    result = compute_dose(activity, seg, DoseParameters(AbsoluteCalibration("bq_per_ml"), radiobiology=lq))
    bed = sitk.GetArrayFromImage(result.bed_gy)
    index = lq_parameter_map(result.structures, list(lq))
    expected = np.full(bed.shape, np.nan, dtype=np.float32)
    for k, params in enumerate(lq.values()):
        expected[index == k] = eqd2_gy(bed[index == k], params)
    image = result.eqd2_gy
    assert image.GetPixelID() == sitk.sitkFloat32 and image.GetSpacing() == result.bed_gy.GetSpacing()
    eqd2 = sitk.GetArrayFromImage(image)
    np.testing.assert_array_equal(eqd2, expected)  # NaN in the same places
    assert (index == 0).any() and (index == 1).any() and not np.allclose(eqd2[index == 0], bed[index == 0] / 1.2)
    for summary in result.segments:
        w = result.structures[summary.name].weights.astype(float)
        inside = w > 0
        assert summary.eqd2_mean_gy == pytest.approx(np.sum(w[inside] * eqd2[inside]) / w.sum(), rel=1e-12)
