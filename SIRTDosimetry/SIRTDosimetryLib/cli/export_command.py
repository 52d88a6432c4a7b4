"""``sirt export``: dose, BED and EQD2 maps already computed → DICOM RT Dose files."""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

from ..errors import SIRTInputError
from ..io.rtdose import DOSE_QUANTITIES, source_identity, write_rtdose
from ..io.volumes import read_image
from ..io.writers import commit_outputs, write_json
from ..provenance import provenance, sha256_of

PROVENANCE_FILE = "export.json"
"""Written beside the RT Dose files: the maps and reference series (with SHA-256) and software versions."""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="write dose/BED/EQD2 maps as DICOM RT Dose",
        description="Write the maps of a 'sirt dose' output folder (or one map file) as DICOM RT Dose files, "
        "in the study and frame of reference of the DICOM activity series they were computed from.",
    )
    p.add_argument("input", type=Path, help="output folder of 'sirt dose' (with summary.json), or one map file (NRRD/NIfTI/MHA)")
    p.add_argument("--output", required=True, type=Path, help="folder for the .dcm files")
    p.add_argument(
        "--reference", type=Path,
        help="DICOM activity series the maps were computed from (default: the activity input recorded in summary.json, "
        "when it was a DICOM folder that is unchanged)",
    )
    p.add_argument("--quantity", choices=sorted(DOSE_QUANTITIES), default="dose_gy", help="what a single map file holds (default dose_gy)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in the output folder")
    p.set_defaults(run=run)


def export_rtdose(
    input_path: Path, output: Path, reference: Path | None = None, quantity: str = "dose_gy", overwrite: bool = False
) -> list[Path]:
    """Write the maps under ``input_path`` as RT Dose files in ``output``, with ``export.json``; returns the files written.

    ``reference`` is the DICOM activity series the maps were computed from; without it the files get
    a new study and frame of reference and no patient identity.
    """
    maps = _maps(input_path, quantity)
    images = {name: read_image(path) for name, path in maps.items()}
    identity = source_identity(reference, images) if reference is not None else None
    writers = {f"{name}.dcm": partial(write_rtdose, image, quantity=name, identity=identity) for name, image in images.items()}
    record = provenance({**maps, "reference": reference}, {"quantities": list(maps), "rtdose_files": list(writers)})
    writers[PROVENANCE_FILE] = partial(write_json, record)
    return commit_outputs(output, writers, inputs=list(maps.values()), overwrite=overwrite)


def _maps(input_path: Path, quantity: str) -> dict[str, Path]:
    """Map name → file: the maps listed in a dose folder's summary.json, or one file as ``quantity``."""
    if not input_path.exists():
        raise SIRTInputError(f"{input_path} does not exist")
    if input_path.is_file():
        return {quantity: input_path}
    outputs = _summary(input_path).get("outputs", {})
    maps = {name: input_path / outputs[name] for name in DOSE_QUANTITIES if name in outputs}
    if not maps:
        raise SIRTInputError(f"{input_path / 'summary.json'} lists no dose maps ({', '.join(DOSE_QUANTITIES)})")
    return maps


def _summary(folder: Path) -> dict:
    path = folder / "summary.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SIRTInputError(f"{folder} holds no summary.json: give the output folder of 'sirt dose' or one map file") from None
    except json.JSONDecodeError as error:
        raise SIRTInputError(f"{path} is not valid JSON: {error}") from None


def _recorded_dicom_activity(input_path: Path) -> Path | None:
    """The activity input recorded in summary.json, when it was a DICOM folder still holding the same files."""
    if not input_path.is_dir():
        return None
    recorded = _summary(input_path).get("provenance", {}).get("inputs", {}).get("activity")
    if not recorded or not Path(recorded["path"]).is_dir():
        return None
    folder = Path(recorded["path"])
    if sha256_of(folder) != recorded.get("sha256"):
        raise SIRTInputError(
            f"the DICOM activity folder {folder} recorded in summary.json has changed since the dose was computed; "
            "name the series with --reference"
        )
    return folder


def run(args: argparse.Namespace) -> int:
    reference = args.reference if args.reference is not None else _recorded_dicom_activity(args.input)
    written = export_rtdose(args.input, args.output, reference, args.quantity, args.overwrite)
    for path in written:
        print(f"wrote {path}")
    if reference is None:
        print("note: no DICOM activity series known, so the RT Dose files have a new study and frame of reference "
              "and no patient identity; pass --reference to place them with the source images")
    return 0
