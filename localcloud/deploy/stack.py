"""The stack: deployed through the CloudFormation API, and read back from it.

`deploy` creates or updates the stack `welcome-pipeline` from the transformed template on any
endpoint (the emulator, a LocalStack, AWS). `read_stack` is everything the CLI, the runtime, tests
and the bench know of it — outputs, resources, and each function's configuration and triggers as
Lambda reports them — so no name comes from a local naming rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from localcloud.config import CloudSettings
from localcloud.deploy.dependencies import installed_dependencies
from localcloud.deploy.template import TemplateError, check_parameters, load_template, package, transform
from localcloud.emulator.patches.lambda_hosting import async_queue_name

DEFAULT_ASYNC_RETRIES = 2  # Lambda's default for asynchronous invocations
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


class StackNotFound(LookupError):
    pass


@dataclass(frozen=True)
class SqsSource:
    queue_url: str
    queue_arn: str
    batch_size: int
    batching_window_seconds: float
    max_concurrency: int | None
    report_batch_item_failures: bool


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    sqs_sources: list[SqsSource] = field(default_factory=list)
    async_queue: str = ""  # queue name: where the emulator puts the function's asynchronous invocations (S3 events)
    async_retries: int = DEFAULT_ASYNC_RETRIES
    on_failure_queue_url: str | None = None
    reserved_concurrency: int | None = None

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"


@dataclass
class Deployment:
    settings: CloudSettings
    outputs: dict[str, str]
    parameters: dict[str, str]
    resources: dict[str, tuple[str, str]]  # logical id -> (type, physical id)
    functions: dict[str, FunctionSpec]
    stack_id: str = ""
    not_emulated: list[str] = field(default_factory=list)  # resources the endpoint could not create
    changed: bool = False

    @property
    def account(self) -> str:
        return self.stack_id.split(":")[4]

    def function(self, name: str) -> FunctionSpec:
        for spec in self.functions.values():
            if name in (spec.logical_id, spec.name):
                return spec
        raise KeyError(f"no function {name!r} in stack {self.settings.stack_name} "
                       f"(have: {', '.join(self.functions)})")

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise KeyError(f"stack {self.settings.stack_name} has no output {name}") from None


ClientFactory = Callable[[str], Any]


def deploy(settings: CloudSettings, client_factory: ClientFactory | None = None,
           supported_types: set[str] | None = None, runs_code: bool = False) -> Deployment:
    """Create or update the stack; a stack whose template and parameters are unchanged is left as it is.

    `supported_types`: the resource types the endpoint's CloudFormation creates, where it says (our emulator).
    `runs_code`: the endpoint runs the functions' code itself (a LocalStack, AWS), so each function is packaged
    with its dependencies, installed for its architecture, as `sam build` does. The embedded cloud's runtime
    runs them with this project's environment instead.
    """
    client = client_factory or settings.client
    template = load_template(settings.template_path)
    check_parameters(template, settings.parameter_overrides)
    account = client("sts").get_caller_identity()["Account"]
    dependencies = None
    if runs_code:
        architecture = settings.parameter_overrides.get(
            "Architecture", str(template.get("Parameters", {}).get("Architecture", {}).get("Default", "arm64")))
        dependencies = installed_dependencies(settings.code_dir / "requirements.txt", architecture,
                                              settings.root / ".localcloud" / "build")
    packaged = package(template, settings.root, client("s3"), f"localcloud-artifacts-{account}-{settings.region}",
                       settings.region, dependencies)
    transformed = transform(packaged, settings.region, client("iam"))
    body = json.dumps(transformed, sort_keys=True)
    parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(settings.parameter_overrides.items())]
    changed = _create_or_update(client("cloudformation"), settings.stack_name, body, parameters)
    deployment = read_stack(settings, client)
    deployment.changed = changed
    if supported_types is not None:
        deployment.not_emulated = sorted(
            f"{logical_id} ({resource['Type']})" for logical_id, resource in transformed["Resources"].items()
            if resource["Type"] not in supported_types)
        deployment.not_emulated += [
            f"{logical_id}: its TLS-only statement (the emulator's endpoint is plain HTTP)"
            for logical_id, resource in transformed["Resources"].items()
            if resource["Type"] == "AWS::S3::BucketPolicy" and "aws:SecureTransport" in json.dumps(resource)]
    return deployment


def _create_or_update(cloudformation: Any, stack_name: str, body: str, parameters: list[dict[str, str]]) -> bool:
    stack = _described(cloudformation, stack_name)
    if stack is not None and stack["StackStatus"] in ("ROLLBACK_COMPLETE", "CREATE_FAILED", "DELETE_COMPLETE"):
        cloudformation.delete_stack(StackName=stack_name)
        _wait(cloudformation, "stack_delete_complete", stack_name)
        stack = None
    if stack is None:
        cloudformation.create_stack(StackName=stack_name, TemplateBody=body, Parameters=parameters,
                                    Capabilities=CAPABILITIES)
        _wait(cloudformation, "stack_create_complete", stack_name)
        return True
    deployed_body = cloudformation.get_template(StackName=stack_name)["TemplateBody"]
    deployed_body = deployed_body if isinstance(deployed_body, str) else json.dumps(deployed_body, sort_keys=True)
    deployed_parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    wanted = {p["ParameterKey"]: p["ParameterValue"] for p in parameters}
    if _same_json(deployed_body, body) and all(deployed_parameters.get(k) == v for k, v in wanted.items()) \
            and set(deployed_parameters) <= set(wanted) | _defaults_in(deployed_body, deployed_parameters):
        return False
    try:
        cloudformation.update_stack(StackName=stack_name, TemplateBody=body, Parameters=parameters,
                                    Capabilities=CAPABILITIES)
    except ClientError as error:
        if "No updates are to be performed" in str(error):
            return False
        raise
    _wait(cloudformation, "stack_update_complete", stack_name)
    return True


def _described(cloudformation: Any, stack_name: str) -> dict[str, Any] | None:
    """The stack as DescribeStacks says, or None when there is no such stack."""
    try:
        return dict(cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0])
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise


def _same_json(left: str, right: str) -> bool:
    try:
        return json.loads(left) == json.loads(right)
    except json.JSONDecodeError:
        return False


def _defaults_in(body: str, deployed: dict[str, str]) -> set[str]:
    """Parameters the stack reports at their template default (some endpoints list every parameter)."""
    try:
        declared = json.loads(body).get("Parameters", {})
    except json.JSONDecodeError:
        return set()
    return {name for name, value in deployed.items() if str(declared.get(name, {}).get("Default")) == value}


def _wait(cloudformation: Any, waiter: str, stack_name: str) -> None:
    try:
        cloudformation.get_waiter(waiter).wait(StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 900})
    except WaiterError:
        events = cloudformation.describe_stack_events(StackName=stack_name).get("StackEvents", [])
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events
                   if "FAILED" in e.get("ResourceStatus", "")][:5]
        raise TemplateError(f"stack {stack_name} did not deploy: " + ("; ".join(reasons) or "see its events")) from None


def read_stack(settings: CloudSettings, client_factory: ClientFactory | None = None) -> Deployment:
    """The deployed stack as the CLI and the runtime need it; StackNotFound if there is none."""
    client = client_factory or settings.client
    cloudformation = client("cloudformation")
    stack = _described(cloudformation, settings.stack_name)
    if stack is None:
        raise StackNotFound(settings.stack_name)
    resources: dict[str, tuple[str, str]] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=settings.stack_name):
        for summary in page["StackResourceSummaries"]:
            if summary.get("LogicalResourceId"):
                resources[summary["LogicalResourceId"]] = (summary["ResourceType"],
                                                           summary.get("PhysicalResourceId", ""))
    template = cloudformation.get_template(StackName=settings.stack_name)["TemplateBody"]
    template = json.loads(template) if isinstance(template, str) else template
    parameters = {name: str(spec["Default"]) for name, spec in (template.get("Parameters") or {}).items()
                  if "Default" in spec}
    parameters.update({p["ParameterKey"]: p.get("ResolvedValue", p["ParameterValue"])
                       for p in stack.get("Parameters", [])})
    functions = {logical_id: _function(client, logical_id, physical_id)
                 for logical_id, (kind, physical_id) in resources.items() if kind == "AWS::Lambda::Function"}
    return Deployment(settings=settings, outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
                      parameters=parameters, resources=resources, functions=functions, stack_id=stack["StackId"])


def _queue_url(sqs: Any, queue_arn: str) -> str:
    _, _, _, _, account, name = queue_arn.split(":")
    return sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def _function(client: ClientFactory, logical_id: str, name: str) -> FunctionSpec:
    lambda_ = client("lambda")
    sqs = client("sqs")
    configuration = lambda_.get_function_configuration(FunctionName=name)
    spec = FunctionSpec(logical_id=logical_id, name=name, arn=configuration["FunctionArn"],
                        handler=configuration["Handler"], timeout_seconds=int(configuration.get("Timeout", 3)),
                        memory_mb=int(configuration.get("MemorySize", 128)),
                        environment={name: str(value) for name, value in  # Lambda's are strings; moto's may not be
                                     (configuration.get("Environment") or {}).get("Variables", {}).items()})
    for mapping in lambda_.list_event_source_mappings(FunctionName=name).get("EventSourceMappings", []):
        if ":sqs:" not in mapping["EventSourceArn"] or mapping.get("State", "Enabled") not in ("Enabled", "Enabling"):
            continue
        spec.sqs_sources.append(SqsSource(
            queue_url=_queue_url(sqs, mapping["EventSourceArn"]), queue_arn=mapping["EventSourceArn"],
            batch_size=int(mapping.get("BatchSize", 10)),
            batching_window_seconds=float(mapping.get("MaximumBatchingWindowInSeconds", 0)),
            max_concurrency=(mapping.get("ScalingConfig") or {}).get("MaximumConcurrency"),
            report_batch_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", [])))
    try:
        invoke_config = lambda_.get_function_event_invoke_config(FunctionName=name)
    except ClientError:
        invoke_config = {}
    spec.async_retries = int(invoke_config.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES))
    destination = ((invoke_config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination", "")
    spec.on_failure_queue_url = _queue_url(sqs, destination) if ":sqs:" in destination else None
    try:
        concurrency = lambda_.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    except ClientError:
        concurrency = None
    spec.reserved_concurrency = int(concurrency) if concurrency is not None else None
    spec.async_queue = async_queue_name(name)
    return spec
