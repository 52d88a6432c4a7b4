"""Density per voxel from a CT and a user-supplied HU-to-density calibration."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import make_image

from sirt.main import main
from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration
from SIRTDosimetryLib.dose.density import HUDensityTable, density_from_ct, read_hu_density_table
from SIRTDosimetryLib.dose.engine import DoseParameters, compute_dose
from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.segmentations import read_segmentation
from SIRTDosimetryLib.io.volumes import ActivityImage

TABLE = HUDensityTable((-1000.0, 0.0, 1000.0), (0.001, 1.0, 1.6), "test")


def test_table_interpolates_linearly_and_holds_ends():
    np.testing.assert_allclose(TABLE.density(np.array([-2000, -1000, -500, 0, 500, 3000.0])), [0.001, 0.001, 0.5005, 1.0, 1.3, 1.6])


@pytest.mark.parametrize(
    "hu, rho, message",
    [((0.0,), (1.0,), "at least two"), ((0.0, -10.0), (1.0, 0.9), "increasing"), ((0.0, 10.0), (1.0, -1.0), "between 0.001")],
)
def test_bad_tables(hu, rho, message):
    with pytest.raises(SIRTInputError, match=message):
        HUDensityTable(hu, rho, "t")


def test_read_table_csv(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("hu,density_g_per_ml\n0,1.0\n-1000,0.001\n")
    table = read_hu_density_table(path)
    assert table.hu == (-1000.0, 0.0)
    path.write_text("HU;rho\n0;1\n")
    with pytest.raises(SIRTInputError, match="columns hu,density_g_per_ml"):
        read_hu_density_table(path)


def test_fine_ct_is_averaged_over_each_activity_voxel():
    """A 1 mm CT, lung (-700 HU) in x < 0 and soft tissue (+40 HU) in x >= 0, under a 3 mm activity grid whose
    middle column straddles the boundary: that column gets the mean density of its two parts."""
    ct = np.full((30, 30, 30), 40.0)
    ct[:, :, :15] = -700.0
    ct_image = make_image(ct, spacing=(1.0, 1.0, 1.0), origin=(-14.5, -14.5, -14.5))
    reference = make_image(np.zeros((4, 4, 5)), spacing=(3.0, 3.0, 3.0), origin=(-6.0, -4.5, -4.5))
    result = density_from_ct(ct_image, reference, TABLE)
    density = result.density_g_per_ml
    lung, tissue = TABLE.density(np.array([-700.0, 40.0]))
    np.testing.assert_allclose(density[:, :, 0], lung, rtol=1e-6)  # x in [-7.5, -4.5]
    np.testing.assert_allclose(density[:, :, 4], tissue, rtol=1e-6)  # x in [4.5, 7.5]
    np.testing.assert_allclose(density[:, :, 2], (lung + tissue) / 2, rtol=0.08)  # x in [-1.5, 1.5]
    assert result.voxels_outside_ct == 0


def test_ct_must_overlap():
    ct_image = make_image(np.zeros((4, 4, 4)), origin=(500.0, 0.0, 0.0))
    with pytest.raises(SIRTInputError, match="does not overlap"):
        density_from_ct(ct_image, make_image(np.zeros((4, 4, 4))), TABLE)


def test_ldm_dose_scales_with_ct_density(tmp_path):
    """Uniform activity: LDM dose in lung-density voxels is rho_tissue/rho_lung times that in tissue."""
    values = np.full((6, 6, 6), 1e3)
    activity = ActivityImage(make_image(values), "bq_per_ml", "synthetic")
    labels = make_image(np.ones((6, 6, 6), dtype=np.uint8))
    sitk.WriteImage(labels, str(tmp_path / "l.nrrd"))
    seg = read_segmentation(tmp_path / "l.nrrd")
    ct = np.full((6, 6, 6), 40.0)
    ct[:3] = -700.0
    params = DoseParameters(AbsoluteCalibration("bq_per_ml"), hu_density_table=TABLE)
    dose = sitk.GetArrayFromImage(compute_dose(activity, seg, params, make_image(ct)).dose_gy)
    lung, tissue = TABLE.density(np.array([-700.0, 40.0]))
    assert dose[1, 3, 3] / dose[4, 3, 3] == pytest.approx(tissue / lung, rel=1e-5)
    with pytest.raises(SIRTInputError, match="both the CT and"):
        compute_dose(activity, seg, DoseParameters(AbsoluteCalibration("bq_per_ml")), make_image(ct))


def test_cli_with_ct(tmp_path, patient1_paths, capsys):
    """The sample PET with a synthetic water CT on its grid: masses follow the table's water density."""
    pet, seg = patient1_paths
    image = sitk.ReadImage(str(pet))
    water = sitk.Image(image.GetSize(), sitk.sitkInt16)
    water.CopyInformation(image)
    sitk.WriteImage(water, str(tmp_path / "ct.nrrd"))
    (tmp_path / "t.csv").write_text("hu,density_g_per_ml\n-1000,0.001\n0,1.0\n1000,1.6\n")
    code = main(["dose", "--activity", str(pet), "--segmentation", str(seg), "--mode", "absolute", "--units", "bq_per_ml",
                 "--segments", "Liver", "--ct", str(tmp_path / "ct.nrrd"), "--hu-density-table", str(tmp_path / "t.csv"),
                 "--output", str(tmp_path / "o")])
    assert code == 0
    import json

    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    liver = summary["segments"][0]
    assert liver["mass_g"] == pytest.approx(liver["volume_ml"] * 1.0, rel=1e-6)
    assert "ct" in summary["provenance"]["inputs"]
