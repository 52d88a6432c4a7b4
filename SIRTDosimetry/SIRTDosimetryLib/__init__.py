"""SIRTDosimetryLib: the computation behind the SIRTDosimetry Slicer module.

Importable and testable without 3D Slicer. Folders:

- ``io/``        reading activity images (NRRD, NIfTI, MHA, DICOM) and segmentations (.seg.nrrd, labelmaps)
- ``dose/``      the dose engine: activity calibration, LDM, voxel S-value kernels, VSV convolution, BED/EQD2
- ``analysis/``  per-structure statistics
- ``cli/``       the ``sirt`` command line
- ``mrml/``      the adapter between this package and Slicer MRML nodes
- ``data/``      bundled kernels and sample patients, each with its source and licence
"""

__version__ = "0.1.0"
