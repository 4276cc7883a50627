"""``python -m adaptor``: the same CLI as the ``adaptor`` command (rules use this form)."""

from adaptor.cli import main

main()
