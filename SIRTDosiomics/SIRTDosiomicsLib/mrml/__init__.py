"""The adapter between SIRTDosiomicsLib and Slicer's MRML scene (inside Slicer, or the slicer-core wheel).

- ``logic``      ``extract_features_from_nodes``: image volume nodes + a segmentation node → a new
                 feature table node (one row, columns named by ``SIRTDosiomicsLib.naming``), with
                 progress, cancellation and provenance attributes
- ``scenarios``  checks shared by pytest and the SIRTDosiomics module's self-test in Slicer

What the SIRTDosiomics module calls is available here without importing ``logic`` first::

    from SIRTDosiomicsLib import mrml
    table = mrml.extract_features_from_nodes({"dose": doseNode}, segNode, {"tumour": ["Tumor 1"]}, "y90")

Importing this package imports nothing heavy (VTK, pyradiomics): ``logic`` is loaded on first use.
"""

_FROM_LOGIC = ("extract_features_from_nodes", "OperationCancelled", "FEATURE_TABLE_KIND")

__all__ = [*_FROM_LOGIC, "logic", "scenarios"]


def __getattr__(name):
    if name in _FROM_LOGIC:
        from . import logic

        return getattr(logic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
