"""The table catalogs the feature store and Athena share: Glue Data Catalog tables (moto's Glue) and the Iceberg tables
committed through them (docs/feature-store.md#iceberg-groups)."""
