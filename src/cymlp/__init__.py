"""cymlp."""
