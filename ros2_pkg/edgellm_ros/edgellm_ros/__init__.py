"""ROS 2 nodes over the EdgeLLM SDK: a thin shell over its public API (no generation, caching or
audio logic of their own)."""
