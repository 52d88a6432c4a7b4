"""Test scenarios shared by pytest and the SIRTDosiomics module's self-test in Slicer."""
