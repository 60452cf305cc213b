"""The load test (runbook: Load Testing): profiles and stages, the Locust user and shape, exact percentiles
from raw response times, the judgement, the latency plot. runbook/procedures/load.py runs it."""

# Every context the load test creates carries metadata {"source": SOURCE_TAG, "run": <run id>}. Here, not in
# the locustfile: importing locust monkey-patches the process (gevent), which pytest must not get.
SOURCE_TAG = "mesh-runbook-load"
