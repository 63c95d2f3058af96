"""`gpuserve cost`: each provider's autoscaling and billing simulated for a workload, cost and waits together."""

from .prices import DEFAULT_MAX_AGE_DAYS, PriceBook, load_prices

__all__ = ["PriceBook", "load_prices", "DEFAULT_MAX_AGE_DAYS"]
