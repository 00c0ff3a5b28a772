import sys

from pimsk.cli import main

sys.exit(main())
