"""Test scenarios shared by pytest and the SIRTResponse module's self-test in Slicer."""
