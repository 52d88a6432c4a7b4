"""Quality checks of a registration: overlap and surface distance of a contour, Jacobian of a deformation.

- Dice similarity coefficient: DSC = 2|A∩B| / (|A| + |B|) (Dice, Ecology 1945;26:297-302).
- Mean surface distance, symmetric: the mean, over the boundary voxels of both contours, of the
  distance (mm) to the nearest boundary voxel of the other (as in Heimann et al., IEEE Trans Med
  Imaging 2009;28:1251-1265). Distances come from SimpleITK's exact Euclidean (Maurer) distance map
  of the other contour's boundary, in physical units.
- Jacobian determinant J(x) = det(I + ∇u(x)) of the displacement field u: local volume change;
  J ≤ 0 means the deformation folds space (tissue passes through itself), which is never
  anatomical (Christensen, Rabbitt & Miller, IEEE Trans Image Process 1996;5:1435-1447).

A registration passes the gate only when each check it has is within its limit and at least one
check that can see a failure (a reference contour) was made: an unchecked registration is
reported as such, never as passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..errors import SIRTInputError

DEFAULT_MIN_DICE = 0.85
"""Liver Dice a carried contour must reach against the reference, as in clinical MRI-to-SPECT/PET studies."""


@dataclass(frozen=True)
class QAGate:
    """Limits a registration must meet to pass; ``None`` leaves a check out of the gate."""

    min_dice: float = DEFAULT_MIN_DICE
    max_mean_surface_distance_mm: float | None = None

    def __post_init__(self):
        if not 0.0 <= self.min_dice <= 1.0:
            raise SIRTInputError(f"the Dice gate must lie in [0, 1], got {self.min_dice}")
        if self.max_mean_surface_distance_mm is not None and self.max_mean_surface_distance_mm <= 0:
            raise SIRTInputError(f"the surface-distance gate must be positive, got {self.max_mean_surface_distance_mm} mm")


@dataclass(frozen=True)
class ContourAgreement:
    segment: str
    dice: float
    mean_surface_distance_mm: float | None  # None when the carried contour is empty (left the fixed grid)
    carried_volume_ml: float
    reference_volume_ml: float


@dataclass(frozen=True)
class JacobianRange:
    minimum: float
    maximum: float
    folding_voxels: int
    folding_volume_ml: float

    @property
    def folds(self) -> bool:
        return self.folding_voxels > 0


@dataclass(frozen=True)
class GateVerdict:
    """``status`` is "pass", "fail" or "unchecked" (no reference contour: nothing could show a failure)."""

    status: str
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def _check_same_grid(a: sitk.Image, b: sitk.Image) -> None:
    same = (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-6)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)
    )
    if not same:
        raise SIRTInputError("contours to compare must lie on the same grid")


def _surface_distances_mm(from_mask: sitk.Image, to_mask: sitk.Image) -> np.ndarray:
    """Distance (mm) from each boundary voxel of ``from_mask`` to the boundary of ``to_mask``."""
    to_boundary = sitk.LabelContour(to_mask, fullyConnected=True)
    # Outside the one-voxel-thick boundary the map is the distance to its nearest voxel centre; on it, 0.
    distance = sitk.GetArrayFromImage(
        sitk.SignedMaurerDistanceMap(to_boundary, insideIsPositive=False, squaredDistance=False, useImageSpacing=True))
    from_boundary = sitk.GetArrayFromImage(sitk.LabelContour(from_mask, fullyConnected=True)) > 0
    return np.maximum(distance[from_boundary], 0.0)


def contour_agreement(carried: sitk.Image, reference: sitk.Image, segment: str) -> ContourAgreement:
    """Dice and symmetric mean surface distance of two binary masks on one grid."""
    _check_same_grid(carried, reference)
    a = sitk.GetArrayViewFromImage(carried) > 0
    b = sitk.GetArrayViewFromImage(reference) > 0
    voxel_ml = float(np.prod(carried.GetSpacing())) * 1e-3
    if not b.any():
        raise SIRTInputError(f"the reference contour of {segment!r} is empty on the fixed grid")
    if not a.any():  # the carried contour left the fixed grid: the worst agreement, not an error
        return ContourAgreement(segment, 0.0, None, 0.0, float(b.sum()) * voxel_ml)
    dice = 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))
    a_img = sitk.Cast(carried > 0, sitk.sitkUInt8)
    b_img = sitk.Cast(reference > 0, sitk.sitkUInt8)
    distances = np.concatenate([_surface_distances_mm(a_img, b_img), _surface_distances_mm(b_img, a_img)])
    return ContourAgreement(segment, float(dice), float(distances.mean()), float(a.sum()) * voxel_ml, float(b.sum()) * voxel_ml)


def jacobian_range(displacement_field: sitk.Image) -> JacobianRange:
    """Range of the Jacobian determinant of a displacement field (vectors in mm), and where it folds (inner voxels)."""
    if displacement_field.GetNumberOfComponentsPerPixel() != displacement_field.GetDimension():
        raise SIRTInputError("a displacement field needs one vector component per image axis")
    if min(displacement_field.GetSize()) < 3:
        raise SIRTInputError("a displacement field needs at least 3 voxels along each axis for its Jacobian")
    determinant = sitk.GetArrayFromImage(sitk.DisplacementFieldJacobianDeterminant(
        sitk.Cast(displacement_field, sitk.sitkVectorFloat64), True))
    # The filter's derivatives on the outermost voxels see a zero-flux padding, not the field: leave them out.
    determinant = determinant[1:-1, 1:-1, 1:-1]
    folding = int(np.count_nonzero(determinant <= 0))
    voxel_ml = float(np.prod(displacement_field.GetSpacing())) * 1e-3
    return JacobianRange(float(determinant.min()), float(determinant.max()), folding, folding * voxel_ml)


def judge(gate: QAGate, agreement: ContourAgreement | None, jacobian: JacobianRange | None) -> GateVerdict:
    """Apply the gate. Folding always fails; without a reference contour the verdict is "unchecked"."""
    reasons = []
    if jacobian is not None and jacobian.folds:
        reasons.append(
            f"the deformation folds: Jacobian determinant ≤ 0 in {jacobian.folding_voxels} voxels "
            f"({jacobian.folding_volume_ml:.1f} mL; minimum {jacobian.minimum:.2f})"
        )
    if agreement is not None:
        if not agreement.dice >= gate.min_dice:
            reasons.append(f"{agreement.segment} Dice {agreement.dice:.3f} is below the gate {gate.min_dice:.2f}")
        limit, distance = gate.max_mean_surface_distance_mm, agreement.mean_surface_distance_mm
        if limit is not None and distance is None:
            reasons.append(f"{agreement.segment}: the carried contour is empty on the fixed grid")
        elif limit is not None and not distance <= limit:
            reasons.append(f"{agreement.segment} mean surface distance {distance:.1f} mm exceeds the gate {limit:.1f} mm")
    if reasons:
        return GateVerdict("fail", reasons)
    if agreement is None:
        return GateVerdict("unchecked", ["no reference contour: check the overlay picture before using the result"])
    return GateVerdict("pass")
