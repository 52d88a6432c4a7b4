"""Shared fixtures: the bundled sample patients (real data) and small synthetic images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SIRTDosimetryLib.data import SAMPLES_DIR


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES_DIR


@pytest.fixture(scope="session")
def patient1_paths(samples_dir) -> tuple[Path, Path]:
    """90Y PET in Bq/mL and its multi-layer segmentation on the MRI grid."""
    return samples_dir / "patient_1_Y90_PET.nrrd", samples_dir / "patient_1_Segmentation.seg.nrrd"


@pytest.fixture(scope="session")
def patient2_paths(samples_dir) -> tuple[Path, Path]:
    """99mTc-MAA SPECT in counts and its segmentation on the CT grid."""
    return samples_dir / "patient_2_SPECT.nrrd", samples_dir / "patient_2_Segmentation.seg.nrrd"


@pytest.fixture()
def scene():
    """A bare MRML scene with the volumes and segmentations logics set up (slicer-core, imported only here)."""
    from SIRTDosimetryLib.mrml.scene import new_scene

    context = new_scene()
    yield context.scene
    context.scene.Clear(1)


def make_image(array: np.ndarray, spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0), direction=None) -> sitk.Image:
    """A SimpleITK image from a (z, y, x) array with the given geometry."""
    image = sitk.GetImageFromArray(np.asarray(array))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    return image
