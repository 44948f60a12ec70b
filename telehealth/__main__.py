"""`python -m telehealth` runs the CLI."""

from telehealth.cli import main

raise SystemExit(main())
