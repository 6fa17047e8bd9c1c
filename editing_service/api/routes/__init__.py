"""REST resources under /v1: projects, jobs, features and flags, edits."""
