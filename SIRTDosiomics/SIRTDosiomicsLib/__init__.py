"""SIRTDosiomicsLib: radiomic features of dose, BED, SPECT/PET and CT per structure ("dosiomics").

Importable without 3D Slicer; pyradiomics (the ``pyradiomics-bhklab`` distribution, import name
``radiomics``) is the feature engine. Modules:

- ``presets``  the published SIRT dosiomics protocol and how to override it
- ``naming``   stable column names: ``<source>_<image>_<structure>_<class>_<feature>``
- ``extract``  the wrapper over pyradiomics: planning, per-task extraction, assembly
- ``cohort``   manifests, parallel (local processes or Dask) and resumable cohort extraction
- ``dvc``      dose-volume metrics per structure for the feature table
- ``cli``      the ``sirt features`` subcommand

This file imports nothing heavy, so that worker processes can set their thread limits first.
"""

__all__ = ["extract", "presets", "naming", "cohort", "dvc", "cli"]
