import sys

from autoprep.cli import main

sys.exit(main())
