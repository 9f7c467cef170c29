"""Models of the adjudication app."""
