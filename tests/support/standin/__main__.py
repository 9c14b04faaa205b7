import sys

from tests.support.standin.server import main

sys.exit(main())
