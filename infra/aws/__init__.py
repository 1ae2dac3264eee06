"""Infrastructure as code for Sagestack: the CloudFormation template, its deploy/delete/status commands and image
publishing, on the local stack or on AWS (``python -m infra.aws``)."""
