"""What a finished (or running) search gives back: plots and an exported model.

Both read a run directory as data (see `SearchResult`); neither needs a lock or imports what
the directory names.
"""

from .export import export_model, load_exported_state_dict
from .plot import plot_run

__all__ = ["export_model", "load_exported_state_dict", "plot_run"]
