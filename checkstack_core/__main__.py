"""``python -m checkstack_core`` is the ``checkstack`` command."""

from .cli import main

main()
