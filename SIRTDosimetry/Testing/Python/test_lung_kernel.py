"""The lung-aware kernel method (range-scaled kernels) and the Monte Carlo material map; no PenRed needed."""

from __future__ import annotations

import numpy as np
import pytest

from SIRTDosimetryLib.dose.kernels import build_kernel_from_dpk
from SIRTDosimetryLib.dose.lung_kernel import LADDER_RATIO, density_ladder, ladder_weights, vsv_lung_dose_gy
from SIRTDosimetryLib.dose.mc_materials import MC_MATERIALS, material_indices
from SIRTDosimetryLib.dose.vsv import density_corrected, vsv_dose_gy

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


def test_slab_follows_radiological_depth():
    """Beside uniformly active liver, the dose in lung at depth x equals the dose beyond the same
    source in homogeneous liver at the same radiological depth, x * rho_lung / rho_liver (O'Connor
    scaling along each path). The reference is computed on a grid whose layers are thinner by that
    ratio, so layer k of one is layer k of the other. A soft-tissue kernel scaled in amplitude only
    stops at the soft-tissue range instead."""
    liver_layers, lung_layers, n_lat = 8, 6, 13  # 104 mm laterally: wider than twice the lung range
    ratio = 0.26 / 1.06
    spacing, spacing_ref = (4.0, 8.0, 8.0), (4.0 * ratio, 8.0, 8.0)
    shape = (n_lat, n_lat, liver_layers + lung_layers)
    density = np.full(shape, 0.26)
    density[:, :, :liver_layers] = 1.06
    tia = np.where(density > 1, 1e7, 0.0)
    tia_ref = np.zeros(shape)
    tia_ref[:, :, :liver_layers] = 1e7 * ratio  # same activity per mL on the thinner layers
    d_lung = vsv_lung_dose_gy(tia, density, spacing)[6, 6, liver_layers:]
    d_ref = vsv_lung_dose_gy(tia_ref, 1.06, spacing_ref)[6, 6, liver_layers:]
    soft = density_corrected(vsv_dose_gy(tia, build_kernel_from_dpk(spacing, 1.06).values_mgy_per_mbq_s), density, 1.06)
    np.testing.assert_allclose(d_lung[:3], d_ref[:3], rtol=0.03)  # 0-12 mm into lung
    assert np.all(d_lung[1:3] > 3 * soft[6, 6, liver_layers + 1 : liver_layers + 3])
    assert np.all(np.isfinite(d_lung)) and d_lung.min() >= 0


def test_materials_follow_density_and_liver_segments():
    density = np.array([0.001, 0.26, 0.95, 1.03, 1.06, 1.5])
    names = [MC_MATERIALS[i].name for i in material_indices(density)]
    assert names == ["air", "lung", "adipose", "soft_tissue", "soft_tissue", "bone"]
    liver = np.array([True] * 6)
    names = [MC_MATERIALS[i].name for i in material_indices(density, liver)]
    assert names == ["air", "lung", "adipose", "liver", "liver", "bone"]


def test_transport_box_ignores_faint_activity_for_its_extent():
    """A SPECT's noise must not stretch the Monte Carlo box over the whole grid."""
    from SIRTDosimetryLib.dose.montecarlo import transport_box

    tia = np.full((40, 40, 40), 1e-5)
    tia[18:22, 18:22, 18:22] = 1.0
    box = transport_box(tia, np.ones(tia.shape), (4.0, 4.0, 4.0))
    assert [(b.start, b.stop) for b in box] == [(15, 25)] * 3  # 12 mm = 3 voxels around the hot cube


@pytest.mark.parametrize("material", [m for m in MC_MATERIALS if m.composition])
def test_composition_materials_sum_to_one(material):
    assert sum(w for _, w in material.composition) == pytest.approx(1.0, abs=1e-9)
