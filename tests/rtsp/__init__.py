"""A real RTSP server for the tests (GStreamer, run by the system Python): see fixtures.py."""
