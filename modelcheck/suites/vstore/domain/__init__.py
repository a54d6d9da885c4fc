"""The reference domain: a versioned schema store, as a pure-Python model."""
