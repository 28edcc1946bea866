"""template.yaml deployed as a CloudFormation stack, on any endpoint, and read back from it."""

from localcloud.deploy.stack import Deployment, FunctionSpec, SqsSource, StackNotFound, deploy, read_stack
from localcloud.deploy.template import TemplateError

__all__ = ["Deployment", "FunctionSpec", "SqsSource", "StackNotFound", "TemplateError", "deploy", "read_stack"]
