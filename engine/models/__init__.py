"""Models: what a finished run leaves behind, loaded back to predict, and exported as one file."""

from .files import ModelFiles
from .model import Model, Predictions, load_model

__all__ = ["Model", "ModelFiles", "Predictions", "load_model"]
