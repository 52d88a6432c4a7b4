"""The report of a dose map in the scene (the SIRTDosimetry module's "Report" button), on real MRML nodes."""

from __future__ import annotations

import re

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the slicer-core wheel is not installed (the PyPI package 'slicer' is unrelated)", allow_module_level=True)

from SIRTDosimetryLib.errors import SIRTInputError  # noqa: E402
from SIRTDosimetryLib.mrml import convert  # noqa: E402


def test_report_for_a_dose_node(scene, tmp_path):
    from SIRTDosimetryLib.dose.calibration import AbsoluteCalibration
    from SIRTDosimetryLib.dose.engine import DoseParameters
    from SIRTDosimetryLib.dose.radiobiology import TUMOUR_CHIESA_2015
    from SIRTDosimetryLib.io.segmentations import Segment, Segmentation
    from SIRTDosimetryLib.mrml.logic import compute_dose_from_nodes
    from SIRTDosimetryLib.mrml.report import write_report_for_dose_node

    activity = np.full((16, 16, 16), 20.0)
    activity[6:10, 6:10, 6:10] = 4.0e5  # Bq/mL: a hot lesion in a warm liver
    image = sitk.GetImageFromArray(activity)
    image.SetSpacing((4.0, 4.0, 4.0))
    labels = np.zeros(activity.shape, dtype=np.uint16)
    labels[2:14, 2:14, 2:14] = 1
    labels[6:10, 6:10, 6:10] = 2
    label = sitk.GetImageFromArray(labels)
    label.CopyInformation(image)
    volume = convert.add_volume_node(scene, image, "activity")
    seg = convert.add_segmentation_node(scene, Segmentation((label,), (Segment("liver", 0, 1), Segment("Lesion A", 0, 2)), "synthetic"), "seg")
    params = DoseParameters(calibration=AbsoluteCalibration(units="bq_per_ml"), radiobiology={"Lesion A": TUMOUR_CHIESA_2015})
    out = compute_dose_from_nodes(volume, seg, params)

    with pytest.raises(SIRTInputError, match="patient ID"):
        write_report_for_dose_node(out.dose_node, tmp_path, " ")
    # LDM: 4e5 Bq/mL x 92.5 h mean life x 0.9336 MeV / 1.03 g/mL = 19 Gy in the lesion
    written = write_report_for_dose_node(out.dose_node, tmp_path, "SYN-1", "90Y verification", (5.0, 10.0, 50.0))
    assert sorted(p.name for p in written) == ["report.html", "report.pdf"]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    legend = "5 Gy; 10 Gy; 50 Gy (not reached); liver; Lesion A"
    assert re.findall(rf"<figure id='([^']+)' data-legend='{re.escape(legend)}'", page) == ["slices_lesion_a", "mip"]
    assert "patient SYN-1 | 90Y verification |" in page and "Lesion A" in page
    with pytest.raises(SIRTInputError, match="already exists"):
        write_report_for_dose_node(out.dose_node, tmp_path, "SYN-1")
    with pytest.raises(SIRTInputError, match="select a dose map computed by this module"):
        write_report_for_dose_node(volume, tmp_path / "other", "SYN-1")
