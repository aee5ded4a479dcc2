"""After the map: design-based accuracy and area estimation (Olofsson et al. 2014; Stehman
2014). Pure functions over numpy arrays (sample allocation, within-stratum draws, the
estimators, pixel areas); the commands ``design`` and ``assess`` do the reading and writing."""
