"""Spending caps: reserve an estimate before each request, settle the real cost after.

A request is sent only if its estimated cost fits under every cap (per run and per day) together
with what is already spent and reserved, so the caps can be passed by no more than the estimation
error of the requests already in flight. Mapped tasks on several workers share one ledger in Redis
(one Lua script checks and reserves atomically); the embedded default keeps it in process, seeded
with what the warehouse says was already spent.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from judgeflow.config import BudgetConfig, ModelPrice
from judgeflow.judging.pricing import cost_usd
from judgeflow.records import Usage

log = logging.getLogger(__name__)

LEDGER_TTL_S = 2 * 24 * 3600
CHARS_PER_TOKEN = 4


def tokens_for_chars(chars: float, tokenizer_factor: float = 1.0) -> int:
    """Estimated tokens of ``chars`` characters of text for a model with ``tokenizer_factor``."""
    return math.ceil(chars / CHARS_PER_TOKEN * tokenizer_factor)


@dataclass(slots=True)
class Cap:
    """One cap: a name for logs, a key for Redis, the limit, and what was spent before this task."""

    name: str
    key: str
    limit_usd: float
    spent_usd: float
    reserved_usd: float = 0.0

    def fits(self, amount: float) -> bool:
        return self.spent_usd + self.reserved_usd + amount <= self.limit_usd


class BudgetLedger(Protocol):
    async def reserve(self, amount: float) -> bool: ...

    async def settle(self, reserved: float, actual: float) -> None: ...

    def describe(self) -> str: ...

    async def aclose(self) -> None: ...


class NoBudget:
    """No cap configured: every request fits."""

    async def reserve(self, amount: float) -> bool:
        return True

    async def settle(self, reserved: float, actual: float) -> None:
        return None

    def describe(self) -> str:
        return "no budget cap"

    async def aclose(self) -> None:
        return None


@dataclass
class LocalBudget:
    """Caps kept in this process (the embedded default, and the fallback when Redis fails)."""

    caps: list[Cap] = field(default_factory=list)

    async def reserve(self, amount: float) -> bool:
        if not all(cap.fits(amount) for cap in self.caps):
            return False
        for cap in self.caps:
            cap.reserved_usd += amount
        return True

    async def settle(self, reserved: float, actual: float) -> None:
        for cap in self.caps:
            cap.reserved_usd = max(0.0, cap.reserved_usd - reserved)
            cap.spent_usd += actual

    def describe(self) -> str:
        return ", ".join(f"{c.name} ${c.spent_usd:.4f} of ${c.limit_usd:.2f}" for c in self.caps)

    async def aclose(self) -> None:
        return None


# KEYS: one ledger key per cap. ARGV: amount, ttl, then limit and starting spend for each key.
_RESERVE = """
local amount = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if not current then
    current = ARGV[2 + 2 * i]
    redis.call('SET', key, current, 'EX', ARGV[2])
  end
  if tonumber(current) + amount > tonumber(ARGV[1 + 2 * i]) then
    return 0
  end
end
for i, key in ipairs(KEYS) do
  redis.call('INCRBYFLOAT', key, ARGV[1])
  redis.call('EXPIRE', key, ARGV[2])
end
return 1
"""


class RedisBudget:
    """Caps shared by every task and worker, in Redis; falls back to in-process caps if it fails."""

    def __init__(self, client: Any, caps: list[Cap]) -> None:
        self._client = client
        self._caps = caps
        self._script = client.register_script(_RESERVE)
        self._fallback: LocalBudget | None = None

    async def reserve(self, amount: float) -> bool:
        if self._fallback is not None:
            return await self._fallback.reserve(amount)
        args: list[Any] = [amount, LEDGER_TTL_S]
        for cap in self._caps:
            args += [cap.limit_usd, cap.spent_usd]
        try:
            return bool(await self._script(keys=[c.key for c in self._caps], args=args))
        except Exception as exc:
            return await self._fall_back(exc).reserve(amount)

    async def settle(self, reserved: float, actual: float) -> None:
        if self._fallback is not None:
            await self._fallback.settle(reserved, actual)
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for cap in self._caps:
                    pipe.incrbyfloat(cap.key, actual - reserved)
                await pipe.execute()
        except Exception as exc:
            await self._fall_back(exc).settle(reserved, actual)

    def describe(self) -> str:
        caps = ", ".join(f"{c.name} ${c.limit_usd:.2f}" for c in self._caps)
        return f"budget in Redis ({caps})" if self._fallback is None else self._fallback.describe()

    async def aclose(self) -> None:
        try:
            await self._client.aclose()
        except Exception:  # closing a client that already failed
            log.debug("closing the budget's Redis client failed", exc_info=True)

    def _fall_back(self, exc: BaseException) -> LocalBudget:
        log.warning("budget ledger in Redis failed (%s); keeping this task's caps in process", exc)
        self._fallback = LocalBudget(self._caps)
        return self._fallback


class CostEstimator:
    """Dollar estimate of a request before it is sent: input from its text, output from experience."""

    def __init__(self, price: ModelPrice, config: BudgetConfig) -> None:
        self._price = price
        self._expected_output = float(config.expected_output_tokens)
        self._seen = 0

    @staticmethod
    def input_tokens(params: dict[str, Any], *, tokenizer_factor: float = 1.0) -> int:
        """About four characters a token (Haiku 4.5's tokenizer), over the system prompt, tools and
        messages, times the model's ``tokenizer_factor`` (Haiku 5.5 makes ~1.3x the tokens)."""
        chars = len(json.dumps(params.get("system", ""), ensure_ascii=False))
        chars += len(json.dumps(params.get("tools", []), ensure_ascii=False))
        chars += len(json.dumps(params.get("messages", []), ensure_ascii=False))
        return tokens_for_chars(chars, tokenizer_factor)

    @property
    def tokenizer_factor(self) -> float:
        return self._price.tokenizer_factor

    def estimate(self, params: dict[str, Any]) -> float:
        tokens = self.input_tokens(params, tokenizer_factor=self._price.tokenizer_factor)
        usage = Usage(input_tokens=tokens, output_tokens=math.ceil(self._expected_output))
        return cost_usd(usage, self._price)

    def observe(self, usage: Usage) -> None:
        """After 10 replies, the expected output length follows the mean of what came back."""
        self._seen += 1
        if self._seen >= 10:
            self._expected_output += (usage.output_tokens - self._expected_output) / self._seen
        elif self._seen == 1:
            self._expected_output = max(self._expected_output, float(usage.output_tokens))


def budget_caps(config: BudgetConfig, *, run_key: str, day: str, run_spent: float, day_spent: float) -> list[Cap]:
    caps: list[Cap] = []
    if config.max_cost_usd_per_run is not None:
        caps.append(Cap("run", f"judgeflow:budget:run:{run_key}", config.max_cost_usd_per_run, run_spent))
    if config.max_cost_usd_per_day is not None:
        caps.append(Cap("day", f"judgeflow:budget:day:{day}", config.max_cost_usd_per_day, day_spent))
    return caps


async def open_budget(config: BudgetConfig, *, redis_conn_id: str, caps: list[Cap]) -> BudgetLedger:
    """No caps → :class:`NoBudget`; Redis reachable through ``redis_conn_id`` → shared
    :class:`RedisBudget`; otherwise caps kept in this process, seeded from the warehouse."""
    from judgeflow.judging.redis_client import open_async_redis

    if not caps:
        return NoBudget()
    client = await open_async_redis(redis_conn_id)
    ledger: BudgetLedger = RedisBudget(client, caps) if client is not None else LocalBudget(caps)
    log.info("budget: %s", ledger.describe())
    return ledger
