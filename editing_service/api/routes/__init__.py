"""REST resources under /v1: projects, jobs, features and flags, the circuit graph, edits."""
