"""ttsctr: test-time scaling of CTR models by prediction merging."""

__version__ = "0.1.0"
