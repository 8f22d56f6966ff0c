"""The CLI's quiet import of TensorFlow: `autoprep._quiet` holds it, for the library too."""

from autoprep._quiet import import_tensorflow, start_up_note

__all__ = ["import_tensorflow", "start_up_note"]
