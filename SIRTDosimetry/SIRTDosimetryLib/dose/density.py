"""Mass density per activity voxel from a CT and the scanner's HU-to-density calibration.

The relation between CT numbers and mass density depends on the scanner and its tube voltage
(Schneider, Pedroni & Lomax, Phys Med Biol 1996;41:111), so no default curve is built in: the
user supplies the calibration measured on their scanner as a table of (HU, g/mL) points, and
densities are interpolated linearly between them (held constant beyond the ends). The CT is
registered to the activity image beforehand (same physical space); each activity voxel gets the
mean density of 3×3×3 points spread inside it, so a fine CT is averaged, not point-sampled.

Where the activity grid extends beyond the CT (a PET/SPECT field of view is often longer than the
CT's), nothing is known of the tissue: those points get the default soft-tissue density, never
the −1000 HU of air (which would multiply the local dose a thousandfold), and the caller reports
how many voxels were concerned. Densities are held within the physical range of ``check_density``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import SIRTInputError
from ..nuclides import DENSITY_MAX_G_PER_ML, DENSITY_MIN_G_PER_ML, DENSITY_SOFT_TISSUE_G_PER_ML, check_density
from ..structures import sample_in_voxels



@dataclass(frozen=True)
class HUDensityTable:
    hu: tuple[float, ...]
    density_g_per_ml: tuple[float, ...]
    source: str

    def __post_init__(self) -> None:
        hu = np.asarray(self.hu, dtype=float)
        rho = np.asarray(self.density_g_per_ml, dtype=float)
        if len(hu) < 2 or len(hu) != len(rho):
            raise SIRTInputError(f"an HU-density table needs at least two (HU, g/mL) points, got {len(hu)} HU and {len(rho)} densities")
        if not (np.all(np.isfinite(hu)) and np.all(np.diff(hu) > 0)):
            raise SIRTInputError(f"HU values of the density table must be finite and increasing: {self.hu}")
        for value in rho:
            check_density(value, "a density of the HU-density table")

    def density(self, hu: np.ndarray) -> np.ndarray:
        """Piecewise-linear interpolation, constant beyond the first and last points."""
        return np.interp(hu, self.hu, self.density_g_per_ml)


def read_hu_density_table(path: str | Path) -> HUDensityTable:
    """Read a CSV with columns ``hu`` and ``density_g_per_ml`` (one calibration point per row)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise SIRTInputError(f"cannot read HU-density table {path}: {exc.strerror}") from None
    if not rows or not {"hu", "density_g_per_ml"} <= set(rows[0]):
        raise SIRTInputError(f"HU-density table {path} needs the columns hu,density_g_per_ml")
    try:
        points = sorted((float(r["hu"]), float(r["density_g_per_ml"])) for r in rows)
    except (TypeError, ValueError):
        raise SIRTInputError(f"HU-density table {path} has a value that is not a number") from None
    return HUDensityTable(tuple(p[0] for p in points), tuple(p[1] for p in points), str(path))


@dataclass(frozen=True)
class CTDensity:
    density_g_per_ml: np.ndarray  # (z, y, x) float32 on the activity grid
    voxels_outside_ct: int  # activity voxels partly or wholly outside the CT, given outside_density there


def density_from_ct(
    ct: sitk.Image,
    reference: sitk.Image,
    table: HUDensityTable,
    supersampling: int = 3,
    outside_density_g_per_ml: float = DENSITY_SOFT_TISSUE_G_PER_ML,
) -> CTDensity:
    """Mean mass density (g/mL) in each voxel of ``reference``; points outside the CT get ``outside_density_g_per_ml``.

    Sampled slab by slab along z so that the s³ sub-samples never exist for the whole grid at once.
    """
    check_density(outside_density_g_per_ml, "density outside the CT")
    footprint = sitk.Image(ct.GetSize(), sitk.sitkUInt8) + 1
    footprint.CopyInformation(ct)
    # GetArrayFromImage copies: a view of the temporary resampled image would outlive it.
    if not sitk.GetArrayFromImage(sitk.Resample(footprint, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0)).any():
        raise SIRTInputError("the CT does not overlap the activity image: register it to the activity image first")
    ct = sitk.Cast(ct, sitk.sitkFloat32)
    nx, ny, nz = reference.GetSize()
    density = np.empty((nz, ny, nx), dtype=np.float32)
    outside = 0
    for k in range(0, nz, _SLAB_SLICES):
        start = np.array([0, 0, k])
        stop = np.array([nx, ny, min(k + _SLAB_SLICES, nz)])
        hu = sample_in_voxels(ct, reference, start, stop, supersampling, sitk.sitkLinear, np.nan)
        missing = np.isnan(hu)
        outside += int(np.count_nonzero(missing.any(axis=-1)))
        rho = np.where(missing, outside_density_g_per_ml, table.density(np.where(missing, 0.0, hu)))
        density[k : stop[2]] = np.clip(rho.mean(axis=-1), DENSITY_MIN_G_PER_ML, DENSITY_MAX_G_PER_ML)
    return CTDensity(density, outside)


_SLAB_SLICES = 8
