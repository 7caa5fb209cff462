"""The one place the product version lives (the add-on manifest is generated from it)."""
__version__ = "0.1.0"
