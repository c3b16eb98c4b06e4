"""``python -m lpmsim.cli`` runs the ``lpmsim`` command."""

from lpmsim.cli.main import main

main()
