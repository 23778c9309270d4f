"""The router: retries, fallbacks, cooldowns, limits and routing strategies (LiteLLM's keys)."""
