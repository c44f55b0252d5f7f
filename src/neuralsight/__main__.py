"""`python -m neuralsight`: the same command line as the `neuralsight` script."""

from neuralsight.cli import main

main()
