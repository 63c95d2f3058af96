"""What runs inside every container: one lifecycle, one validation path, one HTTP server.

Imports only the spec side of gpuserve (never Jinja, the adapters or the CLI), so the
directories the targets render need nothing but the runtime copied next to the user's code.
"""

from .host import InvalidInput, ModelHost, PredictFailed

__all__ = ["ModelHost", "InvalidInput", "PredictFailed"]
