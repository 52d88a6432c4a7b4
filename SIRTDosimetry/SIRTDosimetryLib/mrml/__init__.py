"""The adapter between SIRTDosimetryLib and Slicer's MRML scene (inside Slicer, or the slicer-core wheel).

- ``convert``       volume node ↔ SimpleITK image (RAS ↔ LPS), segmentation node ↔ ``Segmentation``
- ``logic``         ``compute_dose_from_nodes``: new dose/BED/EQD2 volumes, summary, DVH and constraint
                    tables, DVH chart and provenance, with progress and cancellation; ``DoseSettings``
- ``derived_segments`` normal perfused liver, whole normal liver and threshold targets on the activity
                    grid, added to a new segmentation node (the user's is never modified)
- ``outputs``       dose colour table and overlay display, table, text and plot nodes
- ``scene``         scene set-up outside Slicer, loading files, saving/reading ``.mrb`` and ``.mrml``
- ``export``        ``save_dose_scene``: a dose result as a Slicer scene (``sirt dose --scene``)
- ``scenarios``     checks shared by pytest and the module's self-test in Slicer
- ``dependencies``  installing missing Python packages in Slicer after asking the user

Nothing here is imported by this file: ``dependencies`` must stay importable without VTK.
"""
