"""The local Lambda runtime: execution environments, event sources and CloudWatch logs for a stack's functions."""
