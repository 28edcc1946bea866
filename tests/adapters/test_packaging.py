"""What a deployment ships as the functions' code: for an endpoint that runs it (a LocalStack, AWS), the code and
its locked dependencies installed for Lambda, as `sam build` makes it; for the embedded cloud, the code alone."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from localcloud.config import CloudSettings, host_architecture
from localcloud.deploy import deploy

ISOLATED_PYTHON = [sys.executable, "-I", "-S"]  # no site-packages: only what the package holds can be imported


def deployed_code(runs_code: bool, architecture: str) -> tuple[zipfile.ZipFile, dict]:
    with mock_aws():
        settings = CloudSettings.load(overrides={"Architecture": architecture})
        deployment = deploy(settings, client_factory=lambda service: boto3.client(service), runs_code=runs_code)
        function = boto3.client("lambda").get_function(FunctionName=deployment.function("ParseCsvFunction").name)
        (bucket,) = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"] if "artifacts" in b["Name"]]
        (key,) = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return zipfile.ZipFile(io.BytesIO(body)), function["Configuration"]


def test_an_endpoint_that_runs_the_code_gets_it_with_its_dependencies_installed_for_lambda(tmp_path):
    # Given a deployment to an endpoint that runs the functions itself, on this machine's architecture
    package, configuration = deployed_code(runs_code=True, architecture=host_architecture())
    assert configuration["Architectures"] == [host_architecture()]
    # When its package is unpacked and imported by an interpreter that sees nothing else
    package.extractall(tmp_path)
    imported = subprocess.run([*ISOLATED_PYTHON, "-c", f"import sys; sys.path[:0] = [{str(tmp_path)!r}]; "
                               "import aws_lambda_powertools, email_validator, common.wiring; "
                               "print(aws_lambda_powertools.__file__)"], capture_output=True, text=True, check=False)
    # Then the function's handler and every dependency come from the package itself
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith(str(tmp_path))
    assert {"parse_csv/app.py", "send_email/app.py", "common/wiring.py"} <= set(package.namelist())


def test_an_arm64_package_carries_the_arm64_builds_of_compiled_dependencies():
    package, _ = deployed_code(runs_code=True, architecture="arm64")
    compiled = [name for name in package.namelist() if name.endswith(".so")]
    assert compiled and all("aarch64" in name for name in compiled)


def test_the_embedded_cloud_gets_the_code_alone():
    package, _ = deployed_code(runs_code=False, architecture=host_architecture())
    assert not any(name.startswith("aws_lambda_powertools/") for name in package.namelist())
    assert "common/wiring.py" in package.namelist()


@pytest.mark.parametrize(("endpoint", "architecture"), [("http://127.0.0.1:4566", host_architecture()),
                                                          ("aws", None)])
def test_a_local_stack_runs_on_this_machine_s_architecture_and_aws_keeps_the_template_s(endpoint, architecture):
    settings = CloudSettings.load(endpoint=endpoint, environ={})
    assert settings.parameter_overrides.get("Architecture") == architecture
    assert CloudSettings.load(endpoint=endpoint, environ={}, overrides={"Architecture": "arm64"}).parameter_overrides[
        "Architecture"] == "arm64"


def test_the_template_s_own_default_is_arm64_for_aws():
    template = Path(__file__).resolve().parents[2] / "template.yaml"
    assert "Default: arm64" in template.read_text().split("Architecture:", 1)[1][:200]
