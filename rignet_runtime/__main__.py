"""`python -m <this package> ...`: the runtime's command line (see `cli`)."""

import os
import sys

from .cli import main
from .litert_log import exit_status

if __name__ == "__main__":
    package = __package__ or os.path.basename(os.path.dirname(__file__))
    sys.exit(exit_status(main(prog=f"python -m {package}")))
