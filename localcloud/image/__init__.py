"""A Lambda base image built locally, and a Docker endpoint with host networking, for `sam local invoke`."""
