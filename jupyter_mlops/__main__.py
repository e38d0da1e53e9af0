"""`python -m jupyter_mlops` is the `jupyter-mlops` command."""

from .cli import main

main()
