"""Export of a trained policy: DeepRacer on AWS's model folder and the physical car's frozen TensorFlow graph."""
