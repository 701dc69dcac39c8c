"""The bridge between the GUI and the headless core: a worker thread that owns the model (see worker.py)."""
