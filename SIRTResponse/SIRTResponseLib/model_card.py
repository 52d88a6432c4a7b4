"""The model folder's layout and its checks that need only the standard library.

A model folder holds ``model.skops`` (the payload) and ``model_card.json``. Reading the card and
checking the payload's SHA-256 needs nothing heavy, so Slicer can show a model's card before
scikit-learn, XGBoost or skops are installed; ``model_io.load_model`` runs the same checks first,
then skops' type allow-list.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from SIRTDosimetryLib.errors import SIRTInputError

PAYLOAD_FILE = "model.skops"
CARD_FILE = "model_card.json"
CARD_FORMAT = "sirt-response-model/1"

CLASSIFIER_NAMES = {
    "dt": "decision tree",
    "glmboost": "GLM boosting",
    "lr": "logistic regression",
    "mlp": "multilayer perceptron",
    "nb": "naive Bayes",
    "rf": "random forest",
    "svm": "support vector machine",
    "xgb": "XGBoost",
}


@dataclass(frozen=True)
class CheckedModelFolder:
    """A model folder whose card is readable, of a known format, and whose payload hash matches it."""

    folder: Path
    card: dict
    payload: bytes
    card_sha256: str

    @property
    def payload_sha256(self) -> str:
        return self.card["payload"]["sha256"]


def read_checked(model_dir: str | Path | None) -> CheckedModelFolder:
    """Read a model folder; ``SIRTInputError`` for a missing or unreadable folder, an unknown card
    format, or a payload whose SHA-256 differs from the card's. Nothing is unpickled here."""
    if model_dir is None or not str(model_dir).strip():
        raise SIRTInputError("choose a model folder (written by 'sirt train')")
    folder = Path(model_dir)
    if not folder.is_dir():
        raise SIRTInputError(f"{folder} is not a folder; choose the model folder written by 'sirt train' ({CARD_FILE} + {PAYLOAD_FILE})")
    try:
        card_bytes = (folder / CARD_FILE).read_bytes()
        card = json.loads(card_bytes.decode("utf-8"))
        payload = (folder / PAYLOAD_FILE).read_bytes()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SIRTInputError(f"{folder} is not a readable model folder: {exc}") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise SIRTInputError(f"{folder / CARD_FILE}: unknown model card format {card.get('format') if isinstance(card, dict) else None!r}")
    expected = (card.get("payload") or {}).get("sha256")
    actual = hashlib.sha256(payload).hexdigest()
    if expected != actual:
        raise SIRTInputError(f"{folder / PAYLOAD_FILE}: SHA-256 {actual} does not match the model card ({expected}); refusing to load")
    return CheckedModelFolder(folder, card, payload, hashlib.sha256(card_bytes).hexdigest())
