"""Dose-volume analysis and planning: DVHs and constraints (dvh, constraints), derived structures
(derived), the end-to-end analysis behind ``sirt dvh`` (dose_volume), activity planning (planning),
planning versus verification (comparison) and DVH plots (plots). Conventions: docs/dose-volume.md."""
