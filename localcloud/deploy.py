"""Deploy template.yaml onto the emulator, idempotently.

Queues, tables, buckets and log groups are created for real on the endpoint. Functions are
not created there (moto's Lambda needs Docker, and its presence breaks moto's data API): the
local runtime runs them, and this module records what it needs to, from the template alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any

from botocore.exceptions import ClientError

from localcloud.emulator import aws_client
from localcloud.envvars import function_environment
from localcloud.settings import CloudSettings
from localcloud.template import Context, Resolver, dependencies, evaluate_conditions, load_template, resolve_parameters

DEFAULT_ASYNC_RETRIES = 2  # Lambda's default for asynchronous invocations


@dataclass(frozen=True)
class SqsSource:
    queue_url: str
    queue_arn: str
    batch_size: int
    batching_window_seconds: float
    max_concurrency: int | None
    report_batch_item_failures: bool


@dataclass(frozen=True)
class S3Source:
    bucket: str
    notification_queue_url: str


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
    s3_sources: list[S3Source] = field(default_factory=list)
    async_retries: int = DEFAULT_ASYNC_RETRIES
    on_failure_queue_url: str | None = None
    reserved_concurrency: int | None = None

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"


@dataclass
class Deployment:
    settings: CloudSettings
    context: Context
    functions: dict[str, FunctionSpec]
    outputs: dict[str, str]
    created: list[str]
    skipped: list[str]
    ses_event_topics: dict[str, str] = field(default_factory=dict)

    def function(self, name: str) -> FunctionSpec:
        for spec in self.functions.values():
            if name in (spec.logical_id, spec.name):
                return spec
        raise KeyError(f"no function {name!r} in the template (have: {', '.join(self.functions)})")

    def output(self, name: str) -> str:
        return self.outputs[name]


class Deployer:
    def __init__(self, settings: CloudSettings, client_factory: Callable[[str], Any] | None = None):
        """`client_factory(service)` makes the clients; unit tests pass plain boto3 under moto's mock_aws."""
        self.settings = settings
        self._client_factory = client_factory
        self.template = load_template(settings.template_path)
        self.created: list[str] = []
        self.skipped: list[str] = []
        self.functions: dict[str, FunctionSpec] = {}
        self._queue_urls_by_arn: dict[str, str] = {}
        self.ses_event_topics: dict[str, str] = {}  # configuration set -> SNS topic for its events

    def client(self, service: str) -> Any:
        if self._client_factory is not None:
            return self._client_factory(service)
        return aws_client(service, self.settings.endpoint, self.settings.region)

    def deploy(self) -> Deployment:
        account = self.client("sts").get_caller_identity()["Account"]
        context = Context(stack_name=self.settings.stack_name, region=self.settings.region, account_id=account,
                          parameters=resolve_parameters(self.template, self.settings.parameter_overrides),
                          mappings=self.template.get("Mappings", {}) or {})
        evaluate_conditions(self.template, context)
        resolver = Resolver(context)
        resources = self.template["Resources"]
        global_function = (self.template.get("Globals", {}) or {}).get("Function", {}) or {}
        graph = {}
        for logical_id, resource in resources.items():
            found = dependencies(resource.get("Properties", {}))
            if resource["Type"] == "AWS::Serverless::Function":
                found |= dependencies(global_function)
            depends_on = resource.get("DependsOn", [])
            found |= set([depends_on] if isinstance(depends_on, str) else depends_on)
            graph[logical_id] = found & set(resources)
        for logical_id in TopologicalSorter(graph).static_order():
            resource = resources[logical_id]
            if "Condition" in resource and not resolver.condition(resource["Condition"]):
                continue
            create = self._creators().get(resource["Type"])
            if create is None:
                self.skipped.append(f"{logical_id} ({resource['Type']})")
                continue
            create(logical_id, resource, resolver, global_function)
        outputs = {name: str(resolver.resolve(spec["Value"]))
                   for name, spec in (self.template.get("Outputs", {}) or {}).items()
                   if "Condition" not in spec or resolver.condition(spec["Condition"])}
        return Deployment(settings=self.settings, context=context, functions=self.functions, outputs=outputs,
                          created=self.created, skipped=self.skipped, ses_event_topics=self.ses_event_topics)

    def _creators(self) -> dict[str, Callable[[str, dict, Resolver, dict], None]]:
        return {"AWS::SQS::Queue": self._queue, "AWS::DynamoDB::Table": self._table,
                "AWS::S3::Bucket": self._bucket, "AWS::S3::BucketPolicy": self._bucket_policy,
                "AWS::Logs::LogGroup": self._log_group, "AWS::Serverless::Function": self._function,
                "AWS::SNS::Topic": self._topic, "AWS::CloudWatch::Alarm": self._alarm,
                "AWS::CloudWatch::Dashboard": self._dashboard, "AWS::SNS::Subscription": self._subscription,
                "AWS::SQS::QueuePolicy": self._queue_policy, "AWS::SES::EmailIdentity": self._email_identity,
                "AWS::SES::ConfigurationSet": self._configuration_set,
                "AWS::SES::ConfigurationSetEventDestination": self._event_destination}

    def _default_name(self, logical_id: str) -> str:
        return f"{self.settings.stack_name}-{logical_id}"

    # -- resources -----------------------------------------------------------------------------
    def _queue(self, logical_id: str, resource: dict, resolver: Resolver, _: dict) -> None:
        props = resolver.resolve(resource.get("Properties", {}))
        name = props.pop("QueueName", None) or self._default_name(logical_id)
        attributes = {key: _queue_attribute(value) for key, value in props.items() if key != "Tags"}
        sqs = self.client("sqs")
        try:
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._queue_urls_by_arn[arn] = url
        resolver.context.refs[logical_id] = url
        resolver.context.attributes[logical_id] = {"Arn": arn, "QueueName": name, "QueueUrl": url}
        self.created.append(logical_id)

    def _table(self, logical_id: str, resource: dict, resolver: Resolver, _: dict) -> None:
        props = resolver.resolve(resource.get("Properties", {}))
        name = props.get("TableName") or self._default_name(logical_id)
        dynamodb = self.client("dynamodb")
        request = {"TableName": name, "KeySchema": props["KeySchema"],
                   "AttributeDefinitions": props["AttributeDefinitions"],
                   "BillingMode": props.get("BillingMode", "PROVISIONED")}
        for optional in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification",
                         "ProvisionedThroughput"):
            if optional in props:
                request[optional] = props[optional]
        if "SSESpecification" in props:
            request["SSESpecification"] = {"Enabled": bool(props["SSESpecification"].get("SSEEnabled"))}
        try:
            description = dynamodb.create_table(**request)["TableDescription"]
            dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2})
            pitr = props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
            if pitr:
                dynamodb.update_continuous_backups(
                    TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
            description = dynamodb.describe_table(TableName=name)["Table"]
        resolver.context.refs[logical_id] = name
        resolver.context.attributes[logical_id] = {"Arn": description["TableArn"],
                                                   "StreamArn": description.get("LatestStreamArn", "")}
        self.created.append(logical_id)

    def _bucket(self, logical_id: str, resource: dict, resolver: Resolver, _: dict) -> None:
        props = resolver.resolve(resource.get("Properties", {}))
        name = props.get("BucketName") or self._default_name(logical_id).lower()
        s3 = self.client("s3")
        try:
            if self.settings.region == "us-east-1":
                s3.create_bucket(Bucket=name)
            else:
                s3.create_bucket(Bucket=name,
                                 CreateBucketConfiguration={"LocationConstraint": self.settings.region})
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(Bucket=name,
                                       PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
        if "BucketEncryption" in props:
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                          for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]})
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={
                "Status": props["VersioningConfiguration"]["Status"]})
        resolver.context.refs[logical_id] = name
        resolver.context.attributes[logical_id] = {"Arn": f"arn:aws:s3:::{name}",
                                                   "DomainName": f"{name}.s3.amazonaws.com"}
        self.created.append(logical_id)

    def _bucket_policy(self, logical_id: str, resource: dict, resolver: Resolver, _: dict) -> None:
        props = resolver.resolve(resource["Properties"])
        document = props["PolicyDocument"]
        if self.settings.endpoint.startswith("http://"):
            # The emulator speaks plain HTTP, where a TLS-only statement would deny every request.
            kept = [s for s in document["Statement"] if "aws:SecureTransport" not in json.dumps(s.get("Condition"))]
            if len(kept) < len(document["Statement"]):
                self.skipped.append(f"{logical_id} TLS-only statement (the local endpoint is plain HTTP)")
            document = {**document, "Statement": kept}
        if document["Statement"]:
            self.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))
        self.created.append(logical_id)

    def _log_group(self, logical_id: str, resource: dict, resolver: Resolver, _: dict) -> None:
        props = resolver.resolve(resource.get("Properties", {}))
        name = props.get("LogGroupName") or self._default_name(logical_id)
        logs = self.client("logs")
        try:
            logs.create_log_group(logGroupName=name)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        resolver.context.refs[logical_id] = name
        resolver.context.attributes[logical_id] = {
            "Arn": f"arn:aws:logs:{self.settings.region}:{resolver.context.account_id}:log-group:{name}:*"}
        self.created.append(logical_id)

    def _topic(self, logical_id: str, resource: dict, resolver: Resolver, _: dict) -> None:
        props = resolver.resolve(resource.get("Properties", {}))
        arn = self.client("sns").create_topic(Name=props.get("TopicName") or self._default_name(logical_id))["TopicArn"]
        resolver.context.refs[logical_id] = arn
        resolver.context.attributes[logical_id] = {"TopicArn": arn, "TopicName": arn.rsplit(":", 1)[1]}
        self.created.append(logical_id)

    def _subscription(self, logical_id: str, resource: dict, resolver: Resolver, _: dict) -> None:
        props = resolver.resolve(resource["Properties"])
        attributes = {"RawMessageDelivery": "true"} if str(props.get("RawMessageDelivery", "")).lower() == "true" \
            else {}
        arn = self.client("sns").subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"],
                                           Endpoint=props["Endpoint"], Attributes=attributes,
                                           ReturnSubscriptionArn=True)["SubscriptionArn"]
        resolver.context.refs[logical_id] = arn
        self.created.append(logical_id)

    def _queue_policy(self, logical_id: str, resource: dict, resolver: Resolver, _: dict) -> None:
        props = resolver.resolve(resource["Properties"])
        for url in props["Queues"]:
            self.client("sqs").set_queue_attributes(QueueUrl=url,
                                                    Attributes={"Policy": json.dumps(props["PolicyDocument"])})
        self.created.append(logical_id)

    def _email_identity(self, logical_id: str, resource: dict, resolver: Resolver, _: dict) -> None:
        props = resolver.resolve(resource["Properties"])
        ses = self.client("sesv2")
        try:  # the emulator counts an identity as verified at once; SES would email a link first
            ses.create_email_identity(EmailIdentity=props["EmailIdentity"])
        except ClientError as error:
            if error.response["Error"]["Code"] != "AlreadyExistsException":
                raise
        resolver.context.refs[logical_id] = props["EmailIdentity"]
        self.created.append(logical_id)

    def _configuration_set(self, logical_id: str, resource: dict, resolver: Resolver, _: dict) -> None:
        props = resolver.resolve(resource.get("Properties", {}))
        name = props.get("Name") or self._default_name(logical_id)
        try:
            self.client("sesv2").create_configuration_set(ConfigurationSetName=name)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("AlreadyExistsException",
                                                       "ConfigurationSetAlreadyExistsException"):
                raise
        resolver.context.refs[logical_id] = name
        self.created.append(logical_id)

    def _event_destination(self, logical_id: str, resource: dict, resolver: Resolver, _: dict) -> None:
        """Recorded only: the emulator's SES does not publish events (tests publish SES-shaped events to the topic)."""
        props = resolver.resolve(resource["Properties"])
        destination = props["EventDestination"]
        self.ses_event_topics[props["ConfigurationSetName"]] = destination["SnsDestination"]["TopicARN"]
        self.created.append(logical_id)

    def _alarm(self, logical_id: str, resource: dict, resolver: Resolver, _: dict) -> None:
        props = resolver.resolve(resource["Properties"])
        name = props.pop("AlarmName", None) or self._default_name(logical_id)
        self.client("cloudwatch").put_metric_alarm(AlarmName=name, **props)
        resolver.context.refs[logical_id] = name
        resolver.context.attributes[logical_id] = {
            "Arn": f"arn:aws:cloudwatch:{self.settings.region}:{resolver.context.account_id}:alarm:{name}"}
        self.created.append(logical_id)

    def _dashboard(self, logical_id: str, resource: dict, resolver: Resolver, _: dict) -> None:
        props = resolver.resolve(resource["Properties"])
        name = props.get("DashboardName") or self._default_name(logical_id)
        self.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=props["DashboardBody"])
        resolver.context.refs[logical_id] = name
        self.created.append(logical_id)

    def _function(self, logical_id: str, resource: dict, resolver: Resolver, global_function: dict) -> None:
        merged = {**global_function, **resource.get("Properties", {})}
        props = resolver.resolve({k: v for k, v in merged.items() if k not in ("Environment", "Events")})
        environment = function_environment(self.template, logical_id, resolver)
        name = props.get("FunctionName") or self._default_name(logical_id)
        arn = f"arn:aws:lambda:{self.settings.region}:{resolver.context.account_id}:function:{name}"
        invoke_config = props.get("EventInvokeConfig", {}) or {}
        on_failure = (invoke_config.get("DestinationConfig", {}) or {}).get("OnFailure", {}) or {}
        spec = FunctionSpec(
            logical_id=logical_id, name=name, arn=arn, handler=props["Handler"],
            timeout_seconds=int(props.get("Timeout", 3)), memory_mb=int(props.get("MemorySize", 128)),
            environment=environment,
            async_retries=int(invoke_config.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES)),
            on_failure_queue_url=self._queue_urls_by_arn.get(on_failure.get("Destination", "")),
            reserved_concurrency=int(props["ReservedConcurrentExecutions"])
            if "ReservedConcurrentExecutions" in props else None)
        resolver.context.refs[logical_id] = name
        resolver.context.attributes[logical_id] = {"Arn": arn}
        for event_name, event in (resource.get("Properties", {}).get("Events", {}) or {}).items():
            event_props = resolver.resolve(event.get("Properties", {}))
            if event["Type"] == "SQS":
                scaling = event_props.get("ScalingConfig", {}) or {}
                spec.sqs_sources.append(SqsSource(
                    queue_url=self._queue_urls_by_arn[event_props["Queue"]], queue_arn=event_props["Queue"],
                    batch_size=int(event_props.get("BatchSize", 10)),
                    batching_window_seconds=float(event_props.get("MaximumBatchingWindowInSeconds", 0)),
                    max_concurrency=int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None,
                    report_batch_item_failures="ReportBatchItemFailures" in event_props.get(
                        "FunctionResponseTypes", [])))
            elif event["Type"] == "S3":
                spec.s3_sources.append(self._s3_notifications(spec, event_name, event_props))
            else:
                self.skipped.append(f"{logical_id}.{event_name} (event type {event['Type']})")
        self.functions[logical_id] = spec
        self.created.append(logical_id)

    def _s3_notifications(self, spec: FunctionSpec, event_name: str, props: dict) -> S3Source:
        """S3 -> a private queue of the runtime's, with the template's events and key filter."""
        sqs = self.client("sqs")
        queue_name = f"localcloud-{spec.name}-{event_name}"[:80]
        url = sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "43200"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = props["Events"] if isinstance(props["Events"], list) else [props["Events"]]
        configuration: dict[str, Any] = {"Id": f"{spec.logical_id}-{event_name}", "QueueArn": arn, "Events": events}
        if "Filter" in props:
            configuration["Filter"] = {"Key": {"FilterRules": props["Filter"]["S3Key"]["Rules"]}}
        s3 = self.client("s3")
        current = s3.get_bucket_notification_configuration(Bucket=props["Bucket"])
        queues = [q for q in current.get("QueueConfigurations", []) if q.get("Id") != configuration["Id"]]
        s3.put_bucket_notification_configuration(Bucket=props["Bucket"], NotificationConfiguration={
            "QueueConfigurations": [*queues, configuration]})
        return S3Source(bucket=props["Bucket"], notification_queue_url=url)


def _queue_attribute(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def deploy(settings: CloudSettings, client_factory: Callable[[str], Any] | None = None) -> Deployment:
    return Deployer(settings, client_factory).deploy()
