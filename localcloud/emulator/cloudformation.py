"""CloudFormation resource types moto's CloudFormation lacks, for the types template.yaml (after the SAM
transform) declares: queue and bucket policies, SNS subscriptions, alarms, Lambda async-invoke
settings, the SES resources and a generated Secrets Manager secret.

Each is a `moto.core.common_models.CloudFormationModel`, moto's own extension point: defining the
class registers its type with moto's stack engine. They call moto's backends, so a stack on the
emulator holds every resource of the template and `!Ref`/`!GetAtt` resolve as on AWS. moto also
ignores a bucket's `NotificationConfiguration` (how SAM wires S3 events); `register` applies it.

Any type still unknown to moto is named by `unsupported_types`, so a deploy can say so.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from moto.core.common_models import CloudFormationModel

_registered = False
TLS_ONLY_CONDITION = "aws:SecureTransport"


class _Model:
    """A resource whose whole state lives in a moto backend; this object only names it. Each model below
    also subclasses CloudFormationModel directly: moto finds models by `CloudFormationModel.__subclasses__()`."""

    TYPE = ""

    def __init__(self, physical_id: str, attributes: dict[str, str] | None = None):
        self.physical_resource_id = physical_id
        self._attributes = attributes or {}

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self._attributes[attribute_name]

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _Model:
        raise NotImplementedError

    @classmethod
    def delete(cls, physical_id: str, properties: dict[str, Any], account_id: str, region: str) -> None:
        """Most of these are settings of another resource, which goes with its own resource."""

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any, account_id: str,  # type: ignore[override]
                                        region_name: str, **kwargs: Any) -> _Model:
        return cls.create(resource_name, cloudformation_json.get("Properties", {}), account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,  # type: ignore[override]
                                        cloudformation_json: Any, account_id: str, region_name: str) -> _Model:
        return cls.create(new_resource_name, cloudformation_json.get("Properties", {}), account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any, account_id: str,  # type: ignore[override]
                                        region_name: str) -> None:
        cls.delete(resource_name, cloudformation_json.get("Properties", {}), account_id, region_name)


class QueuePolicy(_Model, CloudFormationModel):
    TYPE = "AWS::SQS::QueuePolicy"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _Model:
        from moto.sqs.models import sqs_backends

        for url in properties["Queues"]:
            sqs_backends[account_id][region].set_queue_attributes(
                url.rsplit("/", 1)[1], {"Policy": json.dumps(properties["PolicyDocument"])})
        return cls(name)


class BucketPolicy(_Model, CloudFormationModel):
    TYPE = "AWS::S3::BucketPolicy"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _Model:
        from moto.s3.models import s3_backends

        # The emulator speaks plain HTTP, where a TLS-only statement would deny every request. (moto leaves a
        # statement that an Fn::If turned into AWS::NoValue in the list, as None: CloudFormation drops it.)
        document = properties["PolicyDocument"]
        document = {**document, "Statement": [statement for statement in document["Statement"] if statement
                                              and TLS_ONLY_CONDITION not in json.dumps(statement.get("Condition"))]}
        if document["Statement"]:
            s3_backends[account_id]["aws"].put_bucket_policy(properties["Bucket"], json.dumps(document).encode())
        return cls(name)


class TopicPolicy(_Model, CloudFormationModel):
    TYPE = "AWS::SNS::TopicPolicy"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _Model:
        from moto.sns.models import sns_backends

        for topic_arn in properties["Topics"]:
            sns_backends[account_id][region].set_topic_attribute(topic_arn, "Policy",
                                                                 json.dumps(properties["PolicyDocument"]))
        return cls(name)


class Subscription(_Model, CloudFormationModel):
    TYPE = "AWS::SNS::Subscription"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _Model:
        from moto.sns.models import sns_backends

        backend = sns_backends[account_id][region]
        subscription = backend.subscribe(properties["TopicArn"], properties["Endpoint"], properties["Protocol"])
        if str(properties.get("RawMessageDelivery", "")).lower() == "true":
            backend.set_subscription_attributes(subscription.arn, "RawMessageDelivery", "true")
        return cls(subscription.arn)

    @classmethod
    def delete(cls, physical_id: str, properties: dict[str, Any], account_id: str, region: str) -> None:
        from moto.sns.models import sns_backends

        sns_backends[account_id][region].unsubscribe(physical_id)


class Alarm(_Model, CloudFormationModel):
    TYPE = "AWS::CloudWatch::Alarm"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _Model:
        from moto.cloudwatch.models import cloudwatch_backends

        alarm_name = properties.get("AlarmName") or name
        cloudwatch_backends[account_id][region].put_metric_alarm(
            name=alarm_name, namespace=str(properties.get("Namespace", "")),
            metric_name=str(properties.get("MetricName", "")),
            comparison_operator=properties["ComparisonOperator"],
            evaluation_periods=int(properties["EvaluationPeriods"]), period=int(properties.get("Period", 60)),
            threshold=float(properties["Threshold"]), statistic=str(properties.get("Statistic", "")),
            description=properties.get("AlarmDescription", ""), dimensions=properties.get("Dimensions", []),
            alarm_actions=properties.get("AlarmActions", []), treat_missing_data=properties.get("TreatMissingData"))
        return cls(alarm_name, {"Arn": f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{alarm_name}"})

    @classmethod
    def delete(cls, physical_id: str, properties: dict[str, Any], account_id: str, region: str) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        cloudwatch_backends[account_id][region].delete_alarms([physical_id])


class EventInvokeConfig(_Model, CloudFormationModel):
    TYPE = "AWS::Lambda::EventInvokeConfig"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _Model:
        from moto.awslambda.utils import get_backend

        backend = get_backend(account_id, region)
        config: dict[str, Any] = {key: properties[key] for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds",
                                                   "DestinationConfig") if key in properties}
        function = backend.get_function(properties["FunctionName"])
        function.event_invoke_config = []  # an update replaces the function's one config
        backend.put_function_event_invoke_config(properties["FunctionName"], config)
        return cls(f"{properties['FunctionName']}:{properties.get('Qualifier', '$LATEST')}")


class EmailIdentity(_Model, CloudFormationModel):
    TYPE = "AWS::SES::EmailIdentity"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _Model:
        from moto.sesv2.models import sesv2_backends

        backend = sesv2_backends[account_id][region]
        identity = properties["EmailIdentity"]
        if identity not in backend.core_backend.email_identities:  # the emulator verifies it at once
            configuration_set = (properties.get("ConfigurationSetAttributes") or {}).get("ConfigurationSetName")
            backend.create_email_identity(identity, None, None, configuration_set)
        return cls(identity)


class ConfigurationSet(_Model, CloudFormationModel):
    TYPE = "AWS::SES::ConfigurationSet"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _Model:
        from moto.sesv2.models import sesv2_backends

        backend = sesv2_backends[account_id][region]
        set_name = properties.get("Name") or name
        if set_name not in backend.core_backend.config_sets:
            backend.create_configuration_set(set_name, {}, {}, {}, {}, [], {}, {})
        return cls(set_name)


class ConfigurationSetEventDestination(_Model, CloudFormationModel):
    """Recorded by SES v1's backend; moto's SES publishes no events (tests publish SES-shaped events)."""

    TYPE = "AWS::SES::ConfigurationSetEventDestination"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _Model:
        from moto.ses.models import ses_backends

        destination = properties["EventDestination"]
        ses_backends[account_id][region].create_configuration_set_event_destination(
            properties["ConfigurationSetName"], {"Name": destination.get("Name", name), **destination})
        return cls(f"{properties['ConfigurationSetName']}|{destination.get('Name', name)}")


class Secret(_Model, CloudFormationModel):
    """A secret whose value CloudFormation generates (GenerateSecretString); an update keeps the value."""

    TYPE = "AWS::SecretsManager::Secret"

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], account_id: str, region: str) -> _Model:
        from moto.secretsmanager.models import secretsmanager_backends

        backend = secretsmanager_backends[account_id][region]
        secret_name = properties.get("Name") or name
        if secret_name not in backend.secrets:
            value = properties.get("SecretString") or _generated(properties.get("GenerateSecretString") or {})
            backend.create_secret(name=secret_name, secret_string=value, secret_binary=None,
                                  description=properties.get("Description"), tags=[], kms_key_id=None,
                                  client_request_token=None, replica_regions=[], force_overwrite=False)
        return cls(backend.secrets[secret_name].arn)

    @classmethod
    def delete(cls, physical_id: str, properties: dict[str, Any], account_id: str, region: str) -> None:
        from moto.secretsmanager.models import secretsmanager_backends

        secretsmanager_backends[account_id][region].delete_secret(physical_id, None, True)


def _generated(spec: dict[str, Any]) -> str:
    """GenerateSecretString's password: letters and digits (+ punctuation unless excluded)."""
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!#$%&()*+,-.:;<=>?[]^_{|}~"
    alphabet = "".join(c for c in alphabet if c not in str(spec.get("ExcludeCharacters", "")))
    return "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))


# CloudFormation's NotificationConfiguration list -> (moto's configuration list, its target key, CloudFormation's)
_NOTIFICATION_TARGETS = {"LambdaConfigurations": ("CloudFunctionConfiguration", "CloudFunction", "Function"),
                         "QueueConfigurations": ("QueueConfiguration", "Queue", "Queue"),
                         "TopicConfigurations": ("TopicConfiguration", "Topic", "Topic")}


def _moto_notifications(notifications: dict[str, Any]) -> dict[str, Any] | None:
    """A bucket's CloudFormation NotificationConfiguration in the shape moto's S3 backend keeps."""
    configuration: dict[str, list[dict[str, Any]]] = {}
    for cfn_list, (moto_list, moto_target, cfn_target) in _NOTIFICATION_TARGETS.items():
        for index, entry in enumerate(notifications.get(cfn_list, [])):
            target = entry[cfn_target]
            configuration.setdefault(moto_list, []).append({
                "Id": entry.get("Id") or f"{target.rsplit(':', 1)[-1]}-{index}", moto_target: target,
                "Event": [entry["Event"]],
                **({"Filter": {"S3Key": {"FilterRule": entry["Filter"]["S3Key"]["Rules"]}}} if entry.get("Filter")
                   else {})})
    return configuration or None


def _with_notifications(original: Any) -> Any:
    """moto creates the bucket and drops its NotificationConfiguration; put it on the bucket as S3 would."""

    def create_or_update(cls: Any, *args: Any, **kwargs: Any) -> Any:
        bucket = original.__func__(cls, *args, **kwargs)
        cloudformation_json = kwargs.get("cloudformation_json") or args[1]
        bucket.set_notification_configuration(
            _moto_notifications(cloudformation_json.get("Properties", {}).get("NotificationConfiguration") or {}))
        return bucket

    return classmethod(create_or_update)


def register() -> None:
    """Make moto's stack engine use the models above (idempotent)."""
    global _registered
    if _registered:
        return
    from moto.cloudformation import parsing
    from moto.s3.models import FakeBucket

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    FakeBucket.create_from_cloudformation_json = _with_notifications(  # type: ignore[method-assign]
        FakeBucket.create_from_cloudformation_json)
    FakeBucket.update_from_cloudformation_json = _with_notifications(  # type: ignore[method-assign]
        FakeBucket.update_from_cloudformation_json)
    _describe_only_created_resources()
    _registered = True


def _describe_only_created_resources() -> None:
    """`aws cloudformation describe-stack-resource` failed with a 500 for every resource: moto's stack keeps
    None for a resource it did not create (its Condition is false, say), and its DescribeStackResource reads
    `.logical_resource_id` of each in turn. The same search, past the resources that are not there."""
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.models import CloudFormationBackend

    def describe_stack_resource(self: Any, stack_name: str, logical_resource_id: str) -> Any:
        stack = self.get_stack(stack_name)
        for resource in stack.stack_resources:
            if resource is not None and resource.logical_resource_id == logical_resource_id:
                return stack, resource
        raise ValidationError(stack_name, f"Resource {logical_resource_id} does not exist for stack {stack_name}")

    CloudFormationBackend.describe_stack_resource = describe_stack_resource  # type: ignore[method-assign]


def unsupported_types(resource_types: set[str]) -> list[str]:
    """The types moto's stack engine would skip (it only warns), so a deploy can name them."""
    from moto.cloudformation import parsing

    register()
    return sorted(t for t in resource_types if t not in parsing.get_model_map() and not t.startswith("Custom::"))
