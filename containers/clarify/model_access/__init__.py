"""The model behind the analysis: an endpoint (or a shadow endpoint) over ``InvokeEndpoint``, its request bodies and
its answers.
"""
