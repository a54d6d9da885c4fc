"""A second, small suite (a ledger): the engine's seam shown on a foreign layout."""
