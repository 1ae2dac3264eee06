"""The Spark-native estimator API: fit a DataFrame with a SageMaker training job, deploy it, transform through the
endpoint; the built-in algorithms, their generated Params, and the training channels they write.
"""
