"""`python -m edgellm_sdk.cli`: the same as the `edgellm` command."""

import sys

from . import main

sys.exit(main())
