"""The model folder's layout and its checks that need only the standard library.

A model folder holds ``model.skops`` (the payload) and ``model_card.json``. Reading the card and
checking the payload's SHA-256 needs nothing heavy, so Slicer can show a model's card before
scikit-learn, XGBoost or skops are installed; ``model_io.load_model`` runs the same checks first,
then skops' type allow-list.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from SIRTDosimetryLib.errors import SIRTInputError

PAYLOAD_FILE = "model.skops"
CARD_FILE = "model_card.json"
MODEL_FILES = (PAYLOAD_FILE, CARD_FILE)
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


def card_integrity_sha256(card: dict) -> str:
    """SHA-256 of the card's content (every field but ``integrity``) as canonical JSON.

    Stored in the card, it detects edits to the card (reordered features, a changed threshold);
    like the payload hash it guards against mistakes and tampering by hand, not against someone
    who rewrites both the card and its hash.
    """
    content = {k: v for k, v in card.items() if k != "integrity"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_card(card: dict, where: Path) -> None:
    """Refuse a card whose fields are missing, malformed or out of range (``SIRTInputError``)."""
    def bad(text: str) -> SIRTInputError:
        return SIRTInputError(f"{where}: {text}; re-export the model with 'sirt train'")

    stored = (card.get("integrity") or {}).get("sha256") if isinstance(card.get("integrity"), dict) else None
    if stored is None:
        raise bad("the model card has no integrity hash")
    try:
        actual = card_integrity_sha256(card)
    except ValueError:  # NaN or infinity in the card
        raise bad("the model card holds a value that is not a finite number") from None
    if stored != actual:
        raise bad("the model card was edited after export (its content no longer matches its integrity hash)")
    payload = card.get("payload")
    if not isinstance(payload, dict) or payload.get("file") != PAYLOAD_FILE or not isinstance(payload.get("sha256"), str):
        raise bad(f"the card's payload must be {{'file': {PAYLOAD_FILE!r}, 'sha256': ...}} inside the model folder")
    inputs, required = card.get("input_features"), card.get("required_features")
    if not (isinstance(inputs, list) and inputs and all(isinstance(n, str) and n for n in inputs) and len(set(inputs)) == len(inputs)):
        raise bad("input_features must be a non-empty list of distinct feature names")
    if not (isinstance(required, list) and required and set(required) <= set(inputs)):
        raise bad("required_features must be a non-empty subset of input_features")
    threshold = card.get("decision_threshold")
    if not (_finite(threshold) and 0 < threshold < 1):
        raise bad(f"decision_threshold must be a probability strictly between 0 and 1, got {threshold!r}")
    ranges = card.get("training_range")
    for name in required:
        pair = ranges.get(name) if isinstance(ranges, dict) else None
        if not (isinstance(pair, list) and len(pair) == 2 and all(map(_finite, pair)) and pair[0] <= pair[1]):
            raise bad(f"training_range of {name!r} must be [low, high] with finite low <= high, got {pair!r}")
    if not (isinstance(card.get("model"), dict) and isinstance(card["model"].get("id"), str)):
        raise bad("the card has no model id")
    if not isinstance(card.get("intended_use"), str):
        raise bad("the card has no intended_use")


def read_checked(model_dir: str | Path | None) -> CheckedModelFolder:
    """Read a model folder; ``SIRTInputError`` for a missing or unreadable folder, a symbolic link in
    place of a model file, an unknown card format, a card that is malformed or was edited after
    export, or a payload whose SHA-256 differs from the card's. Nothing is unpickled here."""
    if model_dir is None or not str(model_dir).strip():
        raise SIRTInputError("choose a model folder (written by 'sirt train')")
    folder = Path(model_dir)
    if not folder.is_dir():
        raise SIRTInputError(f"{folder} is not a folder; choose the model folder written by 'sirt train' ({CARD_FILE} + {PAYLOAD_FILE})")
    for name in MODEL_FILES:
        if (folder / name).is_symlink():
            raise SIRTInputError(f"{folder / name} is a symbolic link; a model folder must hold its own files")
    try:
        card_bytes = (folder / CARD_FILE).read_bytes()
        card = json.loads(card_bytes.decode("utf-8"))
        payload = (folder / PAYLOAD_FILE).read_bytes()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SIRTInputError(f"{folder} is not a readable model folder: {exc}") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise SIRTInputError(f"{folder / CARD_FILE}: unknown model card format {card.get('format') if isinstance(card, dict) else None!r}")
    check_card(card, folder / CARD_FILE)
    expected = card["payload"]["sha256"]
    actual = hashlib.sha256(payload).hexdigest()
    if expected != actual:
        raise SIRTInputError(f"{folder / PAYLOAD_FILE}: SHA-256 {actual} does not match the model card ({expected}); refusing to load")
    return CheckedModelFolder(folder, card, payload, hashlib.sha256(card_bytes).hexdigest())
