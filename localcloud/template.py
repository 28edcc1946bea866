"""Reading template.yaml: CloudFormation short tags, parameters, conditions and intrinsic functions.

The local cloud takes every name, setting and wiring from the template through this module,
so nothing the template says is repeated in code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NO_VALUE = object()  # AWS::NoValue: the property disappears


class TemplateError(ValueError):
    pass


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(tag: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    name = "Ref" if tag == "Ref" else ("Condition" if tag == "Condition" else f"Fn::{tag}")

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _name in ("Ref", "Condition", "GetAtt", "Sub", "If", "Equals", "Not", "And", "Or", "Join", "Select", "Split",
              "FindInMap", "ImportValue", "GetAZs", "Base64", "Cidr", "Transform"):
    _CfnLoader.add_constructor(f"!{_name}", _tag(_name))


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass  # nosec B506
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources)")
    return document


@dataclass
class Context:
    """What intrinsic functions resolve against: parameters, pseudo parameters, deployed resources."""

    stack_name: str
    region: str
    account_id: str
    parameters: dict[str, str]
    conditions: dict[str, bool] = field(default_factory=dict)
    refs: dict[str, Any] = field(default_factory=dict)  # logical id -> physical id
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> attributes
    mappings: dict[str, Any] = field(default_factory=dict)

    def pseudo(self, name: str) -> Any:
        return {"AWS::StackName": self.stack_name, "AWS::Region": self.region, "AWS::AccountId": self.account_id,
                "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": NO_VALUE,
                "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local",
                }.get(name)


def resolve_parameters(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    declared = template.get("Parameters", {}) or {}
    unknown = set(overrides) - set(declared)
    if unknown:
        raise TemplateError(f"unknown parameters: {', '.join(sorted(unknown))}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            value = str(overrides[name])
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} has no default and no value was given")
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                raise TemplateError(f"parameter {name}={value!r} is not a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise TemplateError(f"parameter {name}={value} is below its MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise TemplateError(f"parameter {name}={value} is above its MaxValue {spec['MaxValue']}")
        values[name] = value
    return values


class Resolver:
    def __init__(self, context: Context):
        self.context = context

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key == "Condition" and isinstance(argument, str):
                return self.condition(argument)
            if key.startswith("Fn::"):
                return self._function(key[4:], argument)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def condition(self, name: str) -> bool:
        if name not in self.context.conditions:
            raise TemplateError(f"unknown condition {name}")
        return self.context.conditions[name]

    def _ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.context.pseudo(name)
        if name in self.context.parameters:
            return self.context.parameters[name]
        if name in self.context.refs:
            return self.context.refs[name]
        raise TemplateError(f"!Ref {name}: no such parameter, or the resource is not deployed yet")

    def _get_att(self, resource: str, attribute: str) -> Any:
        try:
            return self.context.attributes[resource][attribute]
        except KeyError:
            raise TemplateError(f"!GetAtt {resource}.{attribute} is not known to the local cloud") from None

    def _function(self, name: str, argument: Any) -> Any:
        if name == "GetAtt":
            resource, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self._get_att(resource, attribute)
        if name == "Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            variables = {k: self.resolve(v) for k, v in variables.items()}
            return re.sub(r"\$\{([^}]+)\}", lambda m: self._substitute(m.group(1), variables), text)
        if name == "If":
            condition, when_true, when_false = argument
            return self.resolve(when_true if self.condition(condition) else when_false)
        if name == "Equals":
            left, right = (self.resolve(a) for a in argument)
            return str(left) == str(right)
        if name == "Not":
            return not self.resolve(argument[0])
        if name == "And":
            return all(self.resolve(a) for a in argument)
        if name == "Or":
            return any(self.resolve(a) for a in argument)
        if name == "Join":
            delimiter, items = argument
            return str(delimiter).join(str(i) for i in self.resolve(items))
        if name == "Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
        if name == "Split":
            delimiter, text = argument
            return str(self.resolve(text)).split(delimiter)
        if name == "FindInMap":
            mapping, first, second = (self.resolve(a) for a in argument)
            return self.context.mappings[mapping][first][second]
        if name == "GetAZs":
            return [f"{self.context.region}{zone}" for zone in "abc"]
        raise TemplateError(f"Fn::{name} is not supported by the local cloud")

    def _substitute(self, expression: str, variables: Mapping[str, Any]) -> str:
        if expression.startswith("!"):
            return "${" + expression[1:] + "}"
        if expression in variables:
            return str(variables[expression])
        if "." in expression and not expression.startswith("AWS::"):
            resource, attribute = expression.split(".", 1)
            return str(self._get_att(resource, attribute))
        value = self._ref(expression)
        return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def evaluate_conditions(template: Mapping[str, Any], context: Context) -> dict[str, bool]:
    resolver = Resolver(context)
    pending = dict(template.get("Conditions", {}) or {})
    while pending:
        progressed = False
        for name, expression in list(pending.items()):
            try:
                context.conditions[name] = bool(resolver.resolve(expression))
            except TemplateError:
                continue
            del pending[name]
            progressed = True
        if not progressed:
            raise TemplateError(f"conditions cannot be evaluated: {', '.join(pending)}")
    return context.conditions


def dependencies(value: Any) -> set[str]:
    """Logical ids a property value refers to (Ref, GetAtt, and ${...} in Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= dependencies(item)
    elif isinstance(value, dict):
        for key, argument in value.items():
            if key == "Ref" and isinstance(argument, str) and not argument.startswith("AWS::"):
                found.add(argument)
            elif key == "Fn::GetAtt":
                found.add(argument[0] if isinstance(argument, list) else argument.split(".", 1)[0])
            elif key == "Fn::Sub":
                text = argument if isinstance(argument, str) else argument[0]
                for expression in re.findall(r"\$\{([^}!]+)\}", text):
                    if not expression.startswith("AWS::"):
                        found.add(expression.split(".", 1)[0])
                if isinstance(argument, list):
                    found |= dependencies(argument[1])
            else:
                found |= dependencies(argument)
    return found
