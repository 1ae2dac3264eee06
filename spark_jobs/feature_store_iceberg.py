"""Commit the Parquet files that Spark ingestion wrote into an Iceberg feature group's offline store.

The executors write the data files under the group's ``data/`` as for a Glue group; the driver then makes them one
Iceberg append snapshot through pyiceberg's Glue catalog (the table's ``metadata_location`` in the Glue Data
Catalog), with a boto3 Glue client and pyiceberg's S3 file access pointed where ``AwsSettings`` points: the stack,
or AWS. See docs/feature-store.md#iceberg-groups.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from spark_jobs.config import AwsSettings

logger = logging.getLogger(__name__)

_COMMIT_ATTEMPTS = 3


def commit_data_files(aws: AwsSettings, database: str, table: str, data_files: Sequence[str]) -> None:
    """One append snapshot of ``data_files`` (``s3://`` URIs) in the Iceberg table ``database.table``."""
    if not data_files:
        return
    from pyiceberg.catalog.glue import GlueCatalog
    from pyiceberg.exceptions import CommitFailedException

    catalog = GlueCatalog("glue", client=aws.client("glue"), **_s3_properties(aws))
    for attempt in range(1, _COMMIT_ATTEMPTS + 1):
        iceberg = catalog.load_table((database, table))
        try:
            iceberg.add_files(
                list(data_files), snapshot_properties={"sagestack.writer": "spark"}, check_duplicate_files=False
            )
            break
        except CommitFailedException:
            if attempt == _COMMIT_ATTEMPTS:
                raise
            logger.info("iceberg commit to %s.%s raced another writer; trying again", database, table)
    logger.info("iceberg table %s.%s: %d data files committed", database, table, len(data_files))


def _s3_properties(aws: AwsSettings) -> dict[str, str]:
    """pyiceberg's S3 settings from boto3's own resolution (credentials chain, region) and ``aws.endpoint_url``."""
    import boto3

    session = boto3.Session(region_name=aws.region)
    properties = {"s3.region": session.region_name or "us-east-1"}
    if aws.endpoint_url:
        properties["s3.endpoint"] = aws.endpoint_url
    credentials = session.get_credentials()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        properties["s3.access-key-id"] = frozen.access_key
        properties["s3.secret-access-key"] = frozen.secret_key
        if frozen.token:
            properties["s3.session-token"] = frozen.token
    return properties
