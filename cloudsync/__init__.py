"""cloudsync: keep cloud secrets in the state a git repository declares, least-privilege."""

__version__ = "0.1.0"
__all__ = ["__version__"]
