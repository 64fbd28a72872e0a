"""The HTTP service and its web pages."""
