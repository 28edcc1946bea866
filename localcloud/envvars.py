"""`sam local invoke --env-vars FILE` for a stack deployed elsewhere (LocalStack, or AWS).

`sam local invoke` resolves a function's `!Ref`s to logical ids, not to the deployed queue URLs and
table names. This reads the stack's physical resource ids and parameters from CloudFormation and
resolves each function's Environment from template.yaml with them, so the file says exactly what
the deployed functions see, plus AWS_ENDPOINT_URL for a container that talks to LocalStack.
"""

from __future__ import annotations

from typing import Any

from localcloud.settings import CloudSettings
from localcloud.template import Context, Resolver, evaluate_conditions, load_template, resolve_parameters


def function_environment(template: dict[str, Any], logical_id: str, resolver: Resolver) -> dict[str, str]:
    """The function's Environment (Globals first), resolved; shared with the local deploy."""
    global_function = (template.get("Globals", {}) or {}).get("Function", {}) or {}
    resource = template["Resources"][logical_id]
    variables = {**(global_function.get("Environment", {}) or {}).get("Variables", {}),
                 **(resource.get("Properties", {}).get("Environment", {}) or {}).get("Variables", {})}
    return {name: str(value) for name, value in resolver.resolve(variables).items()}


def stack_env_vars(settings: CloudSettings, cloudformation: Any, endpoint_for_functions: str = "") -> dict:
    template = load_template(settings.template_path)
    stack = cloudformation.describe_stacks(StackName=settings.stack_name)["Stacks"][0]
    account = stack["StackId"].split(":")[4]
    deployed = {p["ParameterKey"]: p.get("ResolvedValue", p["ParameterValue"]) for p in stack.get("Parameters", [])}
    context = Context(stack_name=settings.stack_name, region=settings.region, account_id=account,
                      parameters=resolve_parameters(template, {k: v for k, v in deployed.items()
                                                               if k in (template.get("Parameters") or {})}),
                      mappings=template.get("Mappings", {}) or {})
    evaluate_conditions(template, context)
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=settings.stack_name):
        for summary in page["StackResourceSummaries"]:
            context.refs[summary["LogicalResourceId"]] = summary.get("PhysicalResourceId", "")
    resolver = Resolver(context)
    result = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function" or logical_id not in context.refs:
            continue
        environment = function_environment(template, logical_id, resolver)
        if endpoint_for_functions:
            environment["AWS_ENDPOINT_URL"] = endpoint_for_functions
        result[logical_id] = environment
    return result
