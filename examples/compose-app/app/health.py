# The store's health check: its /health answers.
import urllib.request
urllib.request.urlopen("http://localhost:6000/health", timeout=2).read()
