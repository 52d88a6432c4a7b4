"""``sirt features``: dosiomic and radiomic features, for a cohort (manifest) or one image.

Cohort::

    sirt features --manifest cohort.yaml --output features/ [--workers 2] [--scheduler tcp://host:8786]

writes ``features.csv``, ``features.parquet`` and ``features.json`` (provenance) into the output
folder, and keeps finished patients in ``<output>/.sirt-features-cache`` so that a rerun resumes.

One image::

    sirt features --image dose.nrrd --segmentation seg.seg.nrrd --kind dose --radionuclide y90 \\
        --structure "tumour=Tumor 1|Tumor 2" --structure "wnl=Normal Tissue"

prints ``column<TAB>value`` lines, or writes a one-row table with ``--output table.csv`` (or
``.parquet``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.selection import select_segments, split_patterns

from . import naming


def register(subparsers) -> None:
    """Add ``sirt features`` to ``sirt``'s argparse subparsers (called by the ``sirt`` package)."""
    add_parser(subparsers)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "features",
        help="dosiomic/radiomic features per structure (pyradiomics), for a cohort or one image",
        description=(
            "Extract pyradiomics features of dose, BED, SPECT/PET and CT images per structure with the published "
            "SIRT dosiomics preset (107 features per structure). Give --manifest for a cohort table, or --image, "
            "--segmentation and --kind for one image."
        ),
    )
    p.add_argument("--manifest", type=Path, help="cohort manifest (CSV or YAML), one patient per row")
    p.add_argument("--output", type=Path, help="cohort: output folder; one image: table file (.csv or .parquet)")
    p.add_argument("--preset", help="preset name or YAML/JSON file of overrides (default sirt-dosiomics-2025)")
    p.add_argument("--shape2d", action="store_true", help="add the 9 shape-2D features of the largest axial slice")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    c = p.add_argument_group("cohort")
    c.add_argument("--workers", type=int, help="local worker processes (default: the CPUs available; 1: no pool)")
    c.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786) to run on a cluster instead")
    c.add_argument("--cache", type=Path, help="cache folder of finished patients (default <output>/.sirt-features-cache)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dense-mcc", action="store_true",
                   help="use pyradiomics' own dense GLCM MCC computation (slower; the values are bitwise identical)")
    s = p.add_argument_group("one image")
    s.add_argument("--image", type=Path, help="image file (NRRD, NIfTI, MHA)")
    s.add_argument("--segmentation", type=Path, help="Slicer .seg.nrrd, labelmap, or DICOM RTSTRUCT/SEG (file or folder)")
    s.add_argument("--kind", choices=naming.IMAGE_KINDS, help="what the image is (selects the preset's settings)")
    s.add_argument("--source", dest="source", default="y90",
                   help="source of the image: y90 (90Y) or maa (99mTc-MAA); selects dose/BED clip values (default y90)")
    s.add_argument("--radionuclide", dest="source", action=_DeprecatedSource, help=argparse.SUPPRESS)
    s.add_argument("--structure", action="append", default=[], metavar="NAME=SEGMENT[|SEGMENT...]",
                   help="a structure (tumour, npl, wnl or your own name) and its segment(s): names, globs (Tumor*) or "
                        "roles (@tumour); repeatable; default: every segment as its own structure")
    s.add_argument("--units", help="image units (pet: bq_per_ml, kbq_per_ml, mbq_per_ml: converted to Bq/mL)")
    s.add_argument("--clip-upper", type=float, metavar="GY",
                   help="dose/BED: upper clip value for every structure, instead of the preset's per-structure table")
    p.set_defaults(run=run)


class _DeprecatedSource(argparse.Action):
    """``--radionuclide`` for the image source: the old spelling, kept working with a warning
    (``--radionuclide`` means the nuclide in ``sirt dose``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print("warning: 'sirt features --radionuclide' is deprecated; use --source y90|maa", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _structures(items: list[str], segment_names: list[str]) -> dict[str, tuple[str, ...]]:
    if not items:
        return {naming.structure_token(n): (n,) for n in segment_names}
    out = {}
    for item in items:
        name, sep, segments = item.partition("=")
        if not sep or not name.strip() or not segments.strip():
            raise SIRTInputError(f"--structure must look like NAME=SEGMENT[|SEGMENT...], got {item!r}")
        try:
            out[naming.structure_token(name)] = tuple(select_segments(split_patterns(segments), segment_names, f"--structure {name}"))
        except naming.NamingError as exc:
            raise SIRTInputError(str(exc)) from None
    return out


def _preset(args):
    from dataclasses import replace

    from .presets import load_preset

    try:
        preset = load_preset(args.preset)
    except ValueError as exc:
        raise SIRTInputError(f"--preset: {exc}") from None
    return replace(preset, shape2d=True) if args.shape2d else preset


def run_single(args) -> int:
    from dataclasses import replace

    from SIRTDosimetryLib.io.segmentations import read_segmentation
    from SIRTDosimetryLib.io.volumes import CONCENTRATION_UNITS_TO_BQ_PER_ML, check_units, read_image

    from .extract import extract_image_features

    if args.segmentation is None or args.kind is None:
        raise SIRTInputError("one-image extraction needs --image, --segmentation and --kind")
    preset = _preset(args)
    try:
        source = naming.source_token(args.source)
    except naming.NamingError as exc:
        raise SIRTInputError(str(exc)) from None
    image = read_image(args.image)
    units = check_units(args.units)
    if args.kind == "pet" and units in CONCENTRATION_UNITS_TO_BQ_PER_ML:
        image = image * CONCENTRATION_UNITS_TO_BQ_PER_ML[units]
    segmentation = read_segmentation(args.segmentation)
    structures = _structures(args.structure, segmentation.names)
    if args.clip_upper is not None:
        if not args.clip_upper > 0:
            raise SIRTInputError(f"--clip-upper must be a positive number of Gy, got {args.clip_upper}")
        table = {source: {s: float(args.clip_upper) for s in structures}}
        preset = replace(preset, upper_gy=table, bed_upper_gy="same")
    row = extract_image_features(image, segmentation, structures, args.kind, source, preset, sparse_mcc=not args.dense_mcc)
    errors = {k: v for k, v in row.items() if k.endswith("_error") and v}
    if args.output is None:
        for key, value in row.items():
            print(f"{key}\t{value}")
    else:
        _write_one_row(row, args.output, args.overwrite)
        print(f"wrote {args.output} ({len(row)} columns)")
    for key, message in errors.items():
        print(f"warning: {key}: {message}", file=sys.stderr)
    feature_sets = [k for k in row if k.endswith("_error")]
    return 1 if feature_sets and len(errors) == len(feature_sets) else 0


def _write_one_row(row: dict, output: Path, overwrite: bool) -> None:
    from SIRTDosimetryLib.io.writers import commit_outputs

    from .cohort import PatientOutcome
    from .table import feature_table

    frame = feature_table([PatientOutcome("", row, "done")]).drop(columns=[naming.PATIENT_ERROR_COLUMN])
    if output.suffix.lower() == ".parquet":
        writer = lambda path: frame.to_parquet(path, index=False)  # noqa: E731
    elif output.suffix.lower() == ".csv":
        writer = lambda path: frame.to_csv(path, index=False, float_format="%.17g")  # noqa: E731
    else:
        raise SIRTInputError(f"--output {output}: use a .csv or .parquet file name")
    from SIRTDosimetryLib.io.writers import write_json
    from SIRTDosimetryLib.provenance import software_versions

    from .radiomics_engine import ENGINE_KEY, radiomics_engine, sidecar_path

    # the table's provenance beside it (x.csv -> x.json), as features.json beside a cohort's features.csv
    metadata = {ENGINE_KEY: radiomics_engine(), "software": software_versions()}
    writers = {output.name: writer, sidecar_path(output).name: lambda path: write_json(metadata, path)}
    commit_outputs(output.parent if str(output.parent) else Path("."), writers, overwrite=overwrite)


def run_cohort(args) -> int:
    from .cohort import run_manifest

    if args.output is None:
        raise SIRTInputError("--manifest needs --output (a folder)")
    if args.workers is not None and args.workers < 1:
        raise SIRTInputError(f"--workers must be at least 1, got {args.workers}")
    if args.scheduler:  # before any folder is made
        from SIRTDosimetryLib.parallel import check_scheduler_reachable

        check_scheduler_reachable(args.scheduler)
    frame, outcomes = run_manifest(
        args.manifest,
        args.output,
        preset=_preset(args),
        workers=args.workers,
        scheduler=args.scheduler,
        cache_dir=args.cache,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        sparse_mcc=not args.dense_mcc,
    )
    failed = [o for o in outcomes if o.status == "failed"]
    cached = sum(o.status == "cached" for o in outcomes)
    print(f"{len(outcomes)} patients ({cached} from the cache), {len(frame.columns)} columns; wrote {args.output}")
    for o in failed:
        print(f"error: patient {o.patient_id}: {o.error}", file=sys.stderr)
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    if args.manifest is not None and args.image is not None:
        raise SIRTInputError("give either --manifest (cohort) or --image (one image), not both")
    if args.manifest is not None:
        return run_cohort(args)
    if args.image is not None:
        return run_single(args)
    raise SIRTInputError("give --manifest for a cohort or --image/--segmentation/--kind for one image")
