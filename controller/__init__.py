"""ResourceSlice publishing, the cluster controller, admission, and the structured-parameters allocator."""
