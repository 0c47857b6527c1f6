"""`python -m server.cli` runs the `kbchat` command with this interpreter."""

import sys

from server.cli import main

sys.exit(main())
