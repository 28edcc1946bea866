"""Shared test set-up: no test talks to a real AWS account or to a developer's running endpoint."""

import os

# moto's mock_aws does not intercept clients that are pointed at an endpoint URL.
for _name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
    del os.environ[_name]
os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                   "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "WelcomePipelineTests"})

# moto's in-process DynamoDB gets the same atomic transactions as the local cloud's server.
from localcloud.motopatch import apply as _atomic_moto_transactions  # noqa: E402

_atomic_moto_transactions()
