"""What a finished (or running) search gives back: plots, an exported model, and trackers
(TensorBoard, MLflow) that watch it run.

Plots and exports read a run directory as data (see `SearchResult`); neither needs a lock or
imports what the directory names. The trackers import their libraries only when built.
"""

from .export import export_model, load_exported_state_dict
from .plot import plot_run
from .trackers import MLflowCallback, TensorBoardCallback

__all__ = ["MLflowCallback", "TensorBoardCallback", "export_model", "load_exported_state_dict",
           "plot_run"]
