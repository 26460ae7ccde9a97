"""hai-scale."""
