"""``sirt report``: the per-patient report (report.html and report.pdf) over a ``sirt dose`` output folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis.derived import DEFAULT_TUMOUR_PATTERNS
from ..dose.parameters import to_number
from ..reporting.figures import DEFAULT_ISODOSE_LEVELS_GY
from ..reporting.report import ReportRequest, check_request, make_report


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="per-patient report (HTML and PDF) with dose pictures, tables and a sign-off block",
        description="Write report.html (self-contained) and report.pdf for the output folder of 'sirt dose' "
        "(with the 'sirt dvh' results in DOSE_DIR/dvh or --dvh, and a plan.json of 'sirt plan' if given).",
    )
    p.add_argument("dose_dir", type=Path, help="output folder of 'sirt dose' (summary.json, dose_gy.nrrd)")
    p.add_argument("--patient-id", required=True, help="patient identifier printed on every page and picture")
    p.add_argument("--case", default="dosimetry", help="case label, e.g. '90Y verification' (default 'dosimetry')")
    p.add_argument("--output", type=Path, help="folder for report.html and report.pdf (default: DOSE_DIR)")
    p.add_argument("--dvh", type=Path, help="output folder of 'sirt dvh' (default: DOSE_DIR/dvh when present)")
    p.add_argument("--plan", type=Path, help="plan.json of 'sirt plan'")
    p.add_argument("--compare", type=Path, help="a second 'sirt dose' folder shown side by side (e.g. the MAA-predicted dose)")
    p.add_argument("--compare-label", help="label of --compare (default: its folder name)")
    p.add_argument("--isodose-levels", default=",".join(f"{v:g}" for v in DEFAULT_ISODOSE_LEVELS_GY), metavar="GY,GY,...",
                   help="isodose lines in Gy (default %(default)s)")
    p.add_argument("--tumours", action="append", metavar="PATTERN",
                   help="tumour structures to picture (names or globs; default: names containing tumor/tumour/lesion)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    p.set_defaults(run=run)


def request_from_args(args: argparse.Namespace) -> ReportRequest:
    levels = tuple(to_number(v, "--isodose-levels") for v in args.isodose_levels.split(",") if v.strip())
    return check_request(ReportRequest(
        dose_dir=args.dose_dir, patient_id=args.patient_id, case=args.case, output=args.output, dvh_dir=args.dvh,
        plan=args.plan, compare_dir=args.compare, compare_label=args.compare_label, isodose_levels_gy=levels,
        tumours=tuple(args.tumours) if args.tumours else DEFAULT_TUMOUR_PATTERNS,
    ))


def run(args: argparse.Namespace) -> int:
    content, written = make_report(request_from_args(args), overwrite=args.overwrite)
    for warning in content.warnings:
        print(f"warning: {warning}")
    print(f"wrote {', '.join(map(str, written))} ({len(content.figures)} pictures)")
    return 0
