"""Outputs: the GeoTIFF writer, styles and sidecars, the preview, atomic writes, the journal."""
