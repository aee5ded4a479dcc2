"""Models: load them, learn their features and order, map their labels to codes."""
