"""Elastix parameter maps for the registrations SIRT dosimetry needs, as plain dictionaries.

Every preset is multi-resolution (a smoothing pyramid; the coarsest level smooths the most) and
uses Mattes mutual information, which is valid within and across modalities (Mattes et al., IEEE
Trans Med Imaging 2003;22:120-128). The stages follow the elastix model zoo and manual (Klein et
al., IEEE Trans Med Imaging 2010;29:196-205): a rigid (Euler) stage, an affine stage, then a cubic
B-spline stage whose coarse control-point grid keeps the deformation smooth. No bending-energy
penalty: with it, the itk-elastix 0.25 wheel crashes in the optimiser's automatic step estimation
(elastix's maintainers consider dropping it from the B-spline default too, SuperElastix/elastix
#1377); folding is checked afterwards from the Jacobian determinant instead (``qa.py``).

Modality presets differ in the grid the B-spline control points use and in the histogram bins:
emission images (SPECT, PET) carry little detail below ~1-2 cm, so their control-point spacing is
coarser than for CT or MRI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import SIRTInputError

TransformKind = Literal["rigid", "affine", "deformable"]
TRANSFORM_KINDS: tuple[str, ...] = ("rigid", "affine", "deformable")


@dataclass(frozen=True)
class ModalityPreset:
    """What changes between the modality presets."""

    description: str
    histogram_bins: int
    bspline_grid_spacing_mm: float


PRESETS: dict[str, ModalityPreset] = {
    "spect": ModalityPreset("SPECT or SPECT/CT emission images (MAA, 90Y bremsstrahlung)", 32, 40.0),
    "pet": ModalityPreset("PET or PET/CT emission images (90Y PET)", 32, 30.0),
    "ct": ModalityPreset("CT to CT (the CTs of two hybrid scans, or a diagnostic CT)", 48, 20.0),
    "mri": ModalityPreset("MRI to a CT or emission image (diagnostic contours)", 48, 25.0),
}
"""Modality presets by name; the name is that of the moving-to-fixed pair's harder side."""


@dataclass(frozen=True)
class RegistrationSettings:
    """What a registration run is asked to do; every field is recorded in the QA record."""

    transform: TransformKind = "rigid"
    preset: str = "spect"
    resolutions: int = 3
    iterations: int = 250
    spatial_samples: int = 3000
    bspline_grid_spacing_mm: float | None = None  # None: the preset's
    threads: int | None = None  # None: elastix's default (all cores)

    def __post_init__(self):
        if self.transform not in TRANSFORM_KINDS:
            raise SIRTInputError(f"unknown transform {self.transform!r}; choose one of {', '.join(TRANSFORM_KINDS)}")
        if self.preset not in PRESETS:
            raise SIRTInputError(f"unknown registration preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        for name in ("resolutions", "iterations", "spatial_samples"):
            if getattr(self, name) < 1:
                raise SIRTInputError(f"registration {name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}")
        if self.bspline_grid_spacing_mm is not None and self.bspline_grid_spacing_mm <= 0:
            raise SIRTInputError(f"B-spline grid spacing must be positive, got {self.bspline_grid_spacing_mm} mm")


def _common(settings: RegistrationSettings, transform: str) -> dict[str, list[str]]:
    preset = PRESETS[settings.preset]
    return {
        "Registration": ["MultiResolutionRegistration"],
        "Transform": [transform],
        "Metric": ["AdvancedMattesMutualInformation"],
        "NumberOfHistogramBins": [str(preset.histogram_bins)],
        "FixedImagePyramid": ["FixedSmoothingImagePyramid"],
        "MovingImagePyramid": ["MovingSmoothingImagePyramid"],
        "NumberOfResolutions": [str(settings.resolutions)],
        "Optimizer": ["AdaptiveStochasticGradientDescent"],
        "AutomaticParameterEstimation": ["true"],
        "MaximumNumberOfIterations": [str(settings.iterations)],
        "ImageSampler": ["RandomCoordinate"],
        "NumberOfSpatialSamples": [str(settings.spatial_samples)],
        "NewSamplesEveryIteration": ["true"],
        "CheckNumberOfSamples": ["true"],
        "MaximumNumberOfSamplingAttempts": ["8"],
        "ErodeMask": ["false"],
        "Interpolator": ["LinearInterpolator"],
        "ResampleInterpolator": ["FinalLinearInterpolator"],
        "Resampler": ["DefaultResampler"],
        "DefaultPixelValue": ["0"],
        "WriteResultImage": ["false"],
        "FixedInternalImagePixelType": ["float"],
        "MovingInternalImagePixelType": ["float"],
        "HowToCombineTransforms": ["Compose"],
        # Fixed seed: the same inputs give the same transform.
        "RandomSeed": ["121212"],
    }


def parameter_maps(settings: RegistrationSettings) -> list[dict[str, list[str]]]:
    """The elastix stages for ``settings``, run one after the other (each starts from the previous)."""
    # No automatic initialisation: the scanners' patient coordinates are trusted as the start, and
    # the rotation centre is the fixed image's centre (elastix's default).
    rigid = _common(settings, "EulerTransform") | {"AutomaticScalesEstimation": ["true"]}
    maps = [rigid]
    if settings.transform in ("affine", "deformable"):
        maps.append(_common(settings, "AffineTransform") | {"AutomaticScalesEstimation": ["true"]})
    if settings.transform == "deformable":
        preset = PRESETS[settings.preset]
        spacing = settings.bspline_grid_spacing_mm or preset.bspline_grid_spacing_mm
        bspline = _common(settings, "BSplineTransform") | {
            "FinalGridSpacingInPhysicalUnits": [str(spacing)],
            # Control points twice as far apart at each coarser level.
            "GridSpacingSchedule": [str(2.0 ** (settings.resolutions - 1 - level)) for level in range(settings.resolutions)],
            "BSplineTransformSplineOrder": ["3"],
        }
        maps.append(bspline)
    return maps
