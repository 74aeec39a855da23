#!/bin/sh
# A worker that does nothing but stay up until it is told to stop.
trap 'exit 0' TERM INT
while :; do sleep 1; done
