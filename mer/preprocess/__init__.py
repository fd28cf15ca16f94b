"""Preprocessing: frame reading and the clip datasets models train on."""
from mer.preprocess.dataset import Augment, ClipDataset

__all__ = ["Augment", "ClipDataset"]
