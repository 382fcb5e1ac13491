"""Who is calling: principals authenticated by tenant API keys."""
