"""The ``python -m mindtf`` command line: :mod:`mindtf.cli.main` parses the arguments and runs
one module per command (``env``, ``fetch``, ``generate``, ``quickstart``, ``train``,
``translate``); :mod:`mindtf.cli.common` holds the options and reports they share."""
