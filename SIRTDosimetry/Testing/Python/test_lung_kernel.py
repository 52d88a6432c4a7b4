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


def test_activity_in_air_is_not_amplified():
    """Noise in air outside the body (1 % of the tissue's activity) must not raise the skin dose: weighted
    by 1/rho_air it would multiply the outer 4 mm of tissue by 2.6 (4 mm voxels)."""
    density = np.full((5, 5, 10), 1.0)
    density[:, :, 5:] = 0.0012
    tia = np.where(density > 0.5, 1e9, 0.0)
    noisy = np.where(density > 0.5, 1e9, 1e7)
    clean, with_noise = (vsv_lung_dose_gy(a, density, (8.0, 8.0, 8.0))[2, 2, :5] for a in (tia, noisy))
    np.testing.assert_allclose(with_noise, clean, rtol=1e-6)


def test_air_does_not_widen_the_ladder():
    """Air voxels take the lowest tissue kernel: the tissue's dose is that of the same grid with lung
    instead of air, and no kernel below the lung's is built."""
    density = np.full((5, 5, 12), 1.0)
    density[:, :, 6:9] = 0.3
    density[:, :, 9:] = 0.0012
    assert density_ladder(density, (8.0, 8.0, 8.0))[0] == pytest.approx(LADDER_RATIO**-9)  # 0.284 <= 0.3
    tia = np.where(density > 0.5, 1e9, 0.0)
    as_lung = np.where(density < 0.05, 0.3, density)
    with_air, with_lung = (vsv_lung_dose_gy(tia, d, (8.0, 8.0, 8.0))[2, 2, :9] for d in (density, as_lung))
    np.testing.assert_allclose(with_air, with_lung, rtol=1e-6)


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


@pytest.mark.parametrize("exponent", [-2, -9])
def test_scaling_theorem_in_a_homogeneous_medium(exponent):
    """O'Connor's scaling theorem: a medium of density rho in which every length is scaled by 1/rho
    receives rho^2 times the dose of the unit-density medium (same decays per voxel): the energy per
    voxel is the same and the voxel mass is rho * (h/rho)^3 = h^3 / rho^2. Densities on the ladder
    get their own kernel, so this holds to the kernel quadrature's round-off."""
    rho = LADDER_RATIO**exponent
    spacing = (3.0, 3.5, 4.0)
    tia = np.zeros((11, 11, 11))
    tia[5, 5, 5] = 2e9
    tia[2:6, 4:7, 6:9] = 5e8
    unit = vsv_lung_dose_gy(tia, 1.0, spacing)
    scaled = vsv_lung_dose_gy(tia, rho, tuple(a / rho for a in spacing))
    np.testing.assert_allclose(scaled, rho**2 * unit, rtol=1e-4, atol=1e-6 * float(scaled.max()))


def _plane_depth_dose_mev(depth_water_mm: np.ndarray) -> np.ndarray:
    """Energy (MeV) per unit radiological depth (g/cm^2 as mm of water) beyond a uniformly active
    half-space, per decay per g of source: g(X) = int E'(r) (r - X)_+ / (2r) dr, the point kernel
    integrated over a plane (P(z) = int_z E'(r) / (2r) dr) and over the half-space's depths. E' is
    the Graves et al. kernel (energy uniform in r within each 0.1 mm shell) within the 12 mm cut-off."""
    from SIRTDosimetryLib.dose.kernels import BETA_CUTOFF_WATER_MM, load_graves_dpk

    dpk = load_graves_dpk()
    keep = dpk.shells_within(BETA_CUTOFF_WATER_MM)
    a, b, e = dpk.inner_radius_mm[keep], dpk.outer_radius_mm[keep], dpk.energy_mev[keep]
    x = np.asarray(depth_water_mm, dtype=float)[:, None]
    lo = np.clip(x, a, b)  # int_lo^b (r - X) / (2r) dr = [(r - X ln r) / 2]_lo^b, zero where X > b
    log_term = np.where(x > 0, x * np.log(b / np.maximum(lo, 1e-300)), 0.0)  # X ln(b/lo) -> 0 as X -> 0
    return ((e / (b - a)) * 0.5 * ((b - lo) - log_term)).sum(axis=1)


def test_slab_matches_the_analytic_radiological_depth_dose():
    """A uniformly active liver half-space beside lung: in a laterally uniform slab the transport in
    radiological depth X = integral of rho dx does not depend on how the density is distributed
    (Fano's and O'Connor's theorems, one dimension), so the dose in lung at depth x is the plane
    integral of the water point kernel at X = rho_lung * x, per decay per g of source. This reference
    is computed from the point kernel directly, without voxel kernels; each 4 mm lung layer is its
    average over the layer. The method must match it layer by layer.

    The liver is 48 mm thick: the method places every source at its distance scaled by the target's
    density, so it needs the active layer to be deeper than the lung range (42 mm at this lung
    density) to hold the 11.3 mm of liver that reach the lung; a 16 mm liver is 3 % low in the first
    lung layer (the limitation stated in the module docstring)."""
    from SIRTDosimetryLib.nuclides import MEV_TO_J

    spacing = (4.0, 12.0, 12.0)
    rho_liver, rho_lung = 1.06, LADDER_RATIO**-9  # a lung density on the ladder: no interpolation
    liver_layers, lung_layers, n_lat = 12, 10, 9  # 48 mm of liver; 108 mm laterally, more than twice the lung range
    density = np.full((n_lat, n_lat, liver_layers + lung_layers), rho_lung)
    density[:, :, :liver_layers] = rho_liver
    tia_per_voxel = 1e9
    tia = np.where(density > 1, tia_per_voxel, 0.0)
    dose = vsv_lung_dose_gy(tia, density, spacing)[n_lat // 2, n_lat // 2, liver_layers:]
    decays_per_g = tia_per_voxel / (np.prod(spacing) / 1000.0 * rho_liver)
    expected = []
    for k in range(lung_layers):
        depths = np.linspace(k, k + 1, 801) * spacing[0] * rho_lung
        expected.append(np.trapezoid(_plane_depth_dose_mev(depths), depths) / (depths[-1] - depths[0]))
    expected = np.array(expected) * decays_per_g * MEV_TO_J * 1e3
    counted = expected > 1e-3 * expected[0]
    assert counted.sum() >= 7  # 28 mm of lung, down to 1e-3 of the first layer
    np.testing.assert_allclose(dose[counted], expected[counted], rtol=2e-3)
    # a soft-tissue kernel scaled in amplitude only stops at the soft-tissue range instead
    soft = density_corrected(vsv_dose_gy(tia, build_kernel_from_dpk(spacing, rho_liver).values_mgy_per_mbq_s), density, rho_liver)
    assert np.all(dose[1:4] > 3 * soft[n_lat // 2, n_lat // 2, liver_layers + 1 : liver_layers + 4])


def test_summary_names_the_lung_method_and_its_measured_error(tmp_path, patient2_paths):
    """Sample patient 2 (no CT: one density): the summary says which method gave the lung dose and its
    error against Monte Carlo, and the liver mean equals the soft-tissue VSV's within the ladder's
    interpolation (1.03 g/mL between the 1.0 and 1.15 g/mL kernels)."""
    import json

    from sirt.main import main

    spect, seg = patient2_paths
    summaries = {}
    for method in ("vsv", "vsv-lung"):
        out = tmp_path / method
        args = ["dose", "--activity", str(spect), "--segmentation", str(seg), "--mode", "relative", "--administered-activity-gbq",
                "2.0", "--calibration-voi", "liver", "--clamp-negative", "--kernel", "dpk", "--method", method, "--output", str(out)]
        assert main(args) == 0
        summaries[method] = json.loads((out / "summary.json").read_text())
    note = summaries["vsv-lung"]["lung_dose_method"]
    assert "range-scaled" in note and "Monte Carlo" in note and "slab" in note and "phantom" in note and "%" in note
    liver = {m: next(x for x in s["segments"] if x["name"] == "liver")["dose_mean_gy"] for m, s in summaries.items()}
    assert liver["vsv-lung"] == pytest.approx(liver["vsv"], rel=5e-3)