"""The serving fixtures (a shop dataset, a fitted model, a real redis-server) for stream tests."""

from tests.serve.conftest import fresh_redis, redis_url, shop, svd_dir

__all__ = ["fresh_redis", "redis_url", "shop", "svd_dir"]
