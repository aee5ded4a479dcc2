"""The two passes: pass 1 counts exact per-layer statistics; pass 2 predicts window by window."""
