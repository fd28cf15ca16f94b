"""Micro-expression recognition study."""
import os
import warnings

# torch-geometric's own modules call torch.jit.script at import, which torch 2.14 deprecates: a
# warning about a library's internals that no user of this package can act on, printed by every
# process that imports it (each Dask worker too) into every executed notebook. Only that one
# message is silenced; every other warning still shows.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)

# Nothing is fetched at run time: pretrained weights load only from a local path. The hubs the
# installed libraries could reach (Hugging Face through timm) are told they are offline, so a
# call that would download fails at once with the library's own message instead of hanging on
# a network this study never uses. An explicit setting in the environment wins.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_name, "1")
