"""Experiments that test the claims of the learning-rate literature (see README.md here)."""
