import sys

from dnsrewrite.cli import main

sys.exit(main())
