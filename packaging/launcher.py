"""The frozen app's entry script (PyInstaller): the same entry point as the ``vllm-desk`` command."""

import sys

from desktop.main import main

if __name__ == "__main__":
    sys.exit(main())
