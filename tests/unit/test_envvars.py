"""`localcloud env-vars --from-stack`: what `sam local invoke --env-vars` needs for a deployed stack."""

from __future__ import annotations

from localcloud.envvars import stack_env_vars
from localcloud.settings import CloudSettings


class FakeCloudFormation:
    """A deployed stack as CloudFormation describes it (physical ids as LocalStack would name them)."""

    def __init__(self, resources: dict[str, str], parameters: dict[str, str]):
        self.resources, self.parameters = resources, parameters

    def describe_stacks(self, StackName):
        return {"Stacks": [{"StackId": f"arn:aws:cloudformation:us-east-1:000000000000:stack/{StackName}/1",
                            "Parameters": [{"ParameterKey": k, "ParameterValue": v}
                                           for k, v in self.parameters.items()]}]}

    def get_paginator(self, name):
        resources = self.resources

        class Pages:
            def paginate(self, StackName):
                yield {"StackResourceSummaries": [{"LogicalResourceId": k, "PhysicalResourceId": v}
                                                  for k, v in resources.items()]}
        return Pages()


def test_each_deployed_function_gets_the_queue_urls_and_table_names_of_the_stack():
    physical = {
        "ParseCsvFunction": "welcome-pipeline-ParseCsvFunction-AbC",
        "SendEmailFunction": "welcome-pipeline-SendEmailFunction-DeF",
        "JobsTable": "welcome-pipeline-JobsTable-1X2Y", "ContactsTable": "welcome-pipeline-ContactsTable-3Z",
        "OutboxTable": "welcome-pipeline-OutboxTable-4W", "SendRateTable": "welcome-pipeline-SendRateTable-5V",
        "ContactsQueue": "http://localhost:4566/000000000000/welcome-pipeline-ContactsQueue-a1",
        "DeadLetterQueue": "http://localhost:4566/000000000000/welcome-pipeline-DeadLetterQueue-b2",
        "ParseContinuationsQueue": "http://localhost:4566/000000000000/welcome-pipeline-ParseContinuationsQueue-c3",
    }
    cloudformation = FakeCloudFormation(physical, {"EmailProvider": "simulated", "MaxSendRate": "0"})
    variables = stack_env_vars(CloudSettings.load(), cloudformation, "http://host.docker.internal:4566")
    assert set(variables) == {"ParseCsvFunction", "SendEmailFunction"}  # ses_events is not in this stack
    parse, send = variables["ParseCsvFunction"], variables["SendEmailFunction"]
    assert parse["JOBS_TABLE"] == "welcome-pipeline-JobsTable-1X2Y"
    assert parse["PARSE_CONTINUATIONS_QUEUE_URL"] == physical["ParseContinuationsQueue"]
    assert send["CONTACTS_QUEUE_URL"] == physical["ContactsQueue"] and send["SES_CONFIGURATION_SET"] == ""
    assert send["MAX_SEND_RATE"] == "0" and send["AWS_ENDPOINT_URL"] == "http://host.docker.internal:4566"
