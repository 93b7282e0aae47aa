"""``python -m flareflow`` is the ``flareflow`` command."""

from .cli.main import main

main()
