"""EMR as far as clusters and Spark steps go: each cluster a real Spark standalone cluster on the machine."""
