"""``python -m chainrule``: the ``chainrule`` command line, for when the console script is not
on PATH (or under ``mpiexec -n N python -m mpi4py -m chainrule train ...``)."""
import sys

from chainrule.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
