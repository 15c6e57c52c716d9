"""`python -m rignet_cli`: the `rignet` command."""

import sys

from rignet_cli.launcher import main

sys.exit(main())
