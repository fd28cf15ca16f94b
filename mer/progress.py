"""Progress bars for the study's long work: widgets in JupyterLab (ipywidgets is installed),
plain text elsewhere, and plain text that updates rarely under ``MER_PROGRESS=text``, which
``mer study`` sets for the notebooks it runs in batch: an executed notebook then keeps a
readable line per bar instead of a widget that its HTML page could only draw with scripts
from the network."""
from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm as _auto
from tqdm.std import tqdm as _text

TEXT_MIN_INTERVAL = 5.0  # s between two updates of a text bar in batch (a notebook stores every one)


def batch() -> bool:
    """True when bars are to be written as text (``MER_PROGRESS=text``)."""
    return os.environ.get("MER_PROGRESS", "").lower() == "text"


class _BatchBar(_text):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("file", sys.stdout)  # a notebook shows stderr as a pink box a reader takes for a warning
        kwargs.setdefault("mininterval", TEXT_MIN_INTERVAL)
        kwargs.setdefault("ascii", True)
        super().__init__(*args, **kwargs)


def tqdm(*args, **kwargs):
    """``tqdm.auto.tqdm``, or a text bar updated every few seconds in batch (:func:`batch`)."""
    return (_BatchBar if batch() else _auto)(*args, **kwargs)
