"""Widgets and windows (Qt + pyqtgraph + numpy, no torch)."""
