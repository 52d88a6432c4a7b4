"""What a patient report says: tables built from the outputs of ``sirt dose``, ``sirt dvh`` and ``sirt plan``.

Everything is read back from the files those commands wrote (``summary.json``, ``constraints.json``,
``plan.json``, the DVH plots), so a report can be made at any time later from an output folder and
says exactly what the files say.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..dose.plausibility import lung_dose_partition_gy
from ..errors import SIRTInputError
from ..nuclides import radionuclide
from ..provenance import software_versions
from .figures import ReportFigure

CONVENTIONAL_LUNG_MASS_G = 1000.0
"""Lung mass assumed for the lung dose from the lung shunt fraction (Ho et al. Eur J Nucl Med 1997;24:293)."""

DOSE_TABLE_COLUMNS = ("volume_ml", "mass_g", "activity_mbq", "dose_mean_gy", "dose_min_gy", "dose_max_gy", "bed_mean_gy", "eqd2_mean_gy")
CONSTRAINT_GROUPS = {
    "Dose-volume constraints: dose coverage": ("dose_mean_gy", "dose_d98_gy", "dose_d95_gy", "dose_d70_gy", "dose_d50_gy", "dose_d2_gy"),
    "Dose-volume constraints: volumes above dose levels": ("dose_v100_pct", "dose_v120_pct", "dose_v205_pct", "dose_v30_pct", "dose_v40_pct", "dose_v70_pct"),
    "Dose-volume constraints: BED and tumour-to-normal ratios": ("bed_mean_gy", "bed_d95_gy", "bed_d70_gy", "tnr_npl", "tnr_wnl"),
}
"""Constraints shown in the report when present, by table (all of them are in constraints.csv)."""


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    note: str = ""


@dataclass
class ReportContent:
    """Everything a report shows, ready to render as HTML or PDF."""

    patient_id: str
    case: str
    method_label: str
    created_utc: str
    tables: list[Table] = field(default_factory=list)
    figures: list[ReportFigure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    synthetic: bool = False

    @property
    def label(self) -> str:
        """Patient, case and method: printed on every picture and page."""
        prefix = "SYNTHETIC | " if self.synthetic else ""
        return f"{prefix}patient {self.patient_id} | {self.case} | {self.method_label}"

    def table(self, title: str) -> Table:
        for t in self.tables:
            if t.title == title:
                return t
        raise KeyError(title)


def read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise SIRTInputError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SIRTInputError(f"cannot read {what} {path}: {exc}") from None


def method_label(summary: dict) -> str:
    method = {"ldm": "local deposition", "vsv": "voxel S-value convolution"}.get(summary["method"], summary["method"])
    mode = summary["calibration"]["mode"]
    return f"{summary['radionuclide']['name']} {method}, {mode} calibration"


def _number(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 0.5 * 10 ** -digits):
        return f"{value:.3g}"
    return f"{value:.{digits}f}"


def _flatten(prefix: str, value) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flatten(f"{prefix}{k}.", v)]
    return [(prefix.rstrip("."), _number(value, 4) if isinstance(value, float) else str(value))]


def dose_table(summary: dict) -> Table:
    rows = []
    for s in summary["segments"]:
        values = {**s, "activity_mbq": s["activity_bq"] / 1e6}
        rows.append((s["name"], *(_number(values.get(c)) for c in DOSE_TABLE_COLUMNS)))
    return Table("Dose per structure", ("structure", *DOSE_TABLE_COLUMNS), tuple(rows),
                 "Volumes, masses and means weighted by the fraction of each voxel inside the structure.")


def inputs_table(summary: dict) -> Table:
    inputs = summary["provenance"]["inputs"]
    rows = tuple((name, Path(d["path"]).name, d["sha256"]) for name, d in inputs.items())
    folders = sorted({str(Path(d["path"]).parent) for d in inputs.values()})
    return Table("Inputs", ("input", "file", "sha256"), rows, f"Folder(s): {', '.join(folders)}")


def calibration_table(summary: dict) -> Table:
    rows = [(k, v) for k, v in _flatten("", summary["calibration"])]
    rows += [(f"invalid voxels: {k}", str(v)) for k, v in summary["invalid_voxels"].items()]
    return Table("Calibration and checks", ("item", "value"), tuple(rows))


def method_table(summary: dict) -> Table:
    params = summary["provenance"]["parameters"]
    nuclide = summary["radionuclide"]
    rows = [
        ("method", summary["method"]),
        ("radionuclide", f"{nuclide['name']} (T1/2 {nuclide['half_life_h']} h, {nuclide['energy_per_activity_j_per_gbq']:.2f} J/GBq)"),
        ("kernel", summary.get("kernel") or "-"),
        ("tissue density (g/mL)", str(params.get("density_g_per_ml"))),
        ("segment densities (g/mL)", json.dumps(params.get("segment_densities_g_per_ml") or {})),
        ("partial voxels", str(params.get("partial_voxels"))),
        ("negative/NaN voxels set to zero", str(params.get("clamp_invalid"))),
    ]
    return Table("Method", ("item", "value"), tuple(rows), nuclide.get("source", ""))


def lq_table(summary: dict) -> Table | None:
    lq = summary["provenance"]["parameters"].get("radiobiology") or {}
    if not lq:
        return None
    rows = tuple((name, _number(p["alpha_beta_gy"]), _number(p["repair_half_time_h"])) for name, p in lq.items())
    return Table("Linear-quadratic parameters (BED, EQD2)", ("structure", "alpha_beta_gy", "repair_half_time_h"), rows,
                 "Where structures overlap the later entry wins.")


def constraints_tables(constraints: dict) -> list[Table]:
    notes = ("D_x: minimum dose to the hottest x % of the volume.", "V_x: % of the volume receiving at least x Gy.",
             "tnr_npl / tnr_wnl: tumour-to-normal ratio against the normal perfused / whole normal liver.")
    tables = []
    for (title, columns), note in zip(CONSTRAINT_GROUPS.items(), notes):
        present = [c for c in columns if any(s["features"].get(c) is not None for s in constraints["structures"])]
        if present:
            rows = tuple((s["name"], s["role"], *(_number(s["features"].get(c)) for c in present)) for s in constraints["structures"])
            tables.append(Table(title, ("structure", "role", *present), rows, note))
    return tables


def lung_table(summary: dict, constraints: dict | None, plan: dict | None) -> Table | None:
    """Lung shunt fraction and lung dose, from whatever the outputs hold."""
    rows = []
    lung = summary.get("lung")
    if lung:
        origin = f"segment {lung['segment']}" if lung["method"] == "segment" else f"partition model, {lung['lung_mass_g']:g} g lungs"
        rows.append(("lung dose (Gy)", _number(lung["dose_gy"]), f"dose summary: {origin}"))
    patient = (constraints or {}).get("patient", {})
    lsf, activity = patient.get("lsf"), patient.get("injected_activity_gbq")
    if lsf is not None:
        rows.append(("lung shunt fraction", _number(lsf, 3), patient.get("lsf_method", "")))
    if activity is not None:
        rows.append(("injected activity (GBq)", _number(activity, 2), "given"))
    if lsf is not None and activity is not None and not lung:
        nuclide = radionuclide(summary["provenance"]["parameters"].get("radionuclide") or "y90")
        gy = lung_dose_partition_gy(activity * 1e9, lsf, 0.0, CONVENTIONAL_LUNG_MASS_G, nuclide)
        rows.append(("lung dose (Gy)", _number(gy), f"partition model: A x LSF x E / {CONVENTIONAL_LUNG_MASS_G:g} g lungs"))
    if plan and plan.get("doses", {}).get("lung_gy") is not None:
        rows.append(("lung dose of the plan (Gy)", _number(plan["doses"]["lung_gy"]), f"plan ({plan.get('method')})"))
    return Table("Lung shunt and lung dose", ("item", "value", "origin"), tuple(rows)) if rows else None


def plan_tables(plan: dict) -> list[Table]:
    rows = [("method", str(plan.get("method"))), ("microspheres", str(plan.get("microspheres"))),
            ("planned activity (GBq)", _number(plan.get("activity_gbq"), 2))]
    if plan.get("max_activity_gbq") is not None:
        rows += [("maximum activity within the limits (GBq)", _number(plan["max_activity_gbq"], 2)),
                 ("limiting constraint", str(plan.get("limiting_constraint")))]
    rows += [(f"dose: {k}", _number(v)) for k, v in (plan.get("doses") or {}).items() if k.endswith("_gy")]
    tables = [Table("Planning", ("item", "value"), tuple(rows), "; ".join(plan.get("sources", [])))]
    limits = [(k, _number(v)) for k, v in (plan.get("limits") or {}).items() if isinstance(v, (int, float)) or v is None]
    if limits:
        tables.append(Table("Planning limits", ("limit", "value"), tuple(limits)))
    violations = tuple((v["constraint"], _number(v["dose_gy"]), _number(v["limit_gy"])) for v in plan.get("violations", []))
    tables.append(Table("Limits exceeded", ("constraint", "dose_gy", "limit_gy"), violations or (("none", "-", "-"),)))
    return tables


def versions_table(summary: dict) -> Table:
    dose_versions = summary["provenance"].get("software", {})
    now = software_versions()
    names = list(dict.fromkeys([*dose_versions, *now]))
    rows = tuple((n, dose_versions.get(n, "-"), now.get(n, "-")) for n in names)
    return Table("Software versions", ("package", "dose computed with", "report made with"), rows)


def build_content(patient_id: str, case: str, summary: dict, constraints: dict | None = None, plan: dict | None = None,
                  synthetic: bool = False) -> ReportContent:
    """The report's tables and warnings (the figures are added by ``report.make_report``)."""
    content = ReportContent(patient_id, case, method_label(summary),
                            datetime.now(timezone.utc).isoformat(timespec="seconds"), synthetic=synthetic)
    identity = [("patient", patient_id), ("case", case), ("method", content.method_label),
                ("dose computed (UTC)", summary["provenance"].get("created_utc", "-")), ("report made (UTC)", content.created_utc)]
    content.tables.append(Table("Patient and case", ("item", "value"), tuple(identity)))
    content.tables += [inputs_table(summary), calibration_table(summary), method_table(summary)]
    lq = lq_table(summary)
    if lq is not None:
        content.tables.append(lq)
    content.tables.append(dose_table(summary))
    if constraints is not None:
        content.tables += constraints_tables(constraints)
    lung = lung_table(summary, constraints, plan)
    if lung is not None:
        content.tables.append(lung)
    if plan is not None:
        content.tables += plan_tables(plan)
    content.tables.append(versions_table(summary))
    content.warnings = [*summary.get("warnings", []),
                        *(constraints or {}).get("warnings", []),
                        *(f"{s['name']}: {w}" for s in (constraints or {}).get("structures", []) for w in s.get("warnings", [])),
                        *(plan or {}).get("warnings", [])]
    return content
