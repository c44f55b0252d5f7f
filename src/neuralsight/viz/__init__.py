"""Figures (matplotlib, headless) and explanations."""
