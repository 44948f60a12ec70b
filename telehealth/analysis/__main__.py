"""``python -m telehealth.analysis measure ...``."""

import sys

from telehealth.analysis.command import main

sys.exit(main())
