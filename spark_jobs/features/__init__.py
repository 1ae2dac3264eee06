"""Feature jobs: pure DataFrame -> DataFrame functions plus a thin ``main(argv)`` per job."""
