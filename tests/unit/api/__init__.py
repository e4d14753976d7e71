"""Tests of the api package: config types, their decoders and schema, and the kubelet protocols."""
