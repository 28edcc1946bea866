"""Tiny handlers the runtime tests invoke (imported by the worker process, as a Lambda handler is)."""

import os
import time


def sleepy(event, context):
    time.sleep(event.get("seconds", 0))
    return {"remaining_ms": context.get_remaining_time_in_millis(), "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            "pid": os.getpid()}


def failing(event, context):
    raise ValueError("bad input")
