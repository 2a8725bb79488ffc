"""`python -m toolkit` is `ppc-llm`."""

from .cli import main

main()
