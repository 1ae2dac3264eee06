#!/bin/sh
# Delete what a Python environment never uses at run time, so images stay small: test suites, C/C++ headers,
# Cython sources, pyarrow's Flight libraries (the containers read Parquet, never serve Flight; pyarrow.lib links
# Substrait, so that one stays) and torch's C++ test binaries and headers (no torch.compile or C++ extensions).
#   trim-python.sh <site-packages directory>
set -eu
site="$1"
find "$site" -depth -mindepth 2 -type d -name tests -exec rm -rf {} +
find "$site" -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \) -delete
rm -rf "$site/pyarrow/include" "$site/pyarrow/src" "$site/torch/include" "$site/torch/test" "$site/torch/share/cmake"
rm -f "$site"/pyarrow/libarrow_flight.so* "$site"/pyarrow/libarrow_python_flight.so* "$site"/pyarrow/_flight.*.so \
      "$site"/pyarrow/_pyarrow_cpp_tests.*.so
