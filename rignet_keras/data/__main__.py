"""`rignet data ...`: see `rignet_keras.data.cli`."""

import sys

from rignet_keras.data.cli import main

if __name__ == "__main__":
    sys.exit(main())
