"""`gpuserve cost`: what a workload costs on each provider, cold starts and keep-warm counted."""

from .model import Estimate, Workload, estimate, traffic_profile
from .prices import DEFAULT_MAX_AGE_DAYS, PriceBook, load_prices

__all__ = ["Estimate", "Workload", "estimate", "traffic_profile", "PriceBook", "load_prices", "DEFAULT_MAX_AGE_DAYS"]
