"""What the functions really touched, checked against what their roles allow. The emulator does not enforce IAM,
so a missing permission would only show on AWS; here every AWS request the runtime saw a function make (and its
event source make for it) becomes an IAM action on a resource ARN, and must be granted by a statement of that
function's role, its intrinsic functions resolved with the deployed stack's names (tests/adapters/
test_least_privilege.py checks the roles grant nothing wider)."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

from localcloud.cloud import LocalCloud
from tests.conftest import transformed_resources

# Operations IAM authorises under another action's name.
IAM_ACTION = {
    "sqs.SendMessageBatch": "sqs:SendMessage", "sqs.DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs.ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "s3.HeadObject": "s3:GetObject", "s3.CopyObject": "s3:PutObject", "s3.UploadPartCopy": "s3:PutObject",
    "s3.CreateMultipartUpload": "s3:PutObject", "s3.UploadPart": "s3:PutObject",
    "s3.CompleteMultipartUpload": "s3:PutObject", "sesv2.SendEmail": "ses:SendEmail",
}


class Stack:
    """Resolves the intrinsic functions of a role's statements with the deployed stack's names."""

    def __init__(self, cloud: LocalCloud):
        deployment = cloud.deployed
        self.region, self.account = cloud.settings.region, deployment.account
        self.resources = deployment.resources
        self.names = {"AWS::Partition": "aws", "AWS::Region": self.region, "AWS::AccountId": self.account,
                      "AWS::StackName": cloud.settings.stack_name, **deployment.parameters}

    def arn(self, service: str, resource: str) -> str:
        if service == "dynamodb":
            return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{resource}"
        if service == "sqs":
            return f"arn:aws:sqs:{self.region}:{self.account}:{resource}"
        if service == "s3":
            return f"arn:aws:s3:::{resource}"
        if service == "sesv2":
            return f"arn:aws:ses:{self.region}:{self.account}:identity/{resource}"
        return resource  # a secret's id is its ARN

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            name = value["Ref"]
            return self.names[name] if name in self.names else self.resources[name][1]
        if "Fn::GetAtt" in value:
            logical, _ = value["Fn::GetAtt"]
            kind, physical = self.resources[logical]
            if kind == "AWS::SQS::Queue":
                return self.arn("sqs", physical.rsplit("/", 1)[-1])
            return self.arn("dynamodb", physical)
        if "Fn::Sub" in value:
            text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
            names = {**self.names, **{k: self.resolve(v) for k, v in variables.items()}}
            return re.sub(r"\$\{([\w:]+)\}", lambda m: str(names[m[1]]), text)
        if "Fn::Select" in value:
            index, items = value["Fn::Select"]
            return self.resolve(items)[index]
        if "Fn::Split" in value:
            separator, text = value["Fn::Split"]
            return self.resolve(text).split(separator)
        raise ValueError(f"cannot resolve {value}")


def statements(cloud: LocalCloud, function: str) -> list[dict[str, Any]]:
    """The function's role's statements as deployed: conditions chosen, intrinsic functions resolved."""
    resources = transformed_resources(cloud.settings, cloud.client("iam"))
    role = resources[resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]]
    stack = Stack(cloud)
    found = []
    for policy in role["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:
                condition, when_true, when_false = statement["Fn::If"]
                assert condition == "UseSes"
                statement = when_true if cloud.email_provider == "ses" else when_false
                if "Ref" in statement:
                    continue
            actions, resources_ = (statement[key] if isinstance(statement[key], list) else [statement[key]]
                                   for key in ("Action", "Resource"))
            found.append({"actions": actions, "resources": [stack.resolve(r) for r in resources_]})
    return found


def touched_so_far(cloud: LocalCloud) -> dict[str, set[tuple[str, str, str]]]:
    return {function: set(pool.aws_resources) for function, pool in cloud.runtime.pools.items()}


def calls_outside_roles(cloud: LocalCloud, before: dict[str, set[tuple[str, str, str]]] | None = None) -> list[str]:
    """'Function: action on ARN' for every request its role does not grant (of those made since `before`, a
    `touched_so_far`: other tests on a shared cloud invoke functions with events no upload made)."""
    stack = Stack(cloud)
    outside = set()
    for function, pool in cloud.runtime.pools.items():
        touched = set(pool.aws_resources) - (before or {}).get(function, set())
        for source in cloud.runtime.sources:
            if source.pool is pool:  # the event source polls with the function's role
                name = source.queue_url.rsplit("/", 1)[-1]
                if not name.startswith("localcloud-async-"):  # Lambda's own async queue: not the function's
                    touched |= {("sqs", "ReceiveMessage", name), ("sqs", "DeleteMessage", name)}
        granted = statements(cloud, function)
        for service, operation, resource in touched:
            action = IAM_ACTION.get(f"{service}.{operation}", f"{service}:{operation}")
            arn = stack.arn(service, resource)
            if not any(any(fnmatchcase(action, a) for a in s["actions"])
                       and any(fnmatchcase(arn, r) for r in s["resources"]) for s in granted):
                outside.add(f"{function}: {action} on {arn}")
    return sorted(outside)
