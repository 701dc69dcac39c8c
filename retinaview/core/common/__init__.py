"""The torch-free part of the core: numpy, Pillow and scipy only.

Every layer may import it, the GUI included (``ui`` imports only this package and ``engine``; an
import-linter contract in ``pyproject.toml`` keeps torch, Qt and the rest of the core out of it):
image loading (`io`), label CSVs (`labels`), errors, the result record of an explanation (`result`),
n-sigma masks (`masks`), the hidden-to-input Gaussian mapping (`gaussian_rf`), colour tables and
rendering (`colormaps`, `render`) and the photograph/model geometry (`geometry`).
"""
