"""Build Sagestack's container images and tag them with AWS built-in image URIs.

``python -m infra.images build [--only NAME ...] [--online]`` builds ``sagestack/base`` and one image per container
(``catalog.IMAGE_NAMES``); ``python -m infra.images tag-aws --region us-east-1`` adds the AWS URIs. See
``docs/images.md``.
"""
