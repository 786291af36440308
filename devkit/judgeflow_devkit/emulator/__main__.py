"""``python -m judgeflow_devkit.emulator``: serve the Messages API emulator in the foreground.

Every :class:`~judgeflow_devkit.emulator.config.EmulatorConfig` knob is a flag; the server logs its URL
once and runs until SIGTERM or SIGINT. :func:`main` is what ``judgeflow-dev emulator`` calls.
"""

from __future__ import annotations

import argparse
import logging
import sys

from judgeflow.errors import ConfigError
from judgeflow_devkit.emulator.config import (
    BATCH_MAX_BYTES,
    BATCH_MAX_REQUESTS,
    DEFAULT_MIN_CACHEABLE_TOKENS,
    EmulatorConfig,
)
from judgeflow_devkit.emulator.server import serve_forever


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m judgeflow_devkit.emulator", description="A local Anthropic Messages API emulator."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port (default 8765)")
    p.add_argument("--latency-median", type=float, default=0.05, help="seconds (default 0.05)")
    p.add_argument("--latency-sigma", type=float, default=0.0, help="lognormal sigma; 0 = fixed")
    p.add_argument("--rpm", type=float, default=None, help="requests per minute (default unlimited)")
    p.add_argument("--itpm", type=float, default=None, help="input tokens per minute (default unlimited)")
    p.add_argument("--burst-seconds", type=float, default=1.0, help="bucket size, in seconds of rate")
    for code, what in (("429", "rate limit"), ("529", "overloaded"), ("500", "api error")):
        p.add_argument(f"--rate-{code}", type=float, default=0.0, help=f"probability of an injected {what}")
    p.add_argument("--rate-hang", type=float, default=0.0, help="probability of a hang")
    p.add_argument("--rate-malformed", type=float, default=0.0, help="probability of a malformed verdict")
    p.add_argument("--hang-seconds", type=float, default=120.0)
    p.add_argument(
        "--obey-injections",
        action="store_true",
        help="a gullible judge: text telling the judge what to score gets the scale maximum",
    )
    p.add_argument(
        "--score-noise",
        type=float,
        default=0.0,
        help="probability that an ask moves a criterion's score one step (judge noise; default 0)",
    )
    p.add_argument("--api-key", default=None, help="the only key accepted (default: any key)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fault and latency RNGs")
    p.add_argument("--cache-ttl", type=float, default=300.0, help="prompt-cache TTL in seconds")
    p.add_argument(
        "--min-cacheable-tokens",
        action="append",
        default=None,
        metavar="MODEL_PREFIX=TOKENS",
        help="repeatable; replaces the defaults " + str(dict(DEFAULT_MIN_CACHEABLE_TOKENS)),
    )
    p.add_argument("--batch-max-requests", type=int, default=BATCH_MAX_REQUESTS, help="requests per batch")
    p.add_argument("--batch-max-bytes", type=int, default=BATCH_MAX_BYTES, help="bytes of a batch create body")
    p.add_argument("--batch-processing-seconds", type=float, default=0.5, help="a batch ends this long after creation")
    p.add_argument("--batch-rate-errored", type=float, default=0.0, help="probability of an errored batch result")
    p.add_argument("--batch-rate-expired", type=float, default=0.0, help="probability of an expired batch result")
    p.add_argument("--batch-rate-dropped", type=float, default=0.0, help="probability of a result left out")
    p.add_argument("--log-level", default="INFO")
    return p


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Raise :class:`ConfigError` naming the bad flag or knob."""
    min_cacheable = dict(DEFAULT_MIN_CACHEABLE_TOKENS)
    if args.min_cacheable_tokens:
        min_cacheable = dict(_pair(item) for item in args.min_cacheable_tokens)
    return EmulatorConfig(
        latency_median_s=args.latency_median,
        latency_sigma=args.latency_sigma,
        requests_per_minute=args.rpm,
        input_tokens_per_minute=args.itpm,
        burst_seconds=args.burst_seconds,
        rate_429=args.rate_429,
        rate_529=args.rate_529,
        rate_500=args.rate_500,
        rate_hang=args.rate_hang,
        rate_malformed=args.rate_malformed,
        hang_seconds=args.hang_seconds,
        api_key=args.api_key,
        seed=args.seed,
        cache_ttl_s=args.cache_ttl,
        min_cacheable_tokens=min_cacheable,
        batch_max_requests=args.batch_max_requests,
        batch_max_bytes=args.batch_max_bytes,
        batch_processing_s=args.batch_processing_seconds,
        batch_rate_errored=args.batch_rate_errored,
        batch_rate_expired=args.batch_rate_expired,
        batch_rate_dropped=args.batch_rate_dropped,
        obey_injections=args.obey_injections,
        score_noise=args.score_noise,
    )


def _pair(item: str) -> tuple[str, int]:
    model, sep, tokens = item.partition("=")
    if not sep or not model or not tokens.strip().isdigit():
        raise ConfigError(f"--min-cacheable-tokens: expected MODEL_PREFIX=TOKENS, got {item!r}")
    return model.strip(), int(tokens)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, serve until SIGTERM/SIGINT; 0 on a clean stop, 2 on a bad flag."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        serve_forever(config, host=args.host, port=args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
