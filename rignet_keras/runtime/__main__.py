"""`python -m <this package> ...`: the runtime's command line (see `cli`)."""

import os
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog=f"python -m {__package__ or os.path.basename(os.path.dirname(__file__))}"))
