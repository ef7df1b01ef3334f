"""lynxlib: the library behind the lynx-study notebooks (Lynx, arXiv 2307.02469, reproduced)."""
__version__ = "0.1.0"
