"""``python -m bayesgmm`` runs the command line."""

from bayesgmm.cli import main

raise SystemExit(main())
