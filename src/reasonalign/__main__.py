import sys

from reasonalign.cli import main

sys.exit(main())
