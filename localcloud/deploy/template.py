"""template.yaml to a CloudFormation template, as `sam deploy` makes it: code packaged, SAM transformed.

The transform is the SAM translator's (`samtranslator`, the library the SAM CLI uses); packaging is
`sam build` + `sam package`'s job in miniature: each local CodeUri zipped (with its locked dependencies
installed for Lambda, for an endpoint that runs the code itself: deploy/dependencies.py), uploaded once
per content to an artifacts bucket, and named by S3 location.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
_PACKAGED = (".py", ".json", ".txt", ".html")  # what the functions read; no caches or build output


class TemplateError(ValueError):
    pass


def load_template(path: Path) -> dict[str, Any]:
    document = yaml_parse(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources)")
    return document


def check_parameters(template: Mapping[str, Any], overrides: Mapping[str, str]) -> None:
    """Fail before deploying, with the parameter's name, where CloudFormation would fail the stack."""
    declared = template.get("Parameters", {}) or {}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"unknown parameters: {', '.join(unknown)} (the template has: {', '.join(declared)})")
    for name, value in overrides.items():
        spec = declared[name]
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


def code_archive(directory: Path, dependencies: Path | None = None) -> bytes:
    """A zip of the code directory (and, beside it at the root, the installed dependencies); the same files give
    the same bytes (so an unchanged function stays as it is)."""
    files = [(path.relative_to(directory), path) for path in directory.rglob("*") if path.is_file()
             and path.suffix in _PACKAGED and "__pycache__" not in path.parts]
    if dependencies is not None:
        files += [(path.relative_to(dependencies), path) for path in dependencies.rglob("*")
                  if path.is_file() and "__pycache__" not in path.parts and path.name != ".complete"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(files, key=lambda item: str(item[0])):
            info = zipfile.ZipInfo(str(name), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if path.stat().st_mode & 0o111 else 0o644) << 16
            archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def package(template: dict[str, Any], root: Path, s3: Any, bucket: str, region: str,
            dependencies: Path | None = None) -> dict[str, Any]:
    """Local CodeUris (each function's, or Globals') replaced by their S3 location, uploaded if new; `dependencies`:
    a folder zipped in with the code (the functions' requirements, installed for Lambda)."""
    packaged = json.loads(json.dumps(template))
    holders = [packaged.get("Globals", {}).get("Function", {})]
    holders += [r.get("Properties", {}) for r in packaged["Resources"].values() if r.get("Type") == SERVERLESS_FUNCTION]
    uploaded: dict[str, dict[str, str]] = {}
    for holder in holders:
        code_uri = holder.get("CodeUri")
        if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
            continue
        if code_uri not in uploaded:
            body = code_archive(root / code_uri, dependencies)
            key = f"localcloud/{hashlib.sha256(body).hexdigest()}.zip"
            _ensure_bucket(s3, bucket, region)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            uploaded[code_uri] = {"Bucket": bucket, "Key": key}
        holder["CodeUri"] = uploaded[code_uri]
    return packaged


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def transform(template: dict[str, Any], region: str, iam: Any) -> dict[str, Any]:
    """The SAM transform, run here as CloudFormation runs it for `sam deploy`."""
    session = boto3.session.Session(region_name=region)
    translator = Translator(None, Parser(), boto_session=session)
    try:
        return translator.translate(template, parameter_values={},
                                    get_managed_policy_map=lambda: ManagedPolicyLoader(iam).load())
    except InvalidDocumentException as error:
        raise TemplateError("; ".join(str(cause) for cause in error.causes)) from None
    finally:
        # The translator counts its own usage for a publisher we do not give it (a no-op one); unpublished,
        # the counts made it warn "There are unpublished metrics" on every deployment.
        translator.metrics.publish()
