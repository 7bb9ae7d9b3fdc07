"""`python -m crmledger` runs the command line."""

from crmledger.cli import app

app()
