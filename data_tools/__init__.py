"""Dataset tools: crawl, clean and register album-cover datasets, plus an offline synthetic set."""
