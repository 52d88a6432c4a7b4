"""Lung shunt and activity planning on MRML nodes, for the SIRT Dosimetry module's planning panel.

The physics is ``analysis.planning`` (partition model, limits per microsphere type, with sources) and
``analysis.constraints`` (lung shunt fraction from planar or SPECT counts); this module measures what
they need on the nodes the user picked (a 99mTc-MAA SPECT and its segmentation) and words the plan for
the panel. The command line's ``sirt plan`` runs the same functions on files.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis.planning import PartitionInputs, PartitionPlan, limits_for, measure_maa, plan_partition
from ..errors import SIRTInputError
from ..nuclides import DENSITY_LUNG_G_PER_ML, DENSITY_SOFT_TISSUE_G_PER_ML
from . import convert

CONVENTIONAL_LUNG_MASS_G = 1000.0
"""Lung mass assumed when no lung segment is given, for the plan and for the lung dose of a relative
calibration in the module (Ho et al., Eur J Nucl Med 1996;23:947)."""

def _measure(activity_node, segmentation_node, tumours=(), perfused=None, whole_liver=None, lung=None, clamp_negative=False):
    names = [n for n in (*tumours, perfused, whole_liver, lung) if n]
    image = convert.image_from_volume_node(activity_node)
    segmentation = convert.segmentation_from_node(segmentation_node, activity_node, names)
    return measure_maa(image, segmentation, list(tumours), perfused=perfused, whole_liver=whole_liver, lung=lung,
                       clamp_negative=clamp_negative)


def spect_lung_shunt_fraction(activity_node, segmentation_node, lung: str, liver: str, clamp_negative: bool = False) -> float:
    """LSF = C_lung / (C_lung + C_liver) from the counts of a (MAA) SPECT in the lung and liver segments,
    partial voxels weighted by their covered fraction."""
    return _measure(activity_node, segmentation_node, whole_liver=liver, lung=lung, clamp_negative=clamp_negative).lsf


@dataclass(frozen=True)
class PlanRequest:
    """What the planning panel asks: the segments, the lung shunt, the microspheres and one prescription."""

    tumours: tuple[str, ...]
    perfused: str  # perfused liver segment (normal perfused liver = perfused - tumours)
    whole_liver: str | None = None
    lung: str | None = None  # lung segment: its mass (0.3 g/mL) and, without ``lsf``, the LSF from counts
    lsf: float | None = None
    microspheres: str = "glass"  # glass | resin: the limits of analysis.planning.MICROSPHERE_LIMITS
    activity_gbq: float | None = None  # activity -> doses
    target_tumour_gy: float | None = None  # tumour dose -> activity
    residual_fraction: float = 0.0
    clamp_negative: bool = False


def plan_from_nodes(activity_node, segmentation_node, request: PlanRequest) -> PartitionPlan:
    """Partition-model plan from a 99mTc-MAA SPECT node: masses (1.03 g/mL; lungs 0.3 g/mL or 1000 g) and
    TNR measured on the segments, the plan's doses and its maximum activity within the limits."""
    if not request.tumours:
        raise SIRTInputError("planning needs the tumour segments")
    maa = _measure(activity_node, segmentation_node, request.tumours, request.perfused, request.whole_liver, request.lung,
                   request.clamp_negative)
    lsf = request.lsf if request.lsf is not None else maa.lsf
    if lsf is None:
        raise SIRTInputError("planning needs the lung shunt fraction: enter it, or compute it from planar counts or a lung segment")
    if maa.tnr is None:
        raise SIRTInputError("the tumour-to-normal ratio could not be measured: " + "; ".join(maa.warnings))
    lung_mass = maa.lung_volume_ml * DENSITY_LUNG_G_PER_ML if maa.lung_volume_ml else CONVENTIONAL_LUNG_MASS_G
    whole = maa.whole_normal_volume_ml * DENSITY_SOFT_TISSUE_G_PER_ML if maa.whole_normal_volume_ml else None
    inputs = PartitionInputs(
        maa.tumour_volume_ml * DENSITY_SOFT_TISSUE_G_PER_ML, maa.normal_perfused_volume_ml * DENSITY_SOFT_TISSUE_G_PER_ML,
        maa.tnr, lsf, lung_mass, whole, request.residual_fraction,
    )
    plan = plan_partition(inputs, limits_for(request.microspheres), activity_gbq=request.activity_gbq,
                          target_tumour_gy=request.target_tumour_gy)
    plan.warnings.extend(maa.warnings)
    if not maa.lung_volume_ml:
        plan.assumptions.append(f"lung mass {CONVENTIONAL_LUNG_MASS_G:g} g (no lung segment)")
    return plan


def plan_text(plan: PartitionPlan) -> str:
    """The plan in a few lines for the panel."""
    inputs = plan.inputs
    lines = [
        f"Tumour {inputs.tumour_mass_g:.0f} g, normal perfused liver {inputs.normal_liver_mass_g:.0f} g, "
        f"TNR {inputs.tnr:.2f}, lung shunt {100 * inputs.lsf:.1f} %, lungs {inputs.lung_mass_g:.0f} g",
    ]
    if plan.doses is not None:
        d = plan.doses
        tumour = f"tumour {d.tumour_gy:.0f} Gy, " if d.tumour_gy is not None else ""
        whole = f", whole normal liver {d.whole_normal_liver_gy:.0f} Gy" if d.whole_normal_liver_gy is not None else ""
        lines.append(f"{plan.activity_gbq:.2f} GBq ({plan.prescription}): {tumour}normal perfused liver "
                     f"{d.normal_perfused_liver_gy:.0f} Gy{whole}, lungs {d.lung_gy:.1f} Gy")
    if plan.max_activity_gbq is not None:
        lines.append(f"Maximum activity within the limits: {plan.max_activity_gbq:.2f} GBq (limited by {plan.limiting_constraint})")
    lines += [f"Exceeds: {w}" for w in plan.warnings]
    lines += [f"Assumed: {a}" for a in plan.assumptions]
    return "\n".join(lines)
