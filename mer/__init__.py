"""Micro-expression recognition study."""
import warnings

# torch-geometric's own modules call torch.jit.script at import, which torch 2.14 deprecates: a
# warning about a library's internals that no user of this package can act on, printed by every
# process that imports it (each Dask worker too) into every executed notebook. Only that one
# message is silenced; every other warning still shows.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
