"""Metrics: pure maths (maths.py) apart from feature extraction (extractors.py)."""
