"""Bundled data: kernels and sample patients (see SOURCE.md and LICENSE in each folder)."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
SAMPLES_DIR = DATA_DIR / "samples"
KERNELS_DIR = DATA_DIR / "kernels"
