"""The per-patient report: pictures on analytic dose maps, and ``sirt report`` on the sample patient 2."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest

from sirt import main
from SIRTDosimetryLib.reporting.content import dose_table
from SIRTDosimetryLib.reporting.figures import DoseView, centre_of, cropped, mip_figure, slices_figure

LEVELS = (20.0, 50.0, 100.0)


def _png_array(png: bytes) -> np.ndarray:
    import matplotlib.pyplot as plt

    return plt.imread(io.BytesIO(png), format="png")


def _sphere_view(peak_gy: float = 80.0) -> DoseView:
    """A dose falling linearly from ``peak_gy`` at the centre of a 10 mm tumour inside a 40 mm liver box."""
    z, y, x = np.mgrid[0:40, 0:40, 0:40]
    r_mm = 2.0 * np.sqrt((z - 20) ** 2 + (y - 18) ** 2 + (x - 22) ** 2)
    dose = np.clip(peak_gy * (1 - r_mm / 30.0), 0, None)
    liver = np.zeros(dose.shape, dtype=bool)
    liver[5:35, 5:35, 5:35] = True
    return DoseView(dose, (r_mm < 30).astype(float), "test background", {"liver": liver, "Tumour A": r_mm <= 10.0}, (2.0, 2.0, 2.0))


def test_centre_and_crop_follow_the_structures():
    view = _sphere_view()
    assert centre_of(view.masks["Tumour A"]) == (20, 18, 22)
    c_shape = np.zeros((9, 9, 9), dtype=bool)
    c_shape[4, 1:8, 1] = c_shape[4, 1, 1:8] = c_shape[4, 7, 1:8] = True  # centroid off the structure
    assert c_shape[centre_of(c_shape)]
    small = cropped(view, margin_mm=4.0)  # liver box 5..34 plus 2 voxels each side
    assert small.dose_gy.shape == (34, 34, 34) and small.masks["Tumour A"].sum() == view.masks["Tumour A"].sum()


def test_slices_figure_legend_lists_every_isodose_level_and_structure():
    figure = slices_figure(_sphere_view(peak_gy=80.0), "Tumour A", "patient P | case C | method M", LEVELS + (400.0,))
    assert figure.legend == ("20 Gy", "50 Gy", "100 Gy (not reached)", "400 Gy (not reached)", "liver", "Tumour A")
    pixels = _png_array(figure.png)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 900
    assert pixels[..., :3].std() > 0.05  # a picture, not a blank canvas
    with pytest.raises(ValueError, match="increasing"):
        slices_figure(_sphere_view(), "Tumour A", "x", (100.0, 50.0))


def test_mip_shows_the_dose_colour_wash():
    hot = mip_figure(_sphere_view(peak_gy=80.0), "label", LEVELS)
    cold = mip_figure(_sphere_view(peak_gy=0.0), "label", LEVELS)  # nothing to wash
    assert hot.legend[:3] == ("20 Gy", "50 Gy", "100 Gy (not reached)")
    assert cold.legend[:3] == ("20 Gy (not reached)", "50 Gy (not reached)", "100 Gy (not reached)")

    def saturation(png):  # the colour wash is the only coloured thing besides thin lines and the colour bar
        rgb = _png_array(png)[..., :3]
        return float((rgb.max(axis=-1) - rgb.min(axis=-1)).mean())

    assert saturation(hot.png) > saturation(cold.png) + 0.01


@pytest.fixture(scope="module")
def patient2_outputs(patient2_paths, tmp_path_factory):
    """'sirt dose' (VSV and LDM) and 'sirt dvh' on the MAA SPECT of patient 2, 1.5 GBq over the liver."""
    spect, seg = patient2_paths
    root = tmp_path_factory.mktemp("report")
    common = ["--activity", str(spect), "--segmentation", str(seg), "--mode", "relative", "--administered-activity-gbq", "1.5",
              "--clamp-negative", "--bed-params", "Tumor 1=tumour", "--bed-params", "Tumor 2=tumour", "--segments", "liver,Tumor 1,Tumor 2"]
    assert main.main(["dose", *common, "--method", "vsv", "--output", str(root / "vsv")]) == 0
    assert main.main(["dose", *common, "--method", "ldm", "--output", str(root / "ldm")]) == 0
    assert main.main(["dvh", "--dose", str(root / "vsv" / "dose_gy.nrrd"), "--segmentation", str(seg), "--output",
                      str(root / "vsv" / "dvh"), "--segments", "liver,Tumor*", "--whole-normal-liver", "liver",
                      "--bed-params", "@tumour=tumour", "--lsf", "0.08", "--injected-activity-gbq", "1.5"]) == 0
    return root


def test_sirt_report_on_patient2(patient2_outputs, capsys):
    dose_dir = patient2_outputs / "vsv"
    rc = main.main(["report", str(dose_dir), "--patient-id", "P2", "--case", "MAA planning", "--isodose-levels", "50,100,205",
                    "--compare", str(patient2_outputs / "ldm"), "--compare-label", "local deposition"])
    assert rc == 0, capsys.readouterr().err
    page = (dose_dir / "report.html").read_text(encoding="utf-8")
    pdf = (dose_dir / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/Title" in pdf

    # self-contained: every picture embedded, nothing fetched from elsewhere
    assert not re.search(r"""(src|href)=['"](?!data:)""", page)
    pictures = re.findall(r"<figure id='([^']+)' data-legend='([^']*)'><img [^>]*src='data:image/png;base64,([^']+)'", page)
    keys = [k for k, _, _ in pictures]
    # two tumours x (slices + MAA-style comparison), one MIP, DVH and BVH plots
    assert keys == ["slices_tumor_1", "slices_tumor_2", "mip", "comparison_tumor_1", "comparison_tumor_2", "dvh_dose", "dvh_bed"]
    import base64

    for key, legend, data in pictures:
        pixels = _png_array(base64.b64decode(data))
        assert pixels.size > 100_000 and pixels[..., :3].std() > 0.05, key
        if not key.startswith("dvh_"):  # every dose picture's legend lists the requested isodose levels, then the segments
            assert re.match(r"50 Gy; 100 Gy; 205 Gy( \(not reached\))?; ", legend), (key, legend)
            assert "Tumor 1" in legend and "liver" in legend
    n_pages = len(re.findall(rb"/Type\s*/Page\b", pdf))
    assert n_pages >= len(pictures) + 2

    # the tables say what summary.json says; labels and sign-off are there
    summary = json.loads((dose_dir / "summary.json").read_text())
    for row in dose_table(summary).rows:
        assert "<td class=\"\">" + row[0] + "</td>" in page
        segment = next(s for s in summary["segments"] if s["name"] == row[0])
        assert f"{segment['dose_mean_gy']:.1f}" in row and f"{segment['volume_ml']:.1f}" in row
        assert f"{segment['dose_mean_gy']:.1f}</td>" in page
    assert summary["provenance"]["inputs"]["activity"]["sha256"] in page
    assert "patient P2 | MAA planning | Y-90 voxel S-value convolution, relative calibration" in page
    assert "Sign-off" in page and "Checked by (medical physicist)" in page
    assert "lung shunt fraction" in page and "0.080" in page


def test_sirt_report_bad_input_is_one_line_before_reading_images(tmp_path, patient2_outputs, capsys):
    assert main.main(["report", str(tmp_path), "--patient-id", "P"]) == 2
    assert "dose summary not found" in capsys.readouterr().err
    rc = main.main(["report", str(patient2_outputs / "ldm"), "--patient-id", "P", "--isodose-levels", "100,50"])
    assert rc == 2 and "increasing" in capsys.readouterr().err
    assert not (patient2_outputs / "ldm" / "report.html").exists()
