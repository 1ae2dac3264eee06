"""The remote-function image (``sagemaker-base-python-*``, SageMaker Distribution): a Python with the SageMaker SDK
on which the SDK's ``@remote`` and ``@step`` functions run (docs/pipelines.md#step-functions-and-remote-functions).

The SDK's training job names its own ``ContainerEntrypoint`` (``/bin/bash .../job_driver.sh``): that script runs the
SDK's ``bootstrap_runtime_environment.py`` and then ``python -m sagemaker.remote_function.invoke_function``, so this
package only answers the image's default entries (``train`` without that entry point is a user error).
"""
