"""``python -m apollo_cli``."""

from .cli import run

run()
