"""The mindtf release number (one place; read by the package, the CLI and `env`)."""

__version__ = "0.1.0"
