"""Pieces several pages draw: error handling and badges, URL-bound filters, a run's detail."""
