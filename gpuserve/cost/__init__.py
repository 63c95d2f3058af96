"""`gpuserve cost`: what a workload costs on each provider, cold starts and keep-warm counted."""

from .model import Estimate, Workload, estimate, traffic_profile
from .prices import PriceBook, load_prices

__all__ = ["Estimate", "Workload", "estimate", "traffic_profile", "PriceBook", "load_prices"]
