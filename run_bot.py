#!/usr/bin/env python3
"""Herald's entry point: ``python run_bot.py --config config/herald.yaml COMMAND``."""
import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main())
