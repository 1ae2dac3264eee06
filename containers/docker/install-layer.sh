#!/bin/sh
# Install an image's extra requirements into the current Python environment, trim them (trim-python.sh beside this
# script), and copy only what the install added (new site-packages entries and scripts) to /opt/layer, keeping
# absolute paths. The final build stage copies /opt/layer over / so the wheels themselves never become an image layer.
#   install-layer.sh <requirements file> [pip install options...]
set -eu
requirements="$1"
shift
here=$(dirname "$0")
site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
scripts=$(python -c 'import sysconfig; print(sysconfig.get_paths()["scripts"])')
ls -1 "$site" | sort > /tmp/site.before
ls -1 "$scripts" | sort > /tmp/scripts.before
python -m pip install --no-cache-dir "$@" -r "$requirements"
sh "$here/trim-python.sh" "$site"
mkdir -p "/opt/layer$site" "/opt/layer$scripts"
ls -1 "$site" | sort | comm -13 /tmp/site.before - | while read -r entry; do
    cp -a "$site/$entry" "/opt/layer$site/"
done
ls -1 "$scripts" | sort | comm -13 /tmp/scripts.before - | while read -r entry; do
    cp -a "$scripts/$entry" "/opt/layer$scripts/"
done
chmod -R a+rX /opt/layer
