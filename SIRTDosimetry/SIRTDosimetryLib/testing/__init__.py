"""Test scenarios shared by pytest and the SIRTDosimetry module's self-test in Slicer."""
