"""``sirt predict``: model folder + patient features → probability of response, class, warnings."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="apply an exported response model to new patients",
        description="Probability of response and predicted class for each row of a feature table, "
        "with a model folder written by 'sirt train'. Research use only.",
    )
    p.add_argument("--model", required=True, type=Path, help="model folder (model.skops + model_card.json)")
    p.add_argument("--features", required=True, type=Path, help="feature table (.csv, .tsv or .parquet), one row per patient or lesion")
    p.add_argument("--id-column", default="patient_id", help="row id column (default patient_id)")
    p.add_argument("--output", type=Path, help="also write the predictions to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from SIRTDosimetryLib.io.writers import check_outputs, commit_outputs, write_json
    from SIRTDosimetryLib.provenance import provenance, to_jsonable

    from ..labels import read_table
    from ..model_card import MODEL_FILES
    from ..model_io import load_model, predict

    from SIRTDosiomicsLib.radiomics_engine import prediction_warning, table_engine

    # The model's own files are inputs too: --output may never replace them, --overwrite or not.
    inputs = [args.features, *(args.model / name for name in MODEL_FILES)]
    if args.output is not None:
        check_outputs(args.output.parent, [args.output.name], inputs, args.overwrite)
    model = load_model(args.model)
    engine_warning = prediction_warning(model.card, table_engine(args.features))
    if engine_warning:
        model.warnings.append(engine_warning)
    predictions = predict(model, read_table(args.features, [args.id_column]), id_column=args.id_column)
    print(f"model {model.card['model']['id']} (intended use: {model.card['intended_use']})")
    for p in predictions:
        print(f"{p.row_id}: probability of response {p.probability:.3f} -> {p.predicted_class}")
        for warning in p.warnings:
            print(f"  warning: {warning}")
    if args.output is not None:
        data = {
            "provenance": provenance({"model_card": args.model / "model_card.json", "features": args.features}, {"id_column": args.id_column}),
            "model": model.card["model"],
            "intended_use": model.card["intended_use"],
            "predictions": to_jsonable(predictions),
        }
        commit_outputs(args.output.parent, {args.output.name: partial(write_json, data)}, inputs=inputs, overwrite=args.overwrite)
        print(f"wrote {args.output}")
    return 0
