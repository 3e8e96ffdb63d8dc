"""The recourse math: action sets, metrics and rewards. Plain numpy; no Ray."""
