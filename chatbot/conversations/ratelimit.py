import time


class TokenBucket:
    """`burst` frames at once, refilled at `rate` per second."""

    def __init__(self, *, burst: int, rate: float) -> None:
        self.burst, self.rate = burst, rate
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class AddressLimits:
    """Per IP address, in one web process: open connections, and a token bucket shared by all of them."""

    def __init__(self) -> None:
        self.connections: dict[str, int] = {}
        self.buckets: dict[str, TokenBucket] = {}

    def open(self, address: str, limit: int) -> bool:
        if self.connections.get(address, 0) >= limit:
            return False
        self.connections[address] = self.connections.get(address, 0) + 1
        return True

    def close(self, address: str) -> None:
        left = self.connections.get(address, 0) - 1
        if left > 0:
            self.connections[address] = left
        else:
            self.connections.pop(address, None)

    def take(self, address: str, *, burst: int, rate: float) -> bool:
        bucket = self.buckets.get(address)
        if bucket is None:
            if len(self.buckets) > 10_000:  # forget addresses that are quiet again
                self.buckets = {a: b for a, b in self.buckets.items() if a in self.connections}
            bucket = self.buckets[address] = TokenBucket(burst=burst, rate=rate)
        return bucket.take()
