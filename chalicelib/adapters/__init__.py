"""Every AWS call that is not DynamoDB: Step Functions executions, SNS (SMS, push, topics) and
SES. Services get these as objects (`Channels`, `Executions`), so a service test can pass
in-memory fakes; nothing outside this package creates a boto3 client."""
