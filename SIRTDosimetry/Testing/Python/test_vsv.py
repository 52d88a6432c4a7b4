"""VSV convolution (SIRTDosimetryLib.dose.vsv): centring, no wrap-around, agreement with scipy,
float32 accuracy against float64, the uniform-activity limit, and input validation.

Unit bookkeeping used throughout: D [Gy] = Ã [Bq·s] · 1e-6 · S [mGy/(MBq·s)] · 1e-3, so an
activity of 1e9 Bq·s in one voxel gives a dose equal to the kernel values (in Gy).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as signal

from SIRTDosimetryLib.dose.vsv import density_corrected, padded_shape, vsv_dose_gy
from SIRTDosimetryLib.errors import SIRTInputError

BQ_S_FOR_UNIT_DOSE = 1e9
"""Ã (Bq·s) in one voxel whose dose equals the kernel's S values read in Gy."""

FLOAT32_NOISE = 1e-6
"""Tolerance on |error| / max(dose) for the float32 FFT; measured errors are 0.3-5e-7."""


def random_kernel(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Asymmetric positive kernel in [0.5, 1.5): a centring or flip mistake changes the result by O(1)."""
    return np.random.default_rng(seed).uniform(0.5, 1.5, size=shape)


def falloff_kernel(half_width: int = 5, length_vox: float = 0.37) -> np.ndarray:
    """Symmetric kernel shaped like a 90Y VSV (Lanconelli 2.4 mm: 2.5 at the centre, ~1e-6 of that at the edge)."""
    r = np.sqrt(np.sum(np.square(np.indices((2 * half_width + 1,) * 3) - half_width), axis=0))
    return 2.5 * np.exp(-r / length_vox)


def point_dose_expected(shape: tuple[int, int, int], voxel: tuple[int, int, int], kernel: np.ndarray) -> np.ndarray:
    """Brute force: the kernel (in Gy for 1e9 Bq·s) pasted with its centre on ``voxel``, clipped to the grid."""
    expected = np.zeros(shape)
    target, source = [], []
    for n, v, m in zip(shape, voxel, kernel.shape):
        lo, hi = max(0, v - m // 2), min(n, v + m // 2 + 1)
        target.append(slice(lo, hi))
        source.append(slice(lo - (v - m // 2), hi - (v - m // 2)))
    expected[tuple(target)] = kernel[tuple(source)]
    return expected


def relative_error(dose: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(dose - reference)) / np.max(np.abs(reference)))


@pytest.mark.parametrize("kernel_shape", [(11, 11, 11), (7, 9, 11), (1, 3, 5)])
def test_point_source_in_the_middle_reproduces_the_kernel(kernel_shape):
    kernel = random_kernel(kernel_shape)
    shape = (20, 23, 26)
    voxel = (10, 11, 13)
    tia = np.zeros(shape)
    tia[voxel] = BQ_S_FOR_UNIT_DOSE
    dose = vsv_dose_gy(tia, kernel)
    assert dose.dtype == np.float32 and dose.shape == shape
    window = tuple(slice(v - m // 2, v + m // 2 + 1) for v, m in zip(voxel, kernel_shape))
    np.testing.assert_allclose(dose[window], kernel, rtol=FLOAT32_NOISE)
    outside = np.ones(shape, dtype=bool)
    outside[window] = False
    assert np.max(dose[outside]) < FLOAT32_NOISE * kernel.max()
    assert dose.min() >= 0.0


@pytest.mark.parametrize("voxel", [(0, 0, 0), (0, 12, 25), (19, 22, 0), (3, 1, 24)])
def test_point_source_at_edges_and_corners_is_clipped_not_wrapped(voxel):
    kernel = random_kernel((7, 9, 11), seed=1)
    shape = (20, 23, 26)
    tia = np.zeros(shape)
    tia[voxel] = BQ_S_FOR_UNIT_DOSE
    dose = vsv_dose_gy(tia, kernel)
    assert relative_error(dose, point_dose_expected(shape, voxel, kernel)) < FLOAT32_NOISE


def test_no_wrap_around_onto_the_opposite_face():
    """Activity on the whole z=0 face, on a grid whose FFT length is exactly n + h along z.

    With one voxel less of padding the kernel's z = -h plane (values >= 0.5) would alias onto
    the last plane; the exact dose there is 0, the float32 FFT leaves round-off < 1e-6 of the max.
    """
    kernel = random_kernel((11, 5, 7), seed=2)
    shape = (27, 10, 12)
    assert padded_shape(shape, kernel.shape)[0] == shape[0] + 5
    tia = np.zeros(shape)
    tia[0] = BQ_S_FOR_UNIT_DOSE
    tia[0, 0, 0] *= 3.0
    dose = vsv_dose_gy(tia, kernel)
    assert np.max(dose[6:]) < FLOAT32_NOISE * dose.max()
    assert np.max(dose[-1]) < FLOAT32_NOISE * dose.max()
    assert np.all(dose[:6] > 0.1 * dose.max())


@pytest.mark.parametrize(
    ("shape", "kernel_shape"),
    [((12, 15, 17), (5, 7, 9)), ((9, 8, 10), (3, 3, 3)), ((3, 4, 2), (21, 9, 11)), ((1, 1, 1), (3, 5, 3))],
)
def test_agrees_with_fftconvolve_and_brute_force(shape, kernel_shape):
    """ndimage.convolve flips the kernel like a true convolution; with an asymmetric kernel a
    missing flip or a shifted centre would differ by O(1). The third case has a kernel larger than the grid."""
    rng = np.random.default_rng(3)
    tia = rng.uniform(0.0, 1e9, size=shape) * (rng.random(shape) < 0.5)
    kernel = random_kernel(kernel_shape, seed=4)
    dose = vsv_dose_gy(tia, kernel)
    brute = ndi.convolve(tia, kernel, mode="constant", cval=0.0) * 1e-9
    fft64 = signal.fftconvolve(tia, kernel, mode="same") * 1e-9
    assert relative_error(dose, brute) < FLOAT32_NOISE
    assert relative_error(dose, fft64) < FLOAT32_NOISE


def test_float32_accuracy_against_float64_on_a_realistic_kernel():
    """Hot lesion in a warm liver, kernel spanning 6 decades: relative error of the maximum dose.

    Measured: ~1e-7 on the maximum and on the whole field relative to the maximum; asserted < 1e-5 and < 1e-6.
    """
    kernel = falloff_kernel()
    shape = (48, 56, 64)
    z, y, x = np.indices(shape)
    liver = ((z - 24) / 18.0) ** 2 + ((y - 28) / 22.0) ** 2 + ((x - 32) / 26.0) ** 2 < 1.0
    lesion = (z - 20) ** 2 + (y - 30) ** 2 + (x - 40) ** 2 < 25
    tia = 2e10 * liver + 2e11 * lesion
    dose = vsv_dose_gy(tia, kernel)
    reference = signal.fftconvolve(tia, kernel, mode="same") * 1e-9
    assert abs(dose.max() - reference.max()) / reference.max() < 1e-5
    assert dose.argmax() == reference.argmax()
    assert relative_error(dose, reference) < FLOAT32_NOISE


def test_uniform_activity_limit_and_energy_balance():
    """Far inside a uniform region D = Ã_voxel · ΣS; with no activity near the grid edge the
    summed dose is ΣÃ · ΣS (each source deposits its whole kernel inside the grid)."""
    kernel = falloff_kernel(length_vox=1.5)
    h = kernel.shape[0] // 2
    shape = (40, 44, 48)
    tia = np.zeros(shape)
    activity = 3e9
    tia[h:-h, h:-h, h:-h] = activity
    dose = vsv_dose_gy(tia, kernel)
    inside = dose[2 * h : -2 * h, 2 * h : -2 * h, 2 * h : -2 * h]
    expected = activity * 1e-9 * kernel.sum()
    np.testing.assert_allclose(inside, expected, rtol=1e-5)
    assert dose.sum(dtype=np.float64) == pytest.approx(tia.sum() * 1e-9 * kernel.sum(), rel=1e-5)


def test_input_layout_and_dtype_do_not_matter():
    rng = np.random.default_rng(5)
    tia = rng.integers(0, 10**6, size=(14, 9, 11))
    kernel = random_kernel((5, 3, 7), seed=6)
    reference = vsv_dose_gy(tia.astype(np.float64), kernel)
    np.testing.assert_array_equal(vsv_dose_gy(tia, kernel), reference)
    transposed = np.ascontiguousarray(tia.transpose(2, 1, 0)).transpose(2, 1, 0)
    assert not transposed.flags.c_contiguous
    np.testing.assert_array_equal(vsv_dose_gy(transposed, kernel), reference)
    single_thread = vsv_dose_gy(tia, kernel, workers=1)
    np.testing.assert_allclose(single_thread, reference, rtol=0, atol=FLOAT32_NOISE * reference.max())


def test_padding_is_n_plus_half_kernel_rounded_to_a_fast_length():
    assert padded_shape((256, 256, 89), (11, 11, 11)) == (270, 270, 96)
    assert padded_shape((27, 10, 12), (11, 5, 7)) == (32, 12, 15)


@pytest.mark.parametrize(
    ("bad_value", "count", "kind"),
    [(np.nan, 2, "non-finite"), (np.inf, 3, "non-finite"), (-1.0, 4, "negative")],
)
def test_bad_activity_values_are_rejected_with_a_count(bad_value, count, kind):
    tia = np.ones((6, 7, 8))
    tia.flat[:count] = bad_value
    with pytest.raises(SIRTInputError, match=rf"{count} {kind} voxel"):
        vsv_dose_gy(tia, np.ones((3, 3, 3)))


@pytest.mark.parametrize(
    "tia",
    [
        np.ones((6, 7)),
        np.ones((2, 6, 7, 8)),
        np.ones((0, 6, 7)),
        np.ones((4, 4, 4), dtype=bool),
        np.ones((4, 4, 4), dtype=complex),
    ],
)
def test_bad_activity_arrays_are_rejected(tia):
    with pytest.raises(SIRTInputError):
        vsv_dose_gy(tia, np.ones((3, 3, 3)))


@pytest.mark.parametrize("kernel", [np.ones((3, 4, 3)), np.ones((2, 2, 2)), np.ones((3, 3)), np.ones((3, 3, 3, 3))])
def test_kernels_not_3d_with_odd_sizes_are_rejected(kernel):
    with pytest.raises(SIRTInputError, match="odd size"):
        vsv_dose_gy(np.ones((6, 7, 8)), kernel)


def test_bad_kernel_values_are_rejected_with_a_count():
    kernel = np.ones((3, 3, 3))
    kernel[0, 0, :2] = np.nan
    kernel[2, 2, 2] = -0.1
    with pytest.raises(SIRTInputError, match=r"2 non-finite voxel\(s\) and 1 negative voxel"):
        vsv_dose_gy(np.ones((6, 7, 8)), kernel)


def test_density_correction_scales_by_the_density_ratio():
    dose = np.full((2, 3, 4), 10.0, dtype=np.float32)
    density = np.full((2, 3, 4), 1.04)
    density[0, 0, 0] = 0.26
    density[1, 2, 3] = 1.92
    corrected = density_corrected(dose, density, 1.04)
    assert corrected.dtype == np.float32
    assert corrected[0, 0, 0] == pytest.approx(40.0, rel=1e-6)
    assert corrected[1, 2, 3] == pytest.approx(10.0 * 1.04 / 1.92, rel=1e-6)
    assert corrected[1, 1, 1] == pytest.approx(10.0, rel=1e-6)
    np.testing.assert_allclose(density_corrected(dose, 2.08, 1.04), 5.0, rtol=1e-6)


@pytest.mark.parametrize(
    ("density", "kernel_density", "match"),
    [
        (0.0, 1.04, "1 voxel"),
        (np.full((2, 3, 4), -1.0), 1.04, "24 voxel"),
        (np.nan, 1.04, "positive"),
        (np.ones((2, 3, 5)), 1.04, "shape"),
        (1.0, 0.0, "kernel density"),
        (1.0, np.inf, "kernel density"),
    ],
)
def test_density_correction_rejects_bad_densities(density, kernel_density, match):
    with pytest.raises(SIRTInputError, match=match):
        density_corrected(np.ones((2, 3, 4), dtype=np.float32), density, kernel_density)


def test_slab_by_slab_passes_agree_with_whole_grid_passes(monkeypatch):
    """The FFT passes and the kernel spectrum are made a few planes or rows at a time; slabs of one
    voxel row (uneven last slabs, every boundary exercised) give the float64 result too."""
    import SIRTDosimetryLib.dose.vsv as vsv

    rng = np.random.default_rng(5)
    tia = rng.uniform(0.0, 1e9, size=(11, 13, 9))
    kernel = random_kernel((5, 7, 3), seed=6)
    whole = vsv_dose_gy(tia, kernel)
    monkeypatch.setattr(vsv, "SLAB_VOXELS", 7)
    sliced = vsv_dose_gy(tia, kernel)
    reference = signal.fftconvolve(tia, kernel, mode="same") * 1e-9
    assert relative_error(sliced, reference) < FLOAT32_NOISE
    assert relative_error(sliced, whole) < FLOAT32_NOISE
