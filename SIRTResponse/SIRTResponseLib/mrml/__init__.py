"""The adapter between SIRTResponseLib and Slicer's MRML scene (inside Slicer, or the slicer-core wheel).

- ``logic``      ``predict_from_table_node``: model folder + a patient's features in a table node → a
                 new prediction table node (probability of response, class, threshold, the model's
                 identity, out-of-range warnings), with progress and cancellation; ``model_summary``
                 and ``model_facts``: what the model card says, for the module's "Model" panel
- ``scenarios``  checks shared by pytest and the SIRTResponse module's self-test in Slicer (each
                 builds its own small model in a temporary folder)

What the SIRTResponse module calls is available here without importing ``logic`` first::

    from SIRTResponseLib import mrml
    print(mrml.model_summary("/path/to/model"))
    table = mrml.predict_from_table_node("/path/to/model", featureTableNode, row=0)

Importing this package imports nothing: ``logic`` is loaded on first use. ``model_summary`` needs only
the standard library (it reads the card and checks the payload's SHA-256, nothing is unpickled or
built), so the module can show a model before scikit-learn & co. are installed; the prediction needs
them (``RESPONSE_REQUIREMENTS``).
"""

_FROM_LOGIC = (
    "predict_from_table_node",
    "model_summary",
    "model_facts",
    "read_feature_table",
    "PREDICTION_TABLE_KIND",
    "PREDICTION_COLUMNS",
    "ATTRIBUTE_PREFIX",
)

__all__ = [*_FROM_LOGIC, "OperationCancelled", "logic", "scenarios"]


def __getattr__(name):
    if name in _FROM_LOGIC:
        from . import logic

        return getattr(logic, name)
    if name == "OperationCancelled":  # the dosimetry adapter's, so that one ``except`` serves every module
        from SIRTDosimetryLib.mrml.logic import OperationCancelled

        return OperationCancelled
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
