"""Preprocessing: frame reading and the clip datasets models train on."""
from mer.preprocess.dataset import ClipDataset

__all__ = ["ClipDataset"]
