"""One module per ``python -m mindtf`` sub-command (see :mod:`mindtf.cli`)."""
