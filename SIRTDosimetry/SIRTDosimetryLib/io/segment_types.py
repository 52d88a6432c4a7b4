"""The segmentation every reader returns (``.seg.nrrd``, labelmap, RTSTRUCT, DICOM-SEG): labelmap layers
on one grid and the segments they hold. Kept apart from the readers so that each reader can build one
without importing the others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..errors import SIRTInputError


@dataclass(frozen=True)
class Segment:
    name: str
    layer: int
    label_value: int


@dataclass(frozen=True)
class Segmentation:
    """Labelmap layers on one grid, and the segments they hold."""

    layers: tuple[sitk.Image, ...]
    segments: tuple[Segment, ...]
    source_path: str

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.segments]

    def segment(self, name: str) -> Segment:
        for s in self.segments:
            if s.name == name:
                return s
        matches = [s for s in self.segments if s.name.lower() == name.lower()]
        if len(matches) == 1:
            return matches[0]
        raise SIRTInputError(
            f"segment {name!r} not found in {self.source_path}; segments are: {', '.join(map(repr, self.names))}"
        )

    def mask(self, name: str) -> np.ndarray:
        """Boolean mask of a segment on the segmentation's own grid, indexed (z, y, x)."""
        s = self.segment(name)
        return sitk.GetArrayViewFromImage(self.layers[s.layer]) == s.label_value
