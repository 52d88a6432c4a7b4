"""The lung-aware kernel method (range-scaled kernels) and the Monte Carlo material map; no PenRed needed."""

from __future__ import annotations

import numpy as np
import pytest

from SIRTDosimetryLib.dose.kernels import build_kernel_from_dpk
from SIRTDosimetryLib.dose.lung_kernel import LADDER_RATIO, density_ladder, ladder_weights, vsv_lung_dose_gy
from SIRTDosimetryLib.dose.mc_materials import MC_MATERIALS, material_indices
from SIRTDosimetryLib.dose.vsv import density_corrected, vsv_dose_gy
from SIRTDosimetryLib.testing.mc_phantoms import liver_lung_slab

SPACING = (2.0, 2.0, 2.0)


def test_ladder_weights_interpolate_log_density():
    density = np.array([0.26, 0.3, 1.0, 1.06, 1.9])
    ladder = density_ladder(density, SPACING)
    assert ladder[0] <= 0.26 and ladder[-1] >= 1.9
    np.testing.assert_allclose(np.diff(np.log(ladder)), np.log(LADDER_RATIO))
    w = ladder_weights(density, ladder)
    np.testing.assert_allclose(w.sum(axis=0), 1.0)
    np.testing.assert_allclose(np.exp(np.tensordot(np.log(ladder), w, axes=1)), density, rtol=1e-12)


def test_homogeneous_medium_is_the_range_scaled_kernel():
    """One density on the ladder (1 g/mL): the method is the plain VSV convolution with that kernel."""
    tia = np.zeros((15, 15, 15))
    tia[7, 7, 7] = 1e9
    tia[5:9, 6:8, 9:12] = 3e8
    expected = vsv_dose_gy(tia, build_kernel_from_dpk(SPACING, 1.0).values_mgy_per_mbq_s)
    np.testing.assert_allclose(vsv_lung_dose_gy(tia, 1.0, SPACING), expected, rtol=1e-5, atol=1e-6 * expected.max())


def test_lung_beyond_the_interface_gets_more_dose_than_amplitude_scaling():
    """In lung the electrons go about 4x further: beyond a few mm the range-scaled dose exceeds the
    soft-tissue kernel scaled in amplitude only, which stops at the soft-tissue range (about 11 mm)."""
    slab = liver_lung_slab(liver_mm=8, lung_mm=16, lateral_mm=24.0, lateral_voxel_mm=4.0)
    spacing = (2.0, 4.0, 4.0)
    tia, density = slab.tia_bq_s[:, :, ::2] * 2, slab.density_g_per_ml[:, :, ::2]  # 2 mm layers
    lung = vsv_lung_dose_gy(tia, density, spacing)
    soft = density_corrected(vsv_dose_gy(tia, build_kernel_from_dpk(spacing, 1.06).values_mgy_per_mbq_s), density, 1.06)
    profile_lung, profile_soft = lung[2:4, 2:4].mean(axis=(0, 1)), soft[2:4, 2:4].mean(axis=(0, 1))
    deep = slice(4 + 3, 4 + 8)  # 6-16 mm into lung
    assert np.all(profile_lung[deep] > 1.5 * profile_soft[deep])
    plateau = profile_lung[1]  # liver, a few mm from the edge
    assert profile_lung[4 + 7] > 0.01 * plateau  # still dose 14-16 mm deep in lung
    assert np.all(np.isfinite(lung)) and lung.min() >= 0


def test_materials_follow_density_and_liver_segments():
    density = np.array([0.001, 0.26, 0.95, 1.03, 1.06, 1.5])
    names = [MC_MATERIALS[i].name for i in material_indices(density)]
    assert names == ["air", "lung", "adipose", "soft_tissue", "soft_tissue", "bone"]
    liver = np.array([True] * 6)
    names = [MC_MATERIALS[i].name for i in material_indices(density, liver)]
    assert names == ["air", "lung", "adipose", "liver", "liver", "bone"]


@pytest.mark.parametrize("material", [m for m in MC_MATERIALS if m.composition])
def test_composition_materials_sum_to_one(material):
    assert sum(w for _, w in material.composition) == pytest.approx(1.0, abs=1e-9)
