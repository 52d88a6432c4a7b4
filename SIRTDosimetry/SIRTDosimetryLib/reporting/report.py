"""The per-patient report from a ``sirt dose`` output folder (and, when present, ``sirt dvh`` and ``sirt plan``).

:func:`make_report` reads the dose map, the image it was computed from and the segmentation (paths
from ``summary.json``), draws the pictures and writes ``report.html`` and ``report.pdf`` together
(never overwriting an existing report unless asked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import SimpleITK as sitk

from ..analysis.comparison import resample_like
from ..analysis.derived import DEFAULT_TUMOUR_PATTERNS, match_names
from ..errors import SIRTInputError
from ..io.segmentations import read_segmentation
from ..io.volumes import read_activity_image, read_image
from ..io.writers import commit_outputs
from ..structures import map_segments
from .content import ReportContent, build_content, read_json
from .figures import DEFAULT_ISODOSE_LEVELS_GY, DoseView, ReportFigure, check_levels, comparison_figure, cropped, mip_figure, slices_figure, to_lps
from .render import render_html, render_pdf

REPORT_FILES = ("report.html", "report.pdf")
DVH_PLOTS = (("dvh_dose.png", "Dose-volume histograms"), ("dvh_bed.png", "BED-volume histograms"))


@dataclass(frozen=True)
class ReportRequest:
    """What to put in a report; every path is checked by :func:`check_request` before any image is read."""

    dose_dir: Path
    patient_id: str
    case: str
    output: Path | None = None  # default: dose_dir
    dvh_dir: Path | None = None  # default: dose_dir / "dvh" when it exists
    plan: Path | None = None  # plan.json of 'sirt plan'
    compare_dir: Path | None = None  # a second 'sirt dose' folder shown side by side (e.g. MAA vs 90Y)
    compare_label: str | None = None
    isodose_levels_gy: tuple[float, ...] = DEFAULT_ISODOSE_LEVELS_GY
    tumours: tuple[str, ...] = DEFAULT_TUMOUR_PATTERNS
    synthetic: bool = False


def check_request(request: ReportRequest) -> ReportRequest:
    """Validate the request (files present, levels sensible); returns it with defaults filled in."""
    for path, what in ((request.dose_dir / "summary.json", "dose summary"), (request.dose_dir / "dose_gy.nrrd", "dose map")):
        if not path.is_file():
            raise SIRTInputError(f"{what} not found: {path} (run 'sirt dose' first)")
    levels = check_levels(request.isodose_levels_gy)
    if not request.patient_id.strip():
        raise SIRTInputError("the patient ID is empty")
    dvh_dir = request.dvh_dir
    if dvh_dir is None and (request.dose_dir / "dvh" / "constraints.json").is_file():
        dvh_dir = request.dose_dir / "dvh"
    if dvh_dir is not None and not (dvh_dir / "constraints.json").is_file():
        raise SIRTInputError(f"constraints.json not found in {dvh_dir} (run 'sirt dvh' first)")
    if request.plan is not None and not request.plan.is_file():
        raise SIRTInputError(f"plan not found: {request.plan}")
    if request.compare_dir is not None and not (request.compare_dir / "dose_gy.nrrd").is_file():
        raise SIRTInputError(f"dose map to compare not found: {request.compare_dir / 'dose_gy.nrrd'}")
    return ReportRequest(**{**request.__dict__, "dvh_dir": dvh_dir, "isodose_levels_gy": levels,
                            "output": request.output or request.dose_dir})


def _background(summary: dict, dose: sitk.Image) -> tuple[sitk.Image, str]:
    """The image the dose was computed from, on the dose grid; the dose itself if that image is gone."""
    inputs = summary["provenance"]["inputs"]
    activity = Path(inputs["activity"]["path"]) if "activity" in inputs else None
    if activity is not None and activity.exists():
        image = read_activity_image(activity).image
        units = summary["calibration"].get("details", {}).get("units") or "image values"
        return resample_like(image, dose), f"activity image ({units})"
    return dose, "dose map (the activity image was not found)"


def dose_view(dose_dir: Path, summary: dict, segmentation=None) -> DoseView:
    """The dose of a ``sirt dose`` folder with its background image and reported segments, in LPS order."""
    dose = to_lps(read_image(dose_dir / "dose_gy.nrrd"))
    background, background_label = _background(summary, dose)
    if segmentation is None:
        segmentation = read_segmentation(summary["provenance"]["inputs"]["segmentation"]["path"])
    names = [s["name"] for s in summary["segments"]]
    structures = map_segments(segmentation, dose, names, mode="center")
    masks = {n: s.weights > 0 for n, s in structures.items()}
    return DoseView(sitk.GetArrayFromImage(dose), sitk.GetArrayFromImage(background), background_label, masks, dose.GetSpacing())


def _other_dose(view: DoseView, other_dir: Path, reference: sitk.Image) -> DoseView:
    """A second dose map resampled onto the grid of ``view`` (before cropping), with its background and structures."""
    other = resample_like(read_image(other_dir / "dose_gy.nrrd"), reference)
    return DoseView(sitk.GetArrayFromImage(other), view.background, view.background_label, view.masks, view.spacing_mm)


def tumour_names(names: Sequence[str], patterns: Sequence[str]) -> list[str]:
    return [n for n in names if any(match_names(p, [n]) for p in patterns)]


def dose_figures(full: DoseView, label: str, case: str, levels_gy: Sequence[float], tumour_patterns: Sequence[str],
                 compare: tuple[str, DoseView] | None = None) -> list[ReportFigure]:
    """Slices through each tumour, the MIP and, with ``compare`` (label, view on the same grid), the two
    dose maps side by side through each tumour."""
    view = cropped(full)
    tumours = [t for t in tumour_names(list(view.masks), tumour_patterns) if view.masks[t].any()]
    figures = [slices_figure(view, name, label, levels_gy) for name in tumours]
    figures.append(mip_figure(view, label, levels_gy))
    if compare is not None:
        views = {case: view, compare[0]: cropped(compare[1])}
        for name in tumours or [n for n in view.masks if view.masks[n].any()][:1]:
            figures.append(comparison_figure(views, name, label, levels_gy))
    return figures


def make_figures(request: ReportRequest, summary: dict, label: str) -> list[ReportFigure]:
    full = dose_view(request.dose_dir, summary)
    compare = None
    if request.compare_dir is not None:
        reference = to_lps(read_image(request.dose_dir / "dose_gy.nrrd"))
        compare = (request.compare_label or request.compare_dir.name, _other_dose(full, request.compare_dir, reference))
    figures = dose_figures(full, label, request.case, request.isodose_levels_gy, request.tumours, compare)
    if request.dvh_dir is not None:
        for file, title in DVH_PLOTS:
            if (request.dvh_dir / file).is_file():
                figures.append(ReportFigure(file.removesuffix(".png"), title, f"From {request.dvh_dir / file}.",
                                            (request.dvh_dir / file).read_bytes(), ()))
    return figures


def build_report(request: ReportRequest) -> ReportContent:
    """Tables, warnings and pictures of a report (nothing written)."""
    request = check_request(request)
    summary = read_json(request.dose_dir / "summary.json", "dose summary")
    constraints = read_json(request.dvh_dir / "constraints.json", "constraints") if request.dvh_dir else None
    plan = read_json(request.plan, "plan") if request.plan else None
    content = build_content(request.patient_id, request.case, summary, constraints, plan, request.synthetic)
    content.figures = make_figures(request, summary, content.label)
    return content


def make_report(request: ReportRequest, overwrite: bool = False) -> tuple[ReportContent, list[Path]]:
    """Build the report and write ``report.html`` and ``report.pdf`` into the request's output folder."""
    request = check_request(request)
    content = build_report(request)
    summary = read_json(request.dose_dir / "summary.json", "dose summary")
    inputs = [d["path"] for d in summary["provenance"]["inputs"].values()]
    return content, write_report(content, request.output, inputs, overwrite)


def write_report(content: ReportContent, output: Path, inputs: Sequence[str | Path] = (), overwrite: bool = False) -> list[Path]:
    """``report.html`` and ``report.pdf`` of ``content`` into ``output``, together or not at all."""
    writers = {
        "report.html": lambda path: path.write_text(render_html(content), encoding="utf-8"),
        "report.pdf": partial(render_pdf, content),
    }
    return commit_outputs(Path(output), writers, inputs=inputs, overwrite=overwrite)
